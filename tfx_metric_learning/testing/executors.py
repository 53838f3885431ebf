"""``run_executor``: one component's executor, run on real artifacts, without an orchestrator.

What TFX's launcher does for one node, minus ML Metadata: it makes an output artifact of the
declared type per output channel (``<output_dir>/<key>``), serialises protobuf execution
properties to JSON (``tfx.utils.proto_utils.proto_to_json``, as the launcher hands them to
``Do``), gives a Beam executor its pipeline arguments and a temp folder, and calls
``Executor.Do(input_dict, output_dict, exec_properties)``. It works for this project's
components and for any class-based TFX component (a ``BaseComponent`` subclass or instance).

The component's spec is the contract: an input key, output key or execution property the spec
does not declare is refused naming the valid ones, as is a missing required input, so a test
cannot pass on a call the pipeline could never make. After ``Do``, every output artifact's
URI must exist: an executor that silently wrote nothing fails here, not three nodes later.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import message
from tfx import types
from tfx.dsl.components.base import base_beam_executor, base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import proto_utils

from tfx_metric_learning.pipeline import beam_policy

Artifacts = dict[str, list[types.Artifact]]


class ExecutorRunError(ValueError):
    """A ``run_executor`` call the component's spec does not allow; the message says why."""


def run_executor(
    component: Any,
    inputs: Mapping[str, Any] | None = None,
    exec_properties: Mapping[str, Any] | None = None,
    output_dir: str | None = None,
    beam_pipeline_args: Sequence[str] | None = None,
    outputs: Mapping[str, Any] | None = None,
    driver_properties: Mapping[str, Any] | None = None,
) -> Artifacts:
    """Runs ``component``'s executor once; returns its output artifacts by key.

    ``component``: a component instance (its executor spec and execution properties are used,
    so a custom executor spec such as ExampleGen's counts) or a component class (its
    ``EXECUTOR_SPEC``). ``inputs``: key -> an artifact, a list of artifacts, or a URI (an
    artifact of the channel's type is made for it; an ``Examples`` URI gets the split names
    of its ``Split-*`` folders). ``exec_properties``: set over the instance's; protobuf
    messages are serialised as the launcher does. ``output_dir`` (a temp folder if not given;
    any ``fileio`` URI): where output artifacts go. ``beam_pipeline_args``: for a Beam
    executor (default: the DirectRunner with one worker); a local runner without a dependency
    flag also gets the local run's ``beam_policy.LOCAL_WORKERS_ARG``, so that TFX does not
    build and stage a package of itself for every call (about 2 s and 49 MB of temporary files).
    """
    spec_class = component.SPEC_CLASS
    executor_class = _executor_spec(component).executor_class
    input_dict = _inputs(spec_class, inputs or {})
    properties = _properties(component, spec_class, exec_properties or {})
    output_dir = output_dir or tempfile.mkdtemp(prefix="run-executor-")
    properties.update(driver_properties or {})
    output_dict = _outputs(spec_class, outputs or {}, output_dir)
    if issubclass(executor_class, base_beam_executor.BaseBeamExecutor):
        args = beam_policy.with_local_dependency(
            beam_pipeline_args or ["--runner=DirectRunner", "--direct_num_workers=1"]
        )
        context = base_beam_executor.BaseBeamExecutor.Context(
            beam_pipeline_args=args, tmp_dir=f"{output_dir.rstrip('/')}/.temp/"
        )
    else:
        context = base_executor.BaseExecutor.Context(tmp_dir=f"{output_dir.rstrip('/')}/.temp/")
    executor_class(context).Do(input_dict, output_dict, properties)
    for key, artifacts in output_dict.items():
        for artifact in artifacts:
            if not fileio.exists(artifact.uri):
                raise AssertionError(f"output {key!r}: its URI {artifact.uri} was removed")
    return output_dict


