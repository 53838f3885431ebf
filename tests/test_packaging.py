"""The distribution installs one import package, tfx_metric_learning, beside a Kubeflow SDK.

The repository keeps its top-level folders (``pipeline/``, ``components/``,
``trainer_module/``, ``kubeflow/``); ``pyproject.toml`` maps them under ``tfx_metric_learning``.
These tests build the real wheel, install it into a folder, put a package laid out as the
Kubeflow SDKs are (``kubeflow/__init__.py`` a pkgutil namespace, copied from the
kubeflow-training 1.8.1 wheel, and ``kubeflow/training/``) on a later ``sys.path`` entry, and
import both from a fresh interpreter outside the repository.
"""

import os
import shutil
import subprocess
import sys
import zipfile

import pytest
import tomli  # pytest's own TOML reader on Python 3.10

from tests.conftest import REPO_DIR

PACKAGE = "tfx_metric_learning"
FOLDERS = ("pipeline", "components", "trainer_module", "kubeflow")
KUBEFLOW_NAMESPACE_INIT = "__path__ = __import__('pkgutil').extend_path(__path__, __name__)\n"


def _pyproject():
    with open(os.path.join(REPO_DIR, "pyproject.toml"), "rb") as f:
        return tomli.load(f)


def test_every_package_folder_is_listed_under_the_one_import_package():
    found = set()
    for top in FOLDERS:
        for root, dirs, files in os.walk(os.path.join(REPO_DIR, top)):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            if "__init__.py" in files:
                rel = os.path.relpath(root, REPO_DIR).replace(os.sep, ".")
                found.add(f"{PACKAGE}.{rel}")
    # the package's own folder and its subpackages (the shared kernel, ``core``)
    for root, dirs, files in os.walk(os.path.join(REPO_DIR, PACKAGE)):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        if "__init__.py" in files:
            found.add(os.path.relpath(root, REPO_DIR).replace(os.sep, "."))
    setuptools = _pyproject()["tool"]["setuptools"]
    assert sorted(setuptools["packages"]) == sorted(found)
    assert setuptools["package-dir"] == {PACKAGE: PACKAGE} | {
        f"{PACKAGE}.{top}": top for top in FOLDERS
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    # a copy of what the wheel is built from, so the build leaves nothing in the repository
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(REPO_DIR, name), source)
    for name in (PACKAGE, *FOLDERS):
        shutil.copytree(
            os.path.join(REPO_DIR, name),
            source / name,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--disable-pip-version-check", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (path,) = out.glob("*.whl")
    return path


def test_the_wheel_has_one_top_level_package(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
    tops = {n.split("/")[0] for n in names}
    assert tops == {PACKAGE, f"{PACKAGE}-0.1.0.dist-info"}, tops
    for top in FOLDERS:  # every folder's modules are in, under the package
        assert any(n.startswith(f"{PACKAGE}/{top}/") and n.endswith(".py") for n in names), top
    assert f"{PACKAGE}/trainer_module/losses/registry.py" in names
    with zipfile.ZipFile(wheel) as z:
        entry_points = z.read(f"{PACKAGE}-0.1.0.dist-info/entry_points.txt").decode()
    assert f"metric-learning = {PACKAGE}.pipeline.cli:main" in entry_points


def test_installed_beside_a_kubeflow_sdk_both_import(wheel, tmp_path):
    site, sdk_site = tmp_path / "site", tmp_path / "sdk"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)  # what pip install --target does with a pure-Python wheel
    # the SDK on a later sys.path entry: a regular package named kubeflow earlier on the path
    # (this project's old layout) would hide kubeflow.training
    sdk = sdk_site / "kubeflow"
    (sdk / "training").mkdir(parents=True)
    (sdk / "__init__.py").write_text(KUBEFLOW_NAMESPACE_INIT)
    (sdk / "training" / "__init__.py").write_text("SDK = 'kubeflow-training'\n")
    script = (
        "import kubeflow.training, tfx_metric_learning.kubeflow.runner as runner\n"
        "import tfx_metric_learning.pipeline.cli as cli\n"
        "from tfx_metric_learning.trainer_module.losses import registry\n"
        "print(kubeflow.training.SDK, runner.__file__, cli.__file__, len(registry.names()))\n"
    )
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{sdk_site}", TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_USE_LEGACY_KERAS", None)  # the package sets it itself
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,  # not the repository, whose folders would be found first
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sdk_name, runner_file, cli_file, losses = done.stdout.split()[-4:]
    assert sdk_name == "kubeflow-training"
    assert runner_file.startswith(str(site / PACKAGE / "kubeflow"))
    assert cli_file.startswith(str(site / PACKAGE / "pipeline"))
    assert int(losses) > 20


def _pins() -> dict[str, str]:
    pins = {}
    with open(os.path.join(REPO_DIR, "constraints.txt")) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if "==" in line:
                name, version = line.split("==")
                pins[_canonical(name)] = version.strip()
    return pins


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-").strip()


def _dev_only() -> set[str]:
    """The dev extras and what only they pull in (not in the image)."""
    from importlib import metadata

    dev = {
        _canonical(r.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0])
        for r in _pyproject()["project"]["optional-dependencies"]["dev"]
    }
    out, todo = set(), list(dev)
    while todo:
        name = todo.pop()
        if name in out:
            continue
        out.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for r in requires:
            if "extra ==" in r:
                continue
            todo.append(
                _canonical(
                    r.split(";")[0]
                    .split("[")[0]
                    .split(" ")[0]
                    .split("=")[0]
                    .split("<")[0]
                    .split(">")[0]
                    .split("!")[0]
                    .split("~")[0]
                )
            )
    return out


def test_the_pins_cover_the_whole_installed_stack_and_pip_check_passes():
    """What the image installs (constraints.txt) is the stack the tests ran on."""
    from importlib import metadata

    pins = _pins()
    installed = {_canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    ours = {"tfx-metric-learning", "pip", "setuptools", "wheel"}
    runtime = {n: v for n, v in installed.items() if n not in ours}
    unpinned = sorted(n for n in runtime if n not in pins and n not in _dev_only())
    assert unpinned == [], f"installed but not pinned in constraints.txt: {unpinned}"
    moved = {n: (v, pins[n]) for n, v in runtime.items() if n in pins and pins[n] != v}
    assert moved == {}, f"installed version differs from the pin: {moved}"
    check = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout


def test_the_image_installs_the_pins_on_the_tested_python_and_beam():
    with open(os.path.join(REPO_DIR, "kubeflow", "Dockerfile")) as f:
        dockerfile = f.read()
    assert "pip install -c constraints.txt ." in dockerfile
    assert "pip check" in dockerfile
    assert "FROM gcr.io/tfx-oss-public" not in dockerfile  # its stack is not the pinned one
    python = f"python:{sys.version_info.major}.{sys.version_info.minor}."
    assert f"ARG PYTHON_IMAGE={python}" in dockerfile
    assert f"ARG BEAM_VERSION={_pins()['apache-beam']}\n" in dockerfile
    assert f"beam_python{sys.version_info.major}.{sys.version_info.minor}_sdk" in dockerfile
