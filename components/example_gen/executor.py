"""ExampleGen executor for labelled numeric data (CSV or tf.Example TFRecords).

It runs inside TFX's ``FileBasedExampleGen`` (its driver, span handling and caching are
TFX's own) and replaces only the Beam conversion, in order to:

- read CSV (plain or gzip, the setting's encoding and delimiter, a header that may span
  lines) or TFRecords, naming the columns by one rule (``files``, ``layout``);
- validate every row (missing label, wrong field count, non-numeric or infinite values),
  dropping bad rows and counting them per reason and per file;
- with a span pattern, read the window of spans up to the newest one the driver resolved
  (``spans``), leaving out spans validation rejected, and write the newest span's rows again
  as the ``new_span`` split; the spans read are recorded in the report and on the artifact;
- split by the evaluation protocol: ``seen_classes`` (an exact, stratified share of every
  class held out, chosen by a seeded hash of the row) or ``unseen_classes`` (whole classes
  held out), as ``split_plan`` computes it from the class sizes; then, with
  ``validation_fraction`` > 0, the ``valid`` split out of the training rows the same way (the
  next hashes of each class, or the upper training classes);
- write ``ingest_report.json`` beside the splits, then fail the execution with an error
  naming the file, column or split when the data is unusable.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import apache_beam as beam
from absl import logging
from google.protobuf import json_format, struct_pb2
from tfx.components.example_gen import utils as tfx_example_gen_utils
from tfx.components.example_gen.base_example_gen_executor import BaseExampleGenExecutor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from tfx_metric_learning.components.data_validator import ledger
from tfx_metric_learning.components.example_gen import files, rows, spans, split_plan
from tfx_metric_learning.components.example_gen.files import DataError
from tfx_metric_learning.components.example_gen.layout import InputLayout, read_layout
from tfx_metric_learning.components.example_gen.settings import IngestSettings
from tfx_metric_learning.components.example_gen.split_plan import EVAL, NEW_SPAN, TRAIN, VALID

REPORT_FILE = "ingest_report.json"
# custom properties of the examples artifact (ML Metadata): the spans read, those left out
SPANS_PROPERTY = "spans"
LEFT_OUT_PROPERTY = "spans_left_out"


def ingest_settings(exec_properties: dict[str, Any]) -> IngestSettings:
    """The ingest settings in ExampleGen's ``custom_config``; all of them.

    Either packed (as a Struct) in the ``CustomConfig`` proto, or, from a runtime parameter,
    the settings' own JSON object.
    """
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    source = "ExampleGen's custom_config"
    data: dict[str, Any] = {}
    if raw:
        parsed = json.loads(raw)
        if not (set(parsed) <= {"custom_config", "customConfig"}):
            return IngestSettings.from_dict(parsed, complete=True, source=source)
        config = example_gen_pb2.CustomConfig()
        proto_utils.json_to_proto(raw, config)
        struct = struct_pb2.Struct()
        if config.custom_config.Unpack(struct):
            data = json_format.MessageToDict(struct)
    return IngestSettings.from_dict(data, complete=True, source=source)


def pack_settings(settings: IngestSettings) -> example_gen_pb2.CustomConfig:
    """Packs ingest settings into the ``CustomConfig`` proto ``FileBasedExampleGen`` takes."""
    struct = struct_pb2.Struct()
    struct.update(settings.to_dict())
    config = example_gen_pb2.CustomConfig()
    config.custom_config.Pack(struct)
    return config


def _example_values(example, renamed: dict[str, str]) -> dict[str, Any]:
    """``{feature name: value}`` of a tf.Example (features of other names are left out)."""
    values: dict[str, Any] = {}
    for raw_name, feature in example.features.feature.items():
        name = renamed.get(raw_name)
        if name is None:
            continue
        kind = feature.WhichOneof("kind")
        items = list(getattr(feature, kind).value) if kind else []
        if len(items) > 1:
            values[name] = f"<{len(items)} values>"  # not a scalar: reported as non-numeric
        elif not items:
            values[name] = None
        elif kind == "bytes_list":
            values[name] = items[0].decode("utf-8", errors="replace")
        else:
            values[name] = items[0]
    return values


class _ValidateRow(beam.DoFn):
    """(file, raw row) -> ("ok", label, serialized, missing cols, file) or ("bad", file, info).

    A CSV row arrives as the bytes of one line and is decoded with the setting's encoding
    (bytes it cannot decode stop the run naming the file); a TFRecord row as a record.
    """

    def __init__(self, layout: InputLayout, encoding: str):
        self._layout = layout
        self._encoding = encoding

    def process(self, element: tuple[str, Any]):
        filename, raw = element
        layout = self._layout
        if layout.tfrecord:
            values = _example_values(files.parse_example(raw, filename), layout.renamed)
        else:
            line = files.decode_line(raw, self._encoding, filename)
            fields = files.split_fields(line.rstrip("\r\n"), layout.header.delimiter)
            if not fields or fields == [""]:
                return  # blank line
            if len(fields) != len(layout.names):
                yield ("bad", filename, {"reason": rows.WRONG_FIELD_COUNT})
                return
            values = dict(zip(layout.names, fields, strict=True))
        features, label, info = rows.validate_row(values, layout.feature_names, layout.label_name)
        if features is None:
            yield ("bad", filename, info)
            return
        example = rows.to_example(features, layout.label_name, label)
        yield (
            "ok",
            label,
            example.SerializeToString(deterministic=True),
            info["missing"],
            filename,
        )


class _ReportFn(beam.CombineFn):
    """Counts rows read, written, dropped (by reason and file), missing values and classes."""

    def create_accumulator(self) -> dict[str, Any]:
        return {
            "rows_read": 0,
            "rows_written": 0,
            "bad_rows": {},
            "bad_rows_by_file": {},
            "missing_values": {},
            "non_numeric": {},
            "classes": {},
        }

    def add_input(self, acc: dict[str, Any], record: tuple) -> dict[str, Any]:
        acc["rows_read"] += 1
        if record[0] == "ok":
            _, label, _, missing, _ = record
            acc["rows_written"] += 1
            acc["classes"][label] = acc["classes"].get(label, 0) + 1
            for col in missing:
                acc["missing_values"][col] = acc["missing_values"].get(col, 0) + 1
            return acc
        _, filename, info = record
        reason = info["reason"]
        acc["bad_rows"][reason] = acc["bad_rows"].get(reason, 0) + 1
        acc["bad_rows_by_file"][filename] = acc["bad_rows_by_file"].get(filename, 0) + 1
        if reason == rows.NON_NUMERIC:
            entry = acc["non_numeric"].setdefault(
                info["column"], {"count": 0, "example": info["value"], "file": filename}
            )
            entry["count"] += 1
        return acc

    def merge_accumulators(self, accumulators):
        merged = self.create_accumulator()
        for acc in accumulators:
            merged["rows_read"] += acc["rows_read"]
            merged["rows_written"] += acc["rows_written"]
            for key in ("bad_rows", "bad_rows_by_file", "missing_values", "classes"):
                for k, v in acc[key].items():
                    merged[key][k] = merged[key].get(k, 0) + v
            for col, entry in acc["non_numeric"].items():
                if col in merged["non_numeric"]:
                    merged["non_numeric"][col]["count"] += entry["count"]
                else:
                    merged["non_numeric"][col] = dict(entry)
        return merged

    def extract_output(self, acc: dict[str, Any]) -> dict[str, Any]:
        return acc


def _row_hash(seed: int, serialized: bytes) -> int:
    digest = hashlib.sha256(str(seed).encode() + b"\0" + serialized).digest()
    return int.from_bytes(digest[:8], "big")


def _cutoffs(
    element: tuple[str, list[int]], eval_fraction: float, validation_fraction: float
) -> tuple[str, tuple[int, int]]:
    """Per class: the hashes below which a row goes to eval, and then to valid.

    The ``eval_count(n, eval_fraction)`` lowest hashes go to eval, the next
    ``eval_count(n_train, validation_fraction)`` to valid (none when that fraction is 0), as
    ``split_plan`` plans them.
    """
    label, hashes = element
    hashes = sorted(hashes)
    k_eval = split_plan.eval_count(len(hashes), eval_fraction)
    k_valid = (
        split_plan.eval_count(len(hashes) - k_eval, validation_fraction)
        if validation_fraction > 0
        else 0
    )
    return label, (hashes[k_eval], hashes[k_eval + k_valid])


def _class_roles(report: dict, eval_classes: list[str], validation_fraction: float) -> dict:
    """``unseen_classes``: the held-out eval classes and the validation classes."""
    held = set(eval_classes)
    train = [c for c in report["classes"] if c not in held]
    valid = split_plan.default_validation_classes(train, validation_fraction)
    return {EVAL: sorted(held), VALID: valid}


class Executor(BaseExampleGenExecutor):
    """Validating, protocol-aware ExampleGen executor (CSV or tf.Example TFRecords)."""

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        """Not used: ``GenerateExamplesByBeam`` is overridden to split by protocol."""
        raise NotImplementedError

    def GenerateExamplesByBeam(
        self, pipeline: beam.Pipeline, exec_properties: dict[str, Any]
    ) -> dict[str, beam.pvalue.PCollection]:
        """Reads, validates and splits the rows; writes the ingest report."""
        settings = ingest_settings(exec_properties)
        read = _files_to_read(exec_properties, settings)
        paths = read["paths"]
        layout = read_layout(paths, settings)
        label_name, feature_names = layout.label_name, layout.feature_names
        logging.info(
            "ingesting %d file(s)%s: %d features, label %r",
            len(paths),
            f" of spans {[s['span'] for s in read['spans']]}" if read["spans"] else "",
            len(feature_names),
            label_name,
        )

        if layout.tfrecord:
            raw = (
                pipeline
                | "ReadTFRecords" >> beam.Create(paths)
                | "ReadEach" >> beam.FlatMap(_read_tfrecord_file)
            )
        else:
            reads = [
                pipeline
                | f"ReadCSV[{i}]"
                >> beam.io.ReadFromTextWithFilename(
                    pattern, skip_header_lines=layout.header.lines, coder=beam.coders.BytesCoder()
                )
                for i, pattern in enumerate(read["patterns"])
            ]
            raw = reads[0] if len(reads) == 1 else reads | "FlattenSpans" >> beam.Flatten()
        records = raw | "Validate" >> beam.ParDo(_ValidateRow(layout, settings.encoding))
        report = records | "Report" >> beam.CombineGlobally(_ReportFn())
        good = records | "KeepValid" >> beam.Filter(lambda r: r[0] == "ok")
        seed = settings.seed
        keyed = good | "Key" >> beam.Map(lambda r: (r[1], _row_hash(seed, r[2]), r[2]))

        validation_fraction = settings.validation_fraction
        if settings.protocol == "unseen_classes":
            chosen = settings.eval_classes
            if chosen:
                eval_classes = pipeline | "EvalClasses" >> beam.Create([sorted(map(str, chosen))])
            else:
                eval_classes = report | "DefaultEvalClasses" >> beam.Map(
                    lambda rep: split_plan.default_eval_classes(list(rep["classes"]))
                )
            roles = report | "ClassRoles" >> beam.Map(
                _class_roles, beam.pvalue.AsSingleton(eval_classes), validation_fraction
            )

            def by_class(r, n, roles):
                return 1 if r[0] in roles[EVAL] else 2 if r[0] in roles[VALID] else 0

            parts = keyed | "SplitByClass" >> beam.Partition(
                by_class, 3, roles=beam.pvalue.AsSingleton(roles)
            )
        else:
            fraction = settings.eval_fraction
            cutoffs = (
                keyed
                | "LabelHash" >> beam.Map(lambda r: (r[0], r[1]))
                | "GroupHashes" >> beam.GroupByKey()
                | "Cutoff" >> beam.Map(_cutoffs, fraction, validation_fraction)
            )

            def by_hash(r, n, cut):
                eval_cut, valid_cut = cut[r[0]]
                return 1 if r[1] < eval_cut else 2 if r[1] < valid_cut else 0

            parts = keyed | "Stratify" >> beam.Partition(
                by_hash, 3, cut=beam.pvalue.AsDict(cutoffs)
            )
            roles = None

        splits = {TRAIN: parts[0], EVAL: parts[1]}
        if validation_fraction > 0:
            splits[VALID] = parts[2]
        outputs = dict(splits)
        if read["new_span_paths"] is not None:
            newest = set(read["new_span_paths"])
            outputs[NEW_SPAN] = good | "NewSpan" >> beam.Filter(lambda r: r[4] in newest)
        per_split = {
            name: (
                pcoll
                | f"Label[{name}]" >> beam.Map(lambda r: r[0])
                | f"CountClasses[{name}]" >> beam.combiners.Count.PerElement()
                | f"ToDict[{name}]" >> beam.combiners.ToDict()
            )
            for name, pcoll in splits.items()
        }

        def finish(rep, counts, roles=None):
            rep = dict(rep)
            rep["files"] = paths
            rep["spans"] = read["spans"]
            rep["spans_left_out"] = read["left_out"]
            if layout.header is not None:
                rep["delimiter"] = layout.header.delimiter
                rep["encoding"] = settings.encoding
            rep["label_column"] = label_name
            rep["feature_columns"] = feature_names
            rep["protocol"] = settings.protocol
            rep["validation_fraction"] = validation_fraction
            rep["splits"] = {
                name: {"rows": sum(c.values()), "classes": c} for name, c in counts.items()
            }
            if roles is not None:
                rep["eval_classes"] = roles[EVAL]
                rep["validation_classes"] = roles[VALID]
            return json.dumps(rep, indent=2, sort_keys=True)

        extra = {"roles": beam.pvalue.AsSingleton(roles)} if roles is not None else {}
        counted = (
            [
                counts | f"Tag[{name}]" >> beam.Map(lambda c, name=name: (name, c))
                for name, counts in per_split.items()
            ]
            | "Splits" >> beam.Flatten()
            | "AllCounts" >> beam.combiners.ToDict()
        )
        _ = (
            report
            | "Finish" >> beam.Map(finish, beam.pvalue.AsSingleton(counted), **extra)
            | "WriteReport"
            >> beam.io.WriteToText(self._report_prefix, shard_name_template="", num_shards=1)
        )
        return {
            name: pcoll | f"Serialized[{name}]" >> beam.Map(lambda r: r[2])
            for name, pcoll in outputs.items()
        }

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        """Runs the conversion, then checks the ingest report and fails on unusable data."""
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY]
        )
        report_path = os.path.join(examples.uri, REPORT_FILE)
        self._report_prefix = report_path
        super().Do(input_dict, output_dict, exec_properties)
        with fileio.open(report_path, "r") as f:
            report = json.loads(f.read())
        check_report(report, ingest_settings(exec_properties))
        # the span and version the driver resolved, as the Examples type's own properties: the
        # driver records them as custom properties locally, but TFX's KFP v2 entrypoint builds
        # the output artifact without them
        if exec_properties.get(tfx_example_gen_utils.SPAN_PROPERTY_NAME) is not None:
            examples.span = int(exec_properties[tfx_example_gen_utils.SPAN_PROPERTY_NAME])
        if exec_properties.get(tfx_example_gen_utils.VERSION_PROPERTY_NAME) is not None:
            examples.version = int(exec_properties[tfx_example_gen_utils.VERSION_PROPERTY_NAME])
        if report["spans"]:
            examples.set_string_custom_property(
                SPANS_PROPERTY, ",".join(str(s["span"]) for s in report["spans"])
            )
            examples.set_string_custom_property(
                LEFT_OUT_PROPERTY, ",".join(str(s["span"]) for s in report["spans_left_out"])
            )
        logging.info(summarise_report(report))


def _files_to_read(exec_properties: dict[str, Any], settings: IngestSettings) -> dict[str, Any]:
    """The globs and files this execution reads, and the spans they belong to.

    Without spans: the one pattern of the input config. With spans: the window of spans up
    to the one the driver resolved (``exec_properties['span']``), leaving out those the span
    ledger holds as rejected at their current version.
    """
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config
    )
    if len(input_config.splits) != 1:
        raise DataError("expected one input split; the protocol makes train/eval/valid")
    base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
    resolved = input_config.splits[0].pattern
    output_config = example_gen_pb2.Output()
    proto_utils.json_to_proto(
        exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config
    )
    compiled = [s.name for s in output_config.split_config.splits]
    if (VALID in compiled) != (settings.validation_fraction > 0):
        raise DataError(
            f"validation_fraction {settings.validation_fraction} "
            f"{'asks for' if settings.validation_fraction > 0 else 'leaves out'} the "
            f"validation split, which the pipeline was compiled "
            f"{'without' if VALID not in compiled else 'with'}: a validation split changes "
            f"the pipeline's splits; compile it again"
        )
    compiled_spans = NEW_SPAN in compiled
    if compiled_spans != settings.uses_spans:
        raise DataError(
            f"the data pattern {settings.data_pattern!r} "
            f"{'has no' if compiled_spans else 'has a'} span spec, unlike the one the pipeline "
            f"was compiled with ({resolved!r}): a span pattern changes the pipeline; compile it "
            f"again"
        )
    out: dict[str, Any] = {"spans": [], "left_out": [], "new_span_paths": None}
    if not settings.uses_spans:
        pattern = os.path.join(base, resolved)
        paths = sorted(p for p in fileio.glob(pattern) if not fileio.isdir(p))
        if not paths:
            raise DataError(f"no input files match {pattern}")
        return {**out, "patterns": [pattern], "paths": paths}
    found = spans.find_spans(base, settings.data_pattern)
    newest = int(exec_properties.get("span") or max(found, default=0))
    if newest in found and found[newest].pattern != resolved:
        raise DataError(
            f"ExampleGen's input pattern {resolved!r} is not span {newest} of the data pattern "
            f"{settings.data_pattern!r}: the data pattern changed since the pipeline was "
            f"compiled; compile it again"
        )
    chosen, left_out = spans.window(
        found, newest, settings.window, ledger.rejected(settings.verdicts_dir)
    )
    patterns, paths, described = [], [], []
    for span in chosen:
        span_files = spans.span_paths(base, span)
        if not span_files:
            raise DataError(f"span {span.number} ({os.path.join(base, span.pattern)}) has no files")
        patterns.append(os.path.join(base, span.pattern))
        paths.extend(span_files)
        described.append({"span": span.number, "version": span.version, "files": span_files})
    out["new_span_paths"] = described[-1]["files"]
    out["left_out"] = [{"span": s.number, "version": s.version} for s in left_out]
    return {**out, "spans": described, "patterns": patterns, "paths": paths}


def _read_tfrecord_file(path: str):
    for record in files.iter_tfrecords(path):
        yield path, record


def summarise_report(report: dict[str, Any]) -> str:
    """One line: rows read, written, dropped (by reason), values imputed, split sizes."""
    bad = sum(report["bad_rows"].values())
    missing = sum(report["missing_values"].values())
    splits = ", ".join(f"{k}={v['rows']}" for k, v in sorted(report["splits"].items()))
    reasons = ", ".join(f"{k}={v}" for k, v in sorted(report["bad_rows"].items())) or "none"
    return (
        f"rows read {report['rows_read']}, kept {report['rows_written']}, dropped {bad} "
        f"({reasons}); missing feature values to impute {missing}; splits {splits}"
    )


def check_report(report: dict[str, Any], settings: IngestSettings) -> None:
    """Raises ``DataError`` naming what is wrong when the ingested data is unusable."""
    read = report["rows_read"]
    limit = settings.max_bad_row_fraction
    for column, entry in sorted(report["non_numeric"].items()):
        if entry["count"] > limit * max(read, 1):
            raise DataError(
                f"feature column {column!r} is not numeric: {entry['count']} of {read} rows "
                f"hold non-numeric values such as {entry['example']!r} (in {entry['file']}); "
                f"drop the column or encode it as numbers"
            )
    bad = sum(report["bad_rows"].values())
    if read == 0:
        raise DataError(f"no data rows in {', '.join(report['files'])}")
    if bad > limit * read:
        worst = max(report["bad_rows_by_file"].items(), key=lambda kv: kv[1])
        reasons = ", ".join(f"{k}: {v}" for k, v in sorted(report["bad_rows"].items()))
        raise DataError(
            f"{bad} of {read} rows ({bad / read:.1%}) are unusable, more than the allowed "
            f"{limit:.1%}; {worst[1]} of them in {worst[0]} ({reasons})"
        )
    train, evaluation = (report["splits"][name]["classes"] for name in (TRAIN, EVAL))
    valid = report["splits"].get(VALID, {}).get("classes", {})
    if settings.protocol == "unseen_classes":
        unknown = split_plan.unknown_eval_classes(report["classes"], settings.eval_classes)
        if unknown:
            raise DataError(unknown)
    before_validation = {c: train.get(c, 0) + valid.get(c, 0) for c in {*train, *valid}}
    found = split_plan.split_problems(
        before_validation, evaluation, settings.protocol, settings.eval_fraction
    ) or split_plan.validation_problems(
        train, valid, settings.protocol, settings.validation_fraction
    )
    if found:
        raise DataError("; ".join(found))