def _outputs(spec_class: Any, given: Mapping[str, Any], output_dir: str) -> Artifacts:
    declared = spec_class.OUTPUTS
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ExecutorRunError(
            f"{spec_class.__name__} has no output {unknown[0]!r}; valid: {', '.join(declared)}"
        )
    out: Artifacts = {}
    for key, channel in declared.items():
        value = given.get(key, f"{output_dir.rstrip('/')}/{key}")
        if isinstance(value, types.Artifact):
            if value.type_name != channel.type.TYPE_NAME:
                raise ExecutorRunError(
                    f"output {key!r} takes {channel.type.TYPE_NAME}, got a {value.type_name}"
                )
            artifact = value
        elif isinstance(value, str):
            artifact = channel.type()
            artifact.uri = value
        else:
            raise ExecutorRunError(
                f"output {key!r}: an artifact or a URI, got {type(value).__name__}"
            )
        if not artifact.uri:
            raise ExecutorRunError(f"output {key!r}: the given artifact has no URI")
        fileio.makedirs(artifact.uri)
        out[key] = [artifact]
    return out


def _executor_spec(component: Any) -> Any:
    spec = getattr(component, "executor_spec", None) or getattr(component, "EXECUTOR_SPEC", None)
    if spec is None or not hasattr(spec, "executor_class"):
        raise ExecutorRunError(
            f"{component!r} has no class-based executor spec (executor_class); run_executor runs "
            f"class-based TFX components"
        )
    return spec


def _inputs(spec_class: Any, given: Mapping[str, Any]) -> Artifacts:
    declared = spec_class.INPUTS
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ExecutorRunError(
            f"{spec_class.__name__} has no input {unknown[0]!r}; valid: {', '.join(declared)}"
        )
    missing = sorted(k for k, ch in declared.items() if not ch.optional and k not in given)
    if missing:
        raise ExecutorRunError(f"{spec_class.__name__} needs input(s) {', '.join(missing)}")
    out: Artifacts = {}
    for key, value in given.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        out[key] = [_artifact(declared[key].type, v, key) for v in values]
    return out


def _artifact(artifact_type: type, value: Any, key: str) -> types.Artifact:
    if isinstance(value, types.Artifact):
        if value.type_name != artifact_type.TYPE_NAME:
            raise ExecutorRunError(
                f"input {key!r} takes {artifact_type.TYPE_NAME}, got a {value.type_name}"
            )
        return value
    if not isinstance(value, str):
        raise ExecutorRunError(f"input {key!r}: an artifact or a URI, got {type(value).__name__}")
    if not fileio.exists(value):
        raise ExecutorRunError(f"input {key!r}: {value} does not exist")
    artifact = artifact_type()
    artifact.uri = value
    if "split_names" in (artifact_type.PROPERTIES or {}):  # Schema, Model: no properties
        splits = sorted(
            name[len("Split-") :] for name in fileio.listdir(value) if name.startswith("Split-")
        )
        artifact.split_names = artifact_utils.encode_split_names(splits)
    return artifact


def _properties(component: Any, spec_class: Any, given: Mapping[str, Any]) -> dict[str, Any]:
    declared = spec_class.PARAMETERS
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ExecutorRunError(
            f"{spec_class.__name__} has no execution property {unknown[0]!r}; valid: "
            f"{', '.join(declared)}"
        )
    own = dict(getattr(component, "exec_properties", None) or {})
    if not isinstance(own, dict):  # a class: its exec_properties is a property object
        own = {}
    merged = {**own, **given}
    missing = sorted(k for k, p in declared.items() if not p.optional and merged.get(k) is None)
    if missing:
        raise ExecutorRunError(
            f"{spec_class.__name__} needs execution propert(y/ies) {', '.join(missing)}"
        )
    return {
        key: proto_utils.proto_to_json(value) if isinstance(value, message.Message) else value
        for key, value in merged.items()
        if value is not None
    }


def split_uris(artifact: types.Artifact) -> dict[str, str]:
    """``{split: folder}`` of an ``Examples`` artifact (``Split-<name>`` under its URI)."""
    names = artifact_utils.decode_split_names(artifact.split_names)
    return {name: f"{artifact.uri.rstrip('/')}/Split-{name}" for name in names}
