"""Serialized ``tf.train.Example`` bytes, built directly: fast and deterministic.

Byte-identical to ``Example.SerializeToString(deterministic=True)`` (features sorted by
name), which a protobuf map does not promise otherwise. Each feature is a map entry
``{1: name, 2: Feature}``; a ``Feature`` is ``{1: BytesList, 2: FloatList, 3: Int64List}``;
float and int64 values are packed. A float feature's entry is a constant prefix followed by
the row's raw little-endian float32 bytes, so a row costs one join.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def varint(value: int) -> bytes:
    """Protobuf base-128 varint (negative values as 64-bit two's complement)."""
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        bits = value & 0x7F
        value >>= 7
        if value:
            out.append(bits | 0x80)
        else:
            out.append(bits)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return bytes([number << 3 | 2]) + varint(len(payload)) + payload


def _entry(name: str, feature: bytes) -> bytes:
    return _field(1, _field(1, name.encode()) + _field(2, feature))


def bytes_feature_entry(name: str, values: Sequence[bytes]) -> bytes:
    """The map entry of a bytes feature."""
    return _entry(name, _field(1, b"".join(_field(1, v) for v in values)))


def int64_feature_entry(name: str, values: Sequence[int]) -> bytes:
    """The map entry of an int64 feature."""
    packed = b"".join(varint(int(v)) for v in values)
    return _entry(name, _field(3, _field(1, packed) if values else b""))


def float_entry_prefix(name: str, width: int) -> bytes:
    """The map entry of a float feature of ``width`` values, minus the values' bytes."""
    values = 4 * width
    float_list = bytes([1 << 3 | 2]) + varint(values) if width else b""
    feature = bytes([2 << 3 | 2]) + varint(len(float_list) + values) + float_list
    key = _field(1, name.encode())
    body = key + bytes([2 << 3 | 2]) + varint(len(feature) + values) + feature
    return bytes([1 << 3 | 2]) + varint(len(body) + values) + body


def serialize(columns: dict[str, tuple[str, object]], rows: int) -> list[bytes]:
    """Serialized examples from columns ``name -> (kind, data)``, one value set per row.

    ``float``: an array ``[rows, ...]`` (each row flattened); ``bytes``: one bytes value per
    row; ``int64``: one integer per row.
    """
    parts = []
    for name in sorted(columns):
        kind, data = columns[name]
        if kind == "float":
            matrix = np.ascontiguousarray(data, "<f4").reshape(rows, -1)
            prefix = float_entry_prefix(name, matrix.shape[1])
            parts.append([prefix + row.tobytes() for row in matrix])
        else:
            make = bytes_feature_entry if kind == "bytes" else int64_feature_entry
            cache: dict = {}
            column = []
            for value in data:
                if value not in cache:
                    cache[value] = make(name, [value])
                column.append(cache[value])
            parts.append(column)
    out = []
    for row in zip(*parts, strict=True):
        body = b"".join(row)
        out.append(b"\x0a" + varint(len(body)) + body)
    return out
