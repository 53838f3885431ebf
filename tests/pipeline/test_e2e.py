"""The whole pipeline with LocalDagRunner, through the CLI, in fresh processes.

One module-scoped sequence of runs on a small digits subset:
1. a first run (2 CPU replicas) that trains, blesses and pushes;
2. the same command again, which must reuse cached executions;
3. a deliberately worse config (one training step), which must not be blessed or pushed.

Each run gets its own empty system temp folder (``TMPDIR``), measured after the run.
"""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tfx_metric_learning.pipeline import data

pytestmark = pytest.mark.e2e

# The nodes a single-loss run has, in pipeline order.
COMPONENT_IDS = (
    "FileBasedExampleGen",
    "StatisticsGen",
    "SchemaGen",  # ImportSchemaGen with a curated schema file
    "DataValidator",
    "Transform",
    "InputBaselines",
    "PairGen",
    "Trainer",
    "ProductionModel",
    "RetrievalEvaluator",
    "GalleryIndex",
    "Pusher",
)

UPSTREAM_OF_EVALUATOR = COMPONENT_IDS[: COMPONENT_IDS.index("Trainer") + 1]


def cli(*args, cwd=None, tmpdir=None):
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="2")
    if tmpdir:
        env.update(TMPDIR=tmpdir, TEMP=tmpdir, TMP=tmpdir)
    return subprocess.run(
        [sys.executable, "-m", "tfx_metric_learning.pipeline.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=900,
    )


def _folder_bytes(folder):
    return sum(
        os.path.getsize(os.path.join(root, name))
        for root, _, files in os.walk(folder)
        for name in files
        if not os.path.islink(os.path.join(root, name))
    )


def _serving_state(serving_dir):
    state = {}
    for root, _, files in os.walk(serving_dir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:  # byte for byte
                state[os.path.relpath(path, serving_dir)] = hashlib.sha256(f.read()).hexdigest()
    return state


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    csv_path = str(base / "digits_subset.csv")
    # 600 rows drawn at random from the digits (seeded) are the run's data; 300 others, of
    # the same writers, are held out for lookups
    header, *lines = data.digits_csv_text().splitlines()
    order = np.random.default_rng(0).permutation(len(lines))
    data.write_if_changed(csv_path, "\n".join([header, *(lines[i] for i in order[:600])]) + "\n")
    root = str(base / "root")
    common = [
        "run",
        "--data",
        csv_path,
        "--pipeline-root",
        root,
        "--epochs",
        "8",
        "--batch-size",
        "64",
        "--cpu-replicas",
        "2",
    ]
    out = {
        "root": root,
        "csv": csv_path,
        "serving": os.path.join(root, "serving_model"),
        "gallery_text": "\n".join([header, *(lines[i] for i in order[:600])]) + "\n",
        "held_out_text": "\n".join([header, *(lines[i] for i in order[600:900])]) + "\n",
    }
    for name, extra in (("first", []), ("second", []), ("worse", ["--train-steps", "1"])):
        summary_path = str(base / f"{name}.json")
        tmpdir = base / f"system-tmp-{name}"
        tmpdir.mkdir()
        proc = cli(*common, *extra, "--summary-json", summary_path, tmpdir=str(tmpdir))
        assert proc.returncode == 0, f"{name} run failed:\n{proc.stdout}\n{proc.stderr}"
        out[f"{name}_tmp_bytes"] = _folder_bytes(tmpdir)
        with open(summary_path) as f:
            out[name] = json.load(f)
        out[f"{name}_stdout"] = proc.stdout
        out[f"{name}_serving"] = _serving_state(out["serving"])
    return out


def test_local_beam_steps_neither_package_tfx_nor_try_the_prism_runner(runs):
    # beam_policy.beam_args: TFX builds no sdist of itself for local workers, and Beam does
    # not try to download its Prism runner before each pipeline
    logs = os.path.join(runs["root"], "logs")
    text = "".join(open(os.path.join(logs, name)).read() for name in os.listdir(logs))
    assert "Generating examples." in text  # the log is the run's
    assert "Attempting to infer TFX Python dependency" not in text
    assert "PrismRunner" not in text


def test_first_run_executes_every_component(runs):
    states = runs["first"]["components"]
    assert runs["first"]["ingest"]["rows_read"] == runs["first"]["ingest"]["rows_kept"] == 600
    assert set(states) == set(COMPONENT_IDS)
    assert all(state == "COMPLETE" for state in states.values()), states


def test_metrics_file_holds_every_metric(runs):
    with open(os.path.join(runs["first"]["evaluation_uri"], "metrics.json")) as f:
        metrics = json.load(f)
    for key in (
        "precision_at_1",
        "recall_at_1",
        "recall_at_5",
        "recall_at_10",
        "r_precision",
        "map_at_r",
    ):
        assert 0.0 <= metrics[key] <= 1.0, key
    # a trained model separates digits far better than chance (~0.1) on this small subset
    assert metrics["map_at_r"] > 0.7
    assert "map_at_r" in runs["first_stdout"] and "Pushed model:" in runs["first_stdout"]


def test_trainer_ran_under_mirrored_strategy_with_two_replicas(runs):
    training = runs["first"]["training"]
    assert training["strategy"] == "MirroredStrategy"
    assert training["num_replicas"] == 2
    assert len(training["devices"]) == 2 and all("CPU" in d for d in training["devices"])
    assert training["per_replica_batch_size"] == 32


def test_first_run_is_blessed_and_pushed(runs):
    assert runs["first"]["blessed"] is True
    # it beats its own inputs (cosine on the raw and on the transformed features)
    first = runs["first"]
    assert set(first["raw_baselines"]) == {"raw_features", "transformed_features"}
    best_raw = max(m["map_at_r"] for m in first["raw_baselines"].values())
    assert first["lift_over_raw"]["value"] == pytest.approx(first["metrics"]["map_at_r"] - best_raw)
    assert first["lift_over_raw"]["value"] > 0
    assert "lift over raw features: map_at_r +" in runs["first_stdout"]
    # the epoch kept is the best on the validation split, never chosen on the eval split
    kept = first["training"]["selection"]
    assert kept["split"] == "valid"
    assert kept["value"] == pytest.approx(max(first["training"]["history"]["val_map_at_r"]))
    assert f"Kept epoch {kept['kept_epoch']} of 8" in runs["first_stdout"]
    assert set(first["ingest"]["split_rows"]) == {"train", "eval", "valid"}
    pushed = runs["first"]["pushed_model"]
    assert pushed and os.path.exists(os.path.join(pushed, "saved_model.pb"))


def test_second_run_reuses_cached_executions(runs):
    states = runs["second"]["components"]
    for node in UPSTREAM_OF_EVALUATOR:
        assert states[node] == "CACHED", (node, states)


def test_worse_config_is_not_blessed_and_not_pushed(runs):
    worse = runs["worse"]
    assert worse["training"]["total_steps"] == 1
    assert worse["blessed"] is False
    assert any("worse than the baseline" in r for r in worse["reasons"]), worse["reasons"]
    assert any("worse than its own inputs" in r for r in worse["reasons"]), worse["reasons"]
    assert worse["pushed_model"] is None
    # the same data: the input baselines are replayed from the cache, not scored again
    assert worse["components"]["InputBaselines"] == "CACHED"
    assert worse["raw_baselines"] == runs["first"]["raw_baselines"]
    assert runs["worse_serving"] == runs["second_serving"], "the pushed models changed"


def test_runs_leave_the_system_temp_folder_clean(runs):
    # TFX's ephemeral package builds alone were ~48 MB per Beam component and run
    for name in ("first", "second", "worse"):
        assert runs[f"{name}_tmp_bytes"] < 2_000_000, (name, runs[f"{name}_tmp_bytes"])
    state_tmp = os.path.join(runs["root"], "tmp")
    assert not os.path.exists(state_tmp) or os.listdir(state_tmp) == []


def test_each_summary_reads_its_own_run(runs):
    from tfx_metric_learning.pipeline import run_report
    from tfx_metric_learning.pipeline.config import PipelineConfig

    names = [runs[n]["run"] for n in ("first", "second", "worse")]
    assert len(set(names)) == 3, names
    config = PipelineConfig(pipeline_root=runs["root"])
    first_again = run_report.latest_run(config, runs["first"]["run"])
    assert first_again["blessed"] is True and first_again["run"] == names[0]
    assert run_report.latest_run(config)["run"] == names[2]


def test_pushed_model_serves_raw_rows_in_a_fresh_process(runs, tmp_path):
    script = textwrap.dedent(
        """
        import csv, json, sys
        import numpy as np
        import tensorflow as tf
        model = tf.saved_model.load(sys.argv[1])
        with open(sys.argv[2]) as f:
            rows = list(csv.DictReader(f))[:200]
        labels = [r.pop("label") for r in rows]
        serve = model.signatures["serving_default"]
        columns = {k: tf.constant([float(r[k]) for r in rows]) for k in rows[0]}
        emb = serve(**columns)["embedding"].numpy()
        by_examples = model.signatures["serve_examples"]
        ex = tf.train.Example()
        for k, v in rows[0].items():
            ex.features.feature[k].float_list.value.append(float(v))
        one = by_examples(examples=tf.constant([ex.SerializeToString()]))["embedding"].numpy()
        json.dump({"emb": emb.tolist(), "labels": labels, "one": one.tolist()}, sys.stdout)
        """
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env.pop("TF_USE_LEGACY_KERAS", None)  # plain TensorFlow, no Keras set-up
    proc = subprocess.run(
        [sys.executable, "-c", script, runs["first"]["pushed_model"], runs["csv"]],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    emb = np.array(result["emb"])
    labels = np.array(result["labels"])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(result["one"][0], emb[0], atol=1e-5)
    dist = np.linalg.norm(emb[:, None] - emb[None], axis=-1)
    same = labels[:, None] == labels[None, :]
    off_diag = ~np.eye(len(labels), dtype=bool)
    assert dist[same & off_diag].mean() < 0.5 * dist[~same].mean()


def test_the_pushed_version_holds_its_gallery_and_answers_held_out_rows(runs):
    from tfx_metric_learning.components.gallery_index import spec as gallery_spec
    from tfx_metric_learning.components.gallery_index.lookup import Lookup
    from tfx_metric_learning.components.production import record as production_record

    for run in ("first", "second"):
        pushed = runs[run]["pushed_model"]
        for name in gallery_spec.PUSHED_FILES:
            assert os.path.exists(os.path.join(pushed, gallery_spec.PUSHED_SUBDIR, name)), name
        with open(os.path.join(pushed, gallery_spec.PUSHED_SUBDIR, gallery_spec.INFO_FILE)) as f:
            info = json.load(f)
        # with the default settings the gallery reads the eval split's embeddings and its
        # queries' neighbours from the run's evaluation instead of computing them again
        assert info["eval_split_read_from"] == info["nearest_from"] == runs[run]["evaluation_uri"]
    record = production_record.read(runs["serving"]).record  # the second run's push
    lookup = Lookup.load(runs["serving"])  # the production version
    assert lookup.version_dir == record["model_uri"] == pushed
    assert record["gallery"]["rows"] == 600 and record["gallery"]["uri"].startswith(pushed)
    assert record["gallery"]["match_threshold"] == lookup.threshold
    # 300 other rows of the digits are in no split of the run: held out, of seen classes
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(runs["held_out_text"])))
    labels = np.array([r.pop("label") for r in rows])
    found = lookup.query({k: [float(r[k]) for r in rows] for k in rows[0]}, k=5)
    # the index answers what exact search over the gallery's embeddings answers
    gallery_rows = list(csv.DictReader(io.StringIO(runs["gallery_text"])))
    for r in gallery_rows:
        r.pop("label")
    gallery = lookup.embed({k: [float(r[k]) for r in gallery_rows] for k in gallery_rows[0]})
    queries = lookup.embed({k: [float(r[k]) for r in rows] for k in rows[0]})
    best = (queries @ gallery.T).max(axis=1)
    np.testing.assert_allclose(found.similarities[:, 0], best, atol=1e-4)
    # the pushed SavedModel's own lookup signature (what TF Serving answers) agrees
    import tensorflow as tf

    served = tf.saved_model.load(pushed).signatures[gallery_spec.LOOKUP_SIGNATURE]
    answer = served(**{k: tf.constant([float(r[k]) for r in rows]) for k in rows[0]})
    np.testing.assert_allclose(  # the signature returns --lookup-k (10) neighbours
        answer[gallery_spec.LOOKUP_SIMILARITIES].numpy()[:, :5], found.similarities, atol=1e-4
    )
    top = answer[gallery_spec.LOOKUP_LABELS].numpy()[:, 0].astype(str)
    assert (top == found.labels[:, 0]).mean() > 0.99  # ties may order differently
    assert answer[gallery_spec.LOOKUP_MATCH].numpy().tolist() == found.match.tolist()
    assert record["gallery"]["signature"] == gallery_spec.LOOKUP_SIGNATURE
    # held out, the nearest label is right at least as often as the evaluator's P@1 says
    right = (found.labels[:, 0] == labels).mean()
    # (the production model's P@1, on its eval split's queries), within two standard errors
    # of the difference of the two proportions (measured: 0.957 against 0.978, 2 SE 0.034)
    p_at_1 = runs["second"]["metrics"]["precision_at_1"]
    with open(os.path.join(runs["second"]["evaluation_uri"], "evaluation.json")) as f:
        eval_queries = json.load(f)["queries"]["scored"]
    two_se = 2 * np.sqrt(p_at_1 * (1 - p_at_1) / eval_queries + right * (1 - right) / len(labels))
    print(f"held-out rows: nearest label right {right:.4f}; P@1 {p_at_1:.4f} (2 SE {two_se:.3f})")
    assert right >= p_at_1 - two_se, (right, p_at_1, two_se)
    # the match decisions keep (about) the calibrated precision on rows never seen
    matched = found.match
    if matched.any() and lookup.info["match"]["precision"] is not None:
        assert (found.labels[matched, 0] == labels[matched]).mean() >= 0.9
    # a worse model left the whole version, index included, as it was
    assert runs["worse_serving"] == runs["second_serving"]


def test_query_and_embed_commands_answer_for_the_production_version(runs, tmp_path):
    import csv
    import io
    from concurrent.futures import ThreadPoolExecutor

    header, *lines = runs["held_out_text"].splitlines()
    held_out = tmp_path / "held_out.csv"
    held_out.write_text("\n".join([header, *lines[:100]]) + "\n")
    # a query file without a feature the model takes: refused, the feature named
    lacking = tmp_path / "lacking.csv"
    columns = header.split(",")
    keep = [i for i, c in enumerate(columns) if c != "pixel_3_3"]
    lacking.write_text(
        "\n".join(",".join(line.split(",")[i] for i in keep) for line in [header, *lines[:5]])
    )
    serving = ["--serving-dir", runs["serving"]]
    commands = {
        "query": ["query", *serving, "--data", str(held_out), "-k", "3", "--json"],
        "lacking": ["query", *serving, "--data", str(lacking)],
    }
    for suffix in (".csv", ".parquet", ".tfrecord"):
        out = tmp_path / f"emb{suffix}"
        commands[suffix] = ["embed", *serving, "--data", str(held_out), "--output", str(out)]
    with ThreadPoolExecutor(len(commands)) as pool:  # separate processes: start-up overlaps
        done = {name: pool.submit(cli, *args) for name, args in commands.items()}
        procs = {name: future.result() for name, future in done.items()}
    proc = procs["query"]
    assert proc.returncode == 0, proc.stderr
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(answers) == 100 and all(len(a["neighbours"]) == 3 for a in answers)
    right = np.mean([a["neighbours"][0]["label"] == a["label"] for a in answers])
    assert right > 0.8 and "nearest label right for" in proc.stderr
    assert all(isinstance(a["match"], bool) for a in answers)
    for suffix in (".csv", ".parquet", ".tfrecord"):
        out = tmp_path / f"emb{suffix}"
        assert procs[suffix].returncode == 0 and out.stat().st_size > 0, procs[suffix].stderr
    rows = list(csv.reader(io.StringIO((tmp_path / "emb.csv").read_text())))
    assert rows[0][:2] == ["id", "label"] and len(rows) == 101
    emb = np.array([[float(x) for x in r[2:]] for r in rows[1:]])
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    proc = procs["lacking"]
    assert proc.returncode == 2 and "lack feature(s) pixel_3_3" in proc.stderr, proc.stderr
