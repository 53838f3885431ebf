"""The ingest stage's settings: how files are read, the label, the protocol, bad-row tolerance."""

from __future__ import annotations

import codecs
import dataclasses
from typing import Any

from tfx_metric_learning.components.example_gen import files, rows, spans
from tfx_metric_learning.core.stage_settings import (
    StageSettings,
    at_least,
    closed_fraction,
    fraction,
    one_of,
    open_fraction,
    seed_setting,
    setting,
)

PROTOCOLS = ("seen_classes", "unseen_classes")


def text_encoding(value: Any) -> str | None:
    """A text encoding Python knows (``utf-8``, ``latin-1``, ``cp1252`` ...)."""
    try:
        codecs.lookup(str(value))
    except LookupError:
        return f"must be a text encoding Python knows (e.g. utf-8, latin-1), got {value!r}"
    return None


def csv_delimiter(value: Any) -> str | None:
    """Empty (detect), ``tab``, or one character that is not a quote or a line break."""
    char = files.delimiter_char(str(value))
    if char == "" or (len(char) == 1 and char not in '"\r\n'):
        return None
    return f"must be one character (or 'tab'; empty to detect it), got {value!r}"


def data_pattern(value: Any) -> str | None:
    """Empty, or a relative glob whose span/date/version specs follow TFX's rules."""
    text = str(value)
    if text.startswith("/") or "://" in text:
        return f"must be relative to --data (the data folder), got {value!r}"
    try:
        spans.has_spans(text)
    except files.DataError as e:
        return str(e)
    return None


@dataclasses.dataclass(frozen=True)
class IngestSettings(StageSettings):
    """Settings of the validating ExampleGen (packed into its ``custom_config``)."""

    STAGE = "ingest"

    label_column: str = setting("label", "name of the label column")
    data_pattern: str = setting(
        "",
        "files to read under the --data folder, as a glob with TFX span specs, e.g. "
        "'span-{SPAN}/*.csv' or '{YYYY}-{MM}-{DD}/*.csv' (each run reads the newest span, or "
        "the newest --window spans); empty: every file --data names",
        data_pattern,
    )
    window: int = setting(
        1,
        "with a span pattern: how many of the newest spans a run trains and evaluates on "
        "(spans rejected by validation are left out)",
        at_least(1),
    )
    verdicts_dir: str = setting(
        "",
        "folder (any filesystem) of the span ledger, each validated span's verdict "
        "(components/data_validator/ledger.py); the pipeline sets PIPELINE_ROOT/span_verdicts",
        cli=False,
    )
    encoding: str = setting("utf-8", "text encoding of CSV files (e.g. latin-1)", text_encoding)
    delimiter: str = setting(
        "",
        "CSV field delimiter: one character or 'tab' (default: detected from the header among "
        "comma, semicolon, tab and pipe)",
        csv_delimiter,
    )
    protocol: str = setting(
        "seen_classes",
        "seen_classes: stratified split of every class; unseen_classes: evaluate on classes "
        "never trained on",
        one_of(*PROTOCOLS),
    )
    eval_fraction: float = setting(
        0.3, "seen_classes: share of every class held out for evaluation", open_fraction
    )
    validation_fraction: float = setting(
        0.2,
        "share of the training data held out as the validation split the Trainer selects its "
        "epoch on (seen_classes: of every class's rows; unseen_classes: of the training "
        "classes, at least 2 whole classes); 0: no validation split, the last epoch is kept",
        fraction,
    )
    eval_classes: list[str] | None = setting(
        None,
        "unseen_classes: comma-separated held-out classes (default: the upper half of the "
        "sorted classes)",
    )
    max_bad_row_fraction: float = setting(
        0.01,
        "fraction of unusable rows (dropped and counted) that stops the run",
        closed_fraction,
        flag="--max-bad-rows",
    )
    seed: int = seed_setting()

    def _checks(self) -> list[str]:
        if self.window > 1 and not (self.data_pattern and spans.has_spans(self.data_pattern)):
            return [
                f"window {self.window} needs a --data-pattern with a span or date spec "
                f"(e.g. 'span-{{SPAN}}/*.csv'), got {self.data_pattern!r}"
            ]
        return []

    @property
    def uses_spans(self) -> bool:
        """Whether the data is read as spans (the pattern holds a span or date spec)."""
        return bool(self.data_pattern) and spans.has_spans(self.data_pattern)

    @property
    def label_feature(self) -> str:
        """The label's feature name in the examples (the column name, sanitised)."""
        return rows.sanitize_name(self.label_column)
