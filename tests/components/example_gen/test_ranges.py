"""Byte ranges read every line of a file exactly once, whatever the range size."""

import gzip
import random

import pytest

from tfx_metric_learning.components.example_gen import ranges


def _lines_of(data: bytes, header_lines: int) -> list[bytes]:
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines][header_lines:]


def _read_all(paths, header_lines, range_bytes, batch_rows=3):
    out = []
    for r in ranges.plan(paths, header_lines, range_bytes):
        for batch in ranges.read_batches(r, batch_rows):
            assert 0 < len(batch) <= batch_rows
            out.extend(batch)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_every_line_once_in_order_for_any_range_size(tmp_path, seed):
    rng = random.Random(seed)
    parts = []
    for _ in range(rng.randint(0, 60)):
        line = bytes(rng.choice(b"ab,1\r") for _ in range(rng.choice([0, 1, 2, 5, 30])))
        parts.append(line + rng.choice([b"\n", b"\r\n"]))
    data = b"".join(parts)
    if data and rng.random() < 0.5:
        data = data.rstrip(b"\r\n") + b"x"  # no line end at the end of the file
    path = tmp_path / "f.csv"
    path.write_bytes(data)
    header = rng.choice([0, 1, 2])
    expected = _lines_of(data, header)
    for range_bytes in (1, 2, 3, 7, 16, 64, 10**6):
        assert _read_all([str(path)], header, range_bytes) == expected, range_bytes


def test_plan_cuts_plain_files_and_keeps_a_gzip_file_whole(tmp_path):
    plain, packed, empty = tmp_path / "a.csv", tmp_path / "b.csv.gz", tmp_path / "c.csv"
    plain.write_bytes(b"h\n" + b"1,2\n" * 10)  # 42 bytes
    packed.write_bytes(gzip.compress(b"h\n" + b"3,4\n" * 10))
    empty.write_bytes(b"")
    planned = ranges.plan([str(plain), str(packed), str(empty)], 1, range_bytes=16)
    assert [(r.start, r.end, r.header_lines) for r in planned] == [
        (0, 16, 1),
        (16, 32, 1),
        (32, 42, 1),
        (0, -1, 1),
        (0, 0, 1),
    ]
    lines = _read_all([str(plain), str(packed), str(empty)], 1, 16)
    assert lines == [b"1,2"] * 10 + [b"3,4"] * 10
