"""Reading the input files, with errors that name the file and the likely cause.

CSV (plain or gzip, any text encoding, any one-character delimiter) and tf.Example TFRecords.

Shared by the ExampleGen executor and the CLI's checks before a run, so both read a file the
same way:

- a ``.gz`` file is gunzipped (CSV or TFRecord);
- the CSV header is parsed as CSV (RFC 4180 quoting), so a quoted field may hold a newline;
  ``header.lines`` says how many physical lines it spans (the lines Beam skips). Data rows are
  read one line each by Beam's text reader, like TFX's ``CsvExampleGen``; a data row broken
  by a quoted newline is counted as a bad row (``wrong_field_count``), never mis-read;
- the delimiter is the setting's, or detected from the header: the candidate among
  ``DELIMITERS`` that splits it into the most fields (a comma on ties);
- bytes that are not valid in the encoding stop the run naming the file, line and byte, and
  suggesting ``--encoding``; a corrupt or truncated TFRecord names the file and the record.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import gzip
import io
from collections.abc import Iterator

from tfx.dsl.io import fileio

from tfx_metric_learning.core import records as tfrecords
from tfx_metric_learning.core.records import is_gzip

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}
TFRECORD_SUFFIXES = (".tfrecord", ".tfrecords", ".tfrecord.gz", ".tfrecords.gz", ".tfr")
CSV_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")
# The likely encoding of text that is not UTF-8 (Western European exports, spreadsheets).
LIKELY_ENCODING = "latin-1"
GZIP_MAGIC = b"\x1f\x8b"


class DataError(ValueError):
    """The input data cannot be used; the message names the file, column or split."""


def is_tfrecord(path: str) -> bool:
    """Whether ``path`` is read as tf.Example TFRecords (otherwise as CSV)."""
    return path.lower().endswith(TFRECORD_SUFFIXES)


class _RawStream(io.RawIOBase):
    """A ``fileio`` file as a standard raw stream (``GFile`` is not one: no ``readable``)."""

    def __init__(self, handle):
        self._handle = handle

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._handle.seek(offset, whence)
        return self._handle.tell()

    def tell(self) -> int:
        return self._handle.tell()

    def readinto(self, buffer) -> int:
        data = self._handle.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._handle.close()
        super().close()


@contextlib.contextmanager
def open_binary(path: str):
    """A buffered binary stream of the file's content (gunzipped for ``.gz``), local or a URI.

    A plain file's stream can seek (``ranges`` starts reading in the middle of a file).
    """
    stream = io.BufferedReader(_RawStream(fileio.open(path, "rb")), buffer_size=1 << 20)
    try:
        yield gzip.GzipFile(fileobj=stream, mode="rb") if is_gzip(path) else stream
    finally:
        stream.close()


def delimiter_char(setting: str) -> str:
    """The delimiter of a setting value (``"tab"`` or one character); ``""`` = detect."""
    return "\t" if setting.lower() == "tab" else setting


def decode_error(
    path: str, line: int | None, error: UnicodeDecodeError, encoding: str
) -> DataError:
    """The error for bytes that are not text in ``encoding``: file, line, byte, a remedy."""
    where = f"{path}{'' if line is None else f', line {line}'}"
    if bytes(error.object[:2]) == GZIP_MAGIC:
        return DataError(f"{where}: the file is gzip-compressed; its name must end in .gz")
    byte = error.object[error.start : error.start + 1].hex()
    hint = (
        f"the file is probably {LIKELY_ENCODING} or cp1252: pass --encoding {LIKELY_ENCODING}"
        if codecs.lookup(encoding).name == "utf-8"
        else "pass the file's encoding with --encoding"
    )
    return DataError(f"{where}: byte 0x{byte} is not valid {encoding} text; {hint}")


def decode_line(data: bytes, encoding: str, path: str, line: int | None = None) -> str:
    """``data`` as text, or a ``DataError`` naming the file and line."""
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise decode_error(path, line, e, encoding) from None


def detect_delimiter(text: str) -> str:
    """The candidate delimiter that splits ``text`` (one CSV record) into the most fields."""
    best, best_count = DELIMITERS[0], 1
    for candidate in DELIMITERS:
        count = len(next(csv.reader(io.StringIO(text), delimiter=candidate), []))
        if count > best_count:
            best, best_count = candidate, count
    return best


@dataclasses.dataclass(frozen=True)
class CsvHeader:
    """A CSV file's header: its column names, the delimiter, and the lines it spans."""

    columns: list[str]
    delimiter: str
    lines: int


