"""Spans: which files a run reads when data arrives as TFX spans, and its rolling window.

Data that keeps arriving is laid out by TFX's convention: a pattern relative to the data
folder holding ``{SPAN}`` (or ``{SPAN:n}``, zero-padded to n digits) or the date specs
``{YYYY}``, ``{MM}``, ``{DD}`` (span = days since 1970-01-01), and optionally ``{VERSION}``
(a corrected re-delivery of a span). Examples: ``span-{SPAN}/*.csv``,
``{YYYY}-{MM}-{DD}/*.csv.gz``, ``span-{SPAN}/v{VERSION}/*.tfrecord``.

ExampleGen's executor picks the newest span at its newest version itself
(``inputs.newest_span``: no driver runs on the open-source Kubeflow backend; where TFX's
driver does run, locally, it resolves the same span and fingerprints it for caching), and
records its number in ML Metadata (the examples' ``span``/``version`` properties). The window is the
newest ``size`` spans up to that one, each at its newest version, leaving out spans whose
data was rejected by validation at that version (``components/data_validator/ledger.py``):
a span that failed its checks never reaches training until a corrected version replaces it.

Written by hand because TFX 1.16's ExampleGen ingests exactly one span per execution (its
``RangeConfig`` must name one span), and the way TFX reads several spans downstream (a
``SpanRangeStrategy`` resolver) does not compile for Kubeflow Pipelines v2, whose compiler
takes only the latest-artifact and latest-blessed-model resolvers. Paths are matched by TFX's
own functions (``tfx.components.example_gen.utils``), so a span is found exactly as the
driver finds it. Spans older than the newest are taken as immutable (TFX's convention: a
change is a new ``{VERSION}``); the local cache fingerprint (TFX's driver) covers the newest
span only; the ``input_fingerprint`` the executor records covers every span read.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import re

from tfx.components.example_gen import utils
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2

from tfx_metric_learning.components.example_gen.files import DataError


@dataclasses.dataclass(frozen=True)
class Span:
    """One span at its newest version: its number, version, and file pattern (no specs left)."""

    number: int
    version: int | None
    pattern: str  # relative to the data folder


def _split(pattern: str) -> example_gen_pb2.Input.Split:
    return example_gen_pb2.Input.Split(name="data", pattern=pattern)


def has_spans(pattern: str) -> bool:
    """Whether ``pattern`` holds a span or date spec (``DataError`` for a malformed one)."""
    try:
        is_span, is_date, _ = utils.verify_split_pattern_specs(_split(pattern))
    except ValueError as e:
        raise DataError(f"data pattern {pattern!r}: {e}") from None
    return is_span or is_date


def find_spans(input_base: str, pattern: str) -> dict[int, Span]:
    """``{span number: Span}`` of every span under ``input_base``, each at its newest version."""
    split = _split(pattern)
    is_span, is_date, is_version = utils.verify_split_pattern_specs(split)
    glob, regex = utils._create_matching_glob_and_regex(  # noqa: SLF001 (the driver's own rule)
        input_base, split, is_span, is_date, is_version, None
    )
    found: dict[int, tuple[list[str], int | None, str | None]] = {}
    for path in fileio.glob(glob):
        tokens, number, version_token, version = utils._find_matched_span_version_from_path(  # noqa: SLF001
            path, regex, is_span, is_date, is_version
        )
        known = found.get(number)
        if known is None or (version is not None and version > (known[1] or -1)):
            found[number] = (tokens, version, version_token)
    spans = {}
    for number, (tokens, version, version_token) in found.items():
        resolved = pattern
        if is_span:
            resolved = re.sub(utils.SPAN_FULL_REGEX, tokens[0], resolved)
        else:
            for spec, value in zip(utils.DATE_SPECS, tokens, strict=True):
                resolved = resolved.replace(spec, value)
        if is_version:
            resolved = re.sub(utils.VERSION_FULL_REGEX, version_token, resolved)
        spans[number] = Span(number, version, resolved)
    return spans


def empty_newer_spans(input_base: str, pattern: str, newest: int) -> list[int]:
    """Spans newer than ``newest`` whose folder exists but holds no file of the pattern yet.

    Only a pattern whose folder part names the span (``span-{SPAN}/*.csv``) has span folders;
    ``find_spans`` sees files only, so such a folder (data still being copied, or lost) would
    otherwise pass unnoticed while the previous span is read again.
    """
    folder = os.path.dirname(pattern)
    if not folder or not has_spans(folder):
        return []
    split = _split(folder)
    is_span, is_date, is_version = utils.verify_split_pattern_specs(split)
    glob, regex = utils._create_matching_glob_and_regex(  # noqa: SLF001 (the driver's own rule)
        input_base, split, is_span, is_date, is_version, None
    )
    numbers = set()
    for path in sorted(fileio.glob(glob)):  # in name order: glob's follows the filesystem
        if not fileio.isdir(path):
            continue
        _, number, _, _ = utils._find_matched_span_version_from_path(  # noqa: SLF001
            path, regex, is_span, is_date, is_version
        )
        if number > newest:
            numbers.add(number)
    return sorted(numbers)


def span_name(number: int, data_pattern: str) -> str:
    """The span as the user's pattern names it: a date for date specs, else the number.

    TFX numbers a dated span by its days since 1970-01-01 (``utils.DATE_SPECS``); that day is
    given back as ``YYYY-MM-DD``.
    """
    if any(spec in data_pattern for spec in utils.DATE_SPECS):
        return (datetime.date(1970, 1, 1) + datetime.timedelta(days=number)).isoformat()
    return str(number)


def window(
    spans: dict[int, Span], newest: int, size: int, rejected: dict[int, int | None] | None = None
) -> tuple[list[Span], list[Span]]:
    """``(read, left_out)``: the newest ``size`` usable spans up to ``newest``, oldest first.

    ``rejected`` maps span numbers to the version validation rejected; a span is left out
    only at that version (a newer version of it is read again). ``newest`` itself is always
    read: it is the span this run validates.
    """
    if newest not in spans:
        raise DataError(f"span {newest} has no files (spans found: {sorted(spans)})")
    rejected = rejected or {}
    chosen, left_out = [spans[newest]], []
    for number in sorted((n for n in spans if n < newest), reverse=True):
        if len(chosen) >= size:
            break
        span = spans[number]
        if number in rejected and rejected[number] == span.version:
            left_out.append(span)
            continue
        chosen.append(span)
    return sorted(chosen, key=lambda s: s.number), sorted(left_out, key=lambda s: s.number)


def span_paths(input_base: str, span: Span) -> list[str]:
    """The data files of one span, sorted (folders left out)."""
    pattern = os.path.join(input_base, span.pattern)
    return sorted(p for p in fileio.glob(pattern) if not fileio.isdir(p))
