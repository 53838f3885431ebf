"""What PairGen built, handed to the Trainer (and the Tuner) inside the schema it gives them.

PairGen's ``schema`` output is the one file TFX hands ``run_fn`` and the Tuner's ``tuner_fn``
(``fn_args.schema_path``), so PairGen records there, as a ``google.protobuf.StringValue`` of
JSON in ``schema.annotation.extra_metadata``, what the Trainer checks against its loss and
sizes its epochs by: the mode, K negatives, the P x K shape and each split's example and row
counts (``RECORD_KEYS``). TFXIO and TFDV ignore schema annotations. PairGen's full statistics
stay in ``pair_gen_stats.json`` beside its examples, for people.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import wrappers_pb2
from tensorflow_metadata.proto.v0 import schema_pb2

TAG = "pair_gen_build"  # the record's one top-level key, which tells it apart
RECORD_KEYS = ("mode", "num_negatives", "pk_classes", "pk_examples", "splits")
SPLIT_KEYS = ("examples", "rows")


def record(stats: dict[str, Any]) -> dict[str, Any]:
    """The part of PairGen's statistics the Trainer reads (``RECORD_KEYS``)."""
    out = {k: stats[k] for k in RECORD_KEYS if k != "splits"}
    out["splits"] = {
        name: {k: split[k] for k in SPLIT_KEYS} for name, split in stats["splits"].items()
    }
    return out


def annotate(schema: schema_pb2.Schema, stats: dict[str, Any]) -> None:
    """Adds the build record of ``stats`` to ``schema`` (replacing an earlier one)."""
    kept = [a for a in schema.annotation.extra_metadata if _read_one(a) is None]
    del schema.annotation.extra_metadata[:]
    schema.annotation.extra_metadata.extend(kept)
    value = wrappers_pb2.StringValue(value=json.dumps({TAG: record(stats)}, sort_keys=True))
    schema.annotation.extra_metadata.add().Pack(value)


def read(schema: schema_pb2.Schema, where: str) -> dict[str, Any]:
    """The build record in ``schema``; a ``ValueError`` naming ``where`` when it has none."""
    for any_message in schema.annotation.extra_metadata:
        found = _read_one(any_message)
        if found is not None:
            return found
    raise ValueError(
        f"the schema {where} carries no PairGen build record; it must be PairGen's schema "
        f"output (re-run PairGen if it was written by an older version)"
    )


def _read_one(any_message) -> dict[str, Any] | None:
    value = wrappers_pb2.StringValue()
    if not any_message.Is(value.DESCRIPTOR) or not any_message.Unpack(value):
        return None
    try:
        decoded = json.loads(value.value)
    except json.JSONDecodeError:
        return None
    return decoded.get(TAG) if isinstance(decoded, dict) else None
