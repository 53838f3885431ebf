r"""Reading CSV files in byte ranges, a batch of lines at a time.

ExampleGen's unit of work is a byte range of a file: ``plan`` cuts every plain file into ranges
of ``RANGE_BYTES`` (a gzip file cannot be entered in the middle and is one range), and
``read_batches`` reads one range into lists of at most ``batch_rows`` lines. A Beam element is
then a range or a batch, never a line: the runner handles ~50 elements per million rows
instead of a million, and worker processes (``direct_running_mode=multi_processing``, or a
distributed runner) each take whole ranges.

The rule that makes the ranges exact (Beam's text source follows the same one): a line
belongs to the range in which its first byte lies. A range ``[start, end)`` with ``start > 0``
skips the bytes up to and including the first ``\n`` at or after ``start - 1`` (the end of
the line owned by the previous range), then reads lines while a line's first byte is before
``end``; so every line is read exactly once, whatever the range size, and a range that holds
no line's first byte reads nothing. The header's lines (``files.CsvHeader.lines``) belong to
no range: every range reads them first (a few bytes) to know where the data starts, and a
range that starts inside them starts at the first data line. Lines end at ``\n``; the
``\n`` or ``\r\n`` is removed, as Beam's ``ReadFromText`` removes it. Memory: one batch of
lines per range being read.

Written here because Beam's ``ReadFromText`` yields one element per line and its range
splitting is internal to the runner.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping

from tfx.dsl.io import fileio

from tfx_metric_learning.components.example_gen.files import open_binary
from tfx_metric_learning.core.records import is_gzip

# bytes of a plain file per range: 16 MB is ~33,000 rows of 64 features
RANGE_BYTES = 16 << 20


@dataclasses.dataclass(frozen=True)
class ByteRange:
    """Lines of ``path`` whose first byte is in ``[start, end)`` (``end`` -1: to the end)."""

    path: str
    start: int
    end: int
    header_lines: int


def plan(
    paths: list[str], header_lines: int | Mapping[str, int], range_bytes: int = 0
) -> list[ByteRange]:
    """The ranges of every file: ``range_bytes`` (0: ``RANGE_BYTES``) each, a gzip file whole.

    ``header_lines``: the lines every file's header spans, or those of each path.
    """
    range_bytes = range_bytes or RANGE_BYTES
    out = []
    for path in paths:
        lines = header_lines if isinstance(header_lines, int) else header_lines[path]
        size = -1 if is_gzip(path) else fileio.stat(path).length
        if size < 0:
            out.append(ByteRange(path, 0, -1, lines))
            continue
        starts = range(0, max(size, 1), range_bytes)
        out.extend(ByteRange(path, s, min(s + range_bytes, size), lines) for s in starts)
    return out


def _strip(line: bytes) -> bytes:
    if line.endswith(b"\n"):
        line = line[:-2] if line.endswith(b"\r\n") else line[:-1]
    return line


def read_batches(r: ByteRange, batch_rows: int) -> Iterator[list[bytes]]:
    """The lines of ``r`` (without their line ends) in lists of at most ``batch_rows``."""
    with open_binary(r.path) as f:
        header_end = sum(len(f.readline()) for _ in range(r.header_lines))
        position = header_end
        if r.start > header_end:
            f.seek(r.start - 1)
            position = r.start - 1 + len(f.readline())
        batch: list[bytes] = []
        while r.end < 0 or position < r.end:
            line = f.readline()
            if not line:
                break
            position += len(line)
            batch.append(_strip(line))
            if len(batch) == batch_rows:
                yield batch
                batch = []
        if batch:
            yield batch
