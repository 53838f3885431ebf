"""PairGen's build record travels in the schema it hands the Trainer."""

import pytest
from google.protobuf import wrappers_pb2
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.utils import io_utils

from tfx_metric_learning.trainer_module import pair_gen_build

STATS = {
    "mode": "triplets_k",
    "num_negatives": 3,
    "pk_classes": 8,
    "pk_examples": 4,
    "splits": {
        "train": {"examples": 120, "rows": 40, "per_class": {"a": 60, "b": 60}},
        "valid": {"examples": 10, "rows": 10, "classes": 2},
    },
}


def test_record_round_trips_through_the_schema_file(tmp_path):
    schema = schema_pb2.Schema()
    schema.feature.add(name="anchor", type=schema_pb2.FLOAT)
    other = wrappers_pb2.StringValue(value='{"someone": "else"}')
    schema.annotation.extra_metadata.add().Pack(other)  # kept: not ours
    pair_gen_build.annotate(schema, STATS)
    pair_gen_build.annotate(schema, STATS | {"num_negatives": 4})  # replaces, never stacks
    path = str(tmp_path / "schema.pbtxt")
    io_utils.write_pbtxt_file(path, schema)
    loaded = io_utils.parse_pbtxt_file(path, schema_pb2.Schema())
    got = pair_gen_build.read(loaded, path)
    assert got == {
        "mode": "triplets_k",
        "num_negatives": 4,
        "pk_classes": 8,
        "pk_examples": 4,
        "splits": {"train": {"examples": 120, "rows": 40}, "valid": {"examples": 10, "rows": 10}},
    }
    assert len(loaded.annotation.extra_metadata) == 2


def test_a_schema_without_a_record_is_refused_by_name():
    with pytest.raises(ValueError, match="the schema some/schema.pbtxt carries no PairGen build"):
        pair_gen_build.read(schema_pb2.Schema(), "some/schema.pbtxt")
