"""ClassBalance's executor: counts rows per class in every split of an ``Examples`` artifact.

Reads the gzipped TFRecord files of each ``Split-<name>`` folder and writes ``BALANCE_FILE``:
``{"splits": {split: {label: rows}}, "under_minimum": {split: [labels]}, "min_rows": m}``.
Everything is read and written through ``tfx.dsl.io.fileio`` and ``tf.data`` (which takes any
``tf.io.gfile`` URI), so it runs on a bucket as on local disk; the file is written whole
(temporary name, then rename), so a killed run leaves no partial report.
"""

from __future__ import annotations

import collections
import json
from typing import Any

import tensorflow as tf
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils

from acme_embeddings.class_balance import spec


def count_classes(split_folder: str, label_feature: str) -> dict[str, int]:
    """Rows per label in the TFRecord files of one split folder."""
    files = sorted(fileio.glob(f"{split_folder.rstrip('/')}/*"))
    counts: collections.Counter = collections.Counter()
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        feature = example.features.feature[label_feature]
        counts[feature.bytes_list.value[0].decode()] += 1
    return dict(sorted(counts.items()))


class Executor(base_executor.BaseExecutor):
    """Counts and reports; see the module docstring."""

    def Do(self, input_dict: dict, output_dict: dict, exec_properties: dict[str, Any]) -> None:
        examples = artifact_utils.get_single_instance(input_dict[spec.EXAMPLES_KEY])
        out = artifact_utils.get_single_instance(output_dict[spec.BALANCE_KEY])
        minimum = int(exec_properties.get(spec.MIN_ROWS_KEY) or 1)
        label = exec_properties.get(spec.LABEL_KEY) or "label"
        splits = {
            name: count_classes(artifact_utils.get_split_uri([examples], name), label)
            for name in artifact_utils.decode_split_names(examples.split_names)
        }
        report = {
            "min_rows": minimum,
            "splits": splits,
            "under_minimum": {
                name: [c for c, n in counts.items() if n < minimum]
                for name, counts in splits.items()
            },
        }
        path = f"{out.uri.rstrip('/')}/{spec.BALANCE_FILE}"
        with fileio.open(path + ".tmp", "w") as f:
            f.write(json.dumps(report, indent=1))
        fileio.rename(path + ".tmp", path, overwrite=True)
