"""``metric-learning embed`` and ``metric-learning query``: the pushed model, for people.

Both read a CSV file of rows (any encoding and delimiter the pipeline reads; columns
sanitised into feature names by the pipeline's rule, ``rows.sanitize_header``; a missing or
non-numeric value is NaN, which the model imputes) or a TFRecord file of tf.Examples
(``components/gallery_index/catalogue.read_table``) and load a pushed version with
``components/gallery_index/lookup.Lookup`` (``--serving-dir``: its production version by
default, ``--version`` another). ``embed`` writes each row's embedding (CSV, Parquet or
TFRecord, by the output's extension); ``query`` prints each row's k nearest gallery items
with their labels and similarities and the match decision, as a table or JSON lines. Rows
go through the model ``lookup.BATCH_ROWS`` at a time, with progress on stderr for files of
more than one batch.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.gallery_index import catalogue

PROGRESS_ROWS = 50_000  # a progress line on stderr every this many rows
OUTPUT_FORMATS = (".csv", ".parquet", ".tfrecord")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--serving-dir", required=True, help="the serving folder the pipeline pushes to"
    )
    parser.add_argument(
        "--version", default="", help="a pushed version (default: the production one)"
    )
    parser.add_argument(
        "--data",
        required=True,
        help="a CSV file of rows (header first), or a TFRecord file of tf.Examples "
        "(.tfrecord, .tfrecord.gz)",
    )
    parser.add_argument(
        "--label-column", default="label", help="a column of labels, if the file has one"
    )
    parser.add_argument("--id-column", default="", help="a column of row ids (default: row)")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--delimiter", default="", help="one character; default: detected")


def add_parser(sub, name: str) -> None:
    """The ``embed`` or the ``query`` subparser (``name``)."""
    if name == "embed":
        parser = sub.add_parser(name, help="embed the rows of a CSV file with a pushed model")
        _common(parser)
        parser.add_argument(
            "--output", required=True, help=f"the file to write ({', '.join(OUTPUT_FORMATS)})"
        )
        return
    parser = sub.add_parser(
        name, help="the nearest gallery items of each row, and whether it is a match"
    )
    _common(parser)
    parser.add_argument("-k", type=int, default=10, help="neighbours per row")
    parser.add_argument("--json", action="store_true", help="JSON lines instead of a table")


def read_table(args: argparse.Namespace) -> tuple[dict, np.ndarray | None, list[str]]:
    """``(features {name: float32 values}, labels or None, ids)`` of the CSV file."""
    table = catalogue.read_table(
        args.data,
        label_column=args.label_column,
        id_column=args.id_column,
        encoding=args.encoding,
        delimiter=args.delimiter,
    )
    if table.skipped:
        print(f"skipped {table.skipped} row(s) of the wrong number of fields", file=sys.stderr)
    if not len(table):
        raise DataError(f"{args.data} has no rows")
    return table.features, table.labels, table.ids


def _load(args: argparse.Namespace):
    from tfx_metric_learning.components.gallery_index.lookup import Lookup

    if args.version:
        return Lookup.load(os.path.join(args.serving_dir, args.version))
    return Lookup.load(args.serving_dir)


def _embed_all(lookup, features: dict) -> np.ndarray:
    total = len(next(iter(features.values())))
    parts = []
    for start in range(0, total, PROGRESS_ROWS):
        chunk = {n: v[start : start + PROGRESS_ROWS] for n, v in features.items()}
        parts.append(lookup.embed(chunk))
        if total > PROGRESS_ROWS:
            print(f"embedded {min(start + PROGRESS_ROWS, total)}/{total} rows", file=sys.stderr)
    return np.concatenate(parts)


def write_embeddings(path: str, ids: list[str], labels, embeddings: np.ndarray) -> None:
    """Writes ids, labels (when known) and embeddings in the format of ``path``'s extension."""
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        import csv

        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            label_header = ["label"] if labels is not None else []
            writer.writerow(["id", *label_header, *[f"e{j}" for j in range(embeddings.shape[1])]])
            for i, row in enumerate(embeddings):
                label = [labels[i]] if labels is not None else []
                writer.writerow([ids[i], *label, *(f"{x:.7g}" for x in row)])
    elif ext == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {"id": ids, "embedding": [list(map(float, r)) for r in embeddings]}
        if labels is not None:
            columns["label"] = list(labels)
        pq.write_table(pa.table(columns), path)
    elif ext == ".tfrecord":
        import tensorflow as tf

        with tf.io.TFRecordWriter(path) as out:
            for i, row in enumerate(embeddings):
                ex = tf.train.Example()
                ex.features.feature["id"].bytes_list.value.append(ids[i].encode())
                if labels is not None:
                    ex.features.feature["label"].bytes_list.value.append(labels[i].encode())
                ex.features.feature["embedding"].float_list.value.extend(row.tolist())
                out.write(ex.SerializeToString())
    else:
        raise ValueError(f"--output {path}: the extension must be one of {OUTPUT_FORMATS}")


def main(args: argparse.Namespace) -> int:
    """``embed`` or ``query``; 2 when refused (bad file, features, version)."""
    try:
        if args.command == "embed":
            ext = os.path.splitext(args.output)[1].lower()
            if ext not in OUTPUT_FORMATS:
                raise ValueError(
                    f"--output {args.output}: the extension must be one of {OUTPUT_FORMATS}"
                )
        elif args.k < 1:
            raise ValueError(f"-k must be >= 1, got {args.k}")
        features, labels, ids = read_table(args)
        lookup = _load(args)
        embeddings = _embed_all(lookup, features)
    except (ValueError, FileNotFoundError) as e:  # DataError is a ValueError
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.command == "embed":
        write_embeddings(args.output, ids, labels, embeddings)
        print(f"Wrote {len(ids)} embeddings of {embeddings.shape[1]} dimensions: {args.output}")
        return 0
    found = lookup.search(embeddings, args.k)
    for i in range(len(ids)):
        neighbours = [
            {"id": found.ids[i, j], "label": found.labels[i, j], "similarity": float(s)}
            for j, s in enumerate(found.similarities[i])
            if np.isfinite(s)
        ]
        if args.json:
            line = {"row": ids[i], "match": bool(found.match[i]), "neighbours": neighbours}
            if labels is not None:
                line["label"] = labels[i]
            print(json.dumps(line))
        else:
            top = neighbours[0]
            decision = f"match {top['label']}" if found.match[i] else "unknown"
            given = f"  (label {labels[i]})" if labels is not None else ""
            print(f"{ids[i]}: {decision}  nearest {top['label']} {top['similarity']:.4f}{given}")
    threshold = "none" if lookup.threshold is None else f"{lookup.threshold:.4f}"
    summary = f"{len(ids)} rows; {int(found.match.sum())} matched (threshold {threshold})"
    if labels is not None:
        right = float((found.labels[:, 0] == labels).mean())
        summary += f"; nearest label right for {right:.1%} of them"
    print(summary, file=sys.stderr)
    return 0
