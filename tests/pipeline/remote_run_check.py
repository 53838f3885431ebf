"""Runs the whole pipeline with its data, pipeline root and serving folder on ``ram://``.

Run in a fresh process by ``test_remote_filesystem.py``: ``ram://`` lives in one process's
memory, so the run, the listing of what it wrote and the SavedModel check all happen here.
Prints one JSON object: the run summary, every file written under each ``ram://`` root, and
the embedding of one row by the pushed model loaded back from ``ram://``.
"""

import json
import sys

import tensorflow as tf

import tfx_metric_learning.testing.filesystems as ram
from tfx_metric_learning.pipeline import data, local_runner
from tfx_metric_learning.pipeline.config import PipelineConfig
from tfx_metric_learning.trainer_module.settings import TrainingSettings

ROOTS = {
    "data": "ram://bucket/data",
    "root": "ram://bucket/pipeline",
    "serving": "ram://bucket/serving",
}


def main(state_dir: str) -> None:
    csv_path = f"{ROOTS['data']}/digits.csv"
    data.write_if_changed(csv_path, data.digits_csv_text(limit=600))
    config = PipelineConfig(
        pipeline_root=ROOTS["root"],
        metadata_path=f"{state_dir}/metadata.sqlite",
        serving_dir=ROOTS["serving"],
        data=csv_path,
        training=TrainingSettings(epochs=8, batch_size=64),
    )
    summary = local_runner.run(
        config, progress=lambda line: print(line, file=sys.stderr), log_file=f"{state_dir}/run.log"
    )
    written = {name: ram.walk(uri) for name, uri in ROOTS.items()}
    embedding = None
    if summary.get("pushed_model"):
        model = tf.saved_model.load(summary["pushed_model"])
        row = data.digits_csv_text(limit=1).splitlines()
        names, values = row[0].split(","), row[1].split(",")
        features = {
            n: tf.constant([float(v)]) for n, v in zip(names, values, strict=True) if n != "label"
        }
        embedding = model.signatures["serving_default"](**features)["embedding"].numpy().tolist()
    print(json.dumps({"summary": summary, "written": written, "embedding": embedding}, default=str))


if __name__ == "__main__":
    main(sys.argv[1])