def read_header(path: str, encoding: str = "utf-8", delimiter: str = "") -> CsvHeader:
    """Parses the first CSV record of ``path`` (which may span lines inside quotes)."""
    text, lines = "", 0
    with open_binary(path) as f:
        for raw in f:
            lines += 1
            text += decode_line(raw, encoding, path, lines)
            if text.count('"') % 2 == 0:  # every quoted field closed: the record is complete
                break
    record = text.rstrip("\r\n")
    if not record.strip():
        raise DataError(f"{path} is empty: expected a CSV header line")
    delim = delimiter_char(delimiter) or detect_delimiter(record)
    columns = next(csv.reader(io.StringIO(record), delimiter=delim), [])
    return CsvHeader(columns=columns, delimiter=delim, lines=lines)


def split_fields(line: str, delimiter: str) -> list[str]:
    """Fields of one CSV line (RFC 4180 quoting)."""
    return next(csv.reader(io.StringIO(line), delimiter=delimiter), [])


def iter_csv_rows(path: str, encoding: str, header: CsvHeader) -> Iterator[list[str]]:
    """The data rows of a CSV file as field lists (header skipped; quoted newlines kept)."""
    with open_binary(path) as f:
        lines = (decode_line(raw, encoding, path, number) for number, raw in enumerate(f, 1))
        for i, fields in enumerate(csv.reader(lines, delimiter=header.delimiter)):
            if i:
                yield fields


def label_hint(header: CsvHeader) -> str:
    """A hint when a header reads as one column holding another delimiter ("" otherwise)."""
    if len(header.columns) != 1:
        return ""
    found = [d for d in DELIMITERS if d != header.delimiter and d in header.columns[0]]
    if not found:
        return ""
    name = DELIMITER_NAMES[found[0]]
    shown = "tab" if found[0] == "\t" else found[0]
    return (
        f"; the header reads as one column holding {name}s: if the file is {name}-separated, "
        f"pass --delimiter '{shown}' (or leave --delimiter unset to detect it)"
    )


def iter_tfrecords(path: str) -> Iterator[bytes]:
    """The records of a TFRecord file, or a ``DataError`` naming the file and the record."""
    import tensorflow as tf

    count = 0
    try:
        for record in tfrecords.iter_records(path):
            count += 1
            yield record
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as e:
        raise DataError(
            f"{path} is not a readable TFRecord file: after {count} good record(s), "
            f"{type(e).__name__} ({e.message.splitlines()[0] if e.message else e}); the file is "
            f"corrupt or truncated"
            + ("" if is_gzip(path) else ", or compressed (a gzip file must end in .gz)")
        ) from None


def parse_example(data: bytes, path: str):
    """A ``tf.train.Example`` from a record of ``path``, or a ``DataError`` naming the file."""
    import tensorflow as tf
    from google.protobuf.message import DecodeError

    try:
        return tf.train.Example.FromString(data)
    except DecodeError as e:
        raise DataError(f"{path} holds a record that is not a tf.Example ({e})") from None


def tfrecord_columns(path: str) -> list[str]:
    """The feature names of the first tf.Example of ``path``, sorted."""
    for record in iter_tfrecords(path):
        return sorted(parse_example(record, path).features.feature.keys())
    raise DataError(f"{path} holds no records")
