"""Command-line options generated from the stages' settings, so flags and settings cannot drift.

Every field of every stage's settings (``pipeline.config.STAGES``) declared with ``cli=True``
becomes one option of ``run`` and of ``compile``: its flag, help and default come from the
field's declaration; the value is parsed by the field's kind (comma-separated lists,
repeatable ``KEY=VALUE`` pairs for dicts) and checked by the settings themselves. A flag
shared by fields of several stages (``--seed``) sets all of them. An option left out keeps
the settings' own default: argparse never holds a second copy of it.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tfx_metric_learning.core.stage_settings import FieldInfo, StageSettings


def key_value(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with the value read as JSON when it is JSON (numbers, true, ...)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def _str_list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "none"
    return "none" if value is None else str(value)


def _dest(flag: str) -> str:
    return "setting_" + flag.lstrip("-").replace("-", "_")


def given(args: argparse.Namespace, flag: str) -> bool:
    """Whether the stage option ``flag`` was given (options left out leave no attribute)."""
    return hasattr(args, _dest(flag))


def _flags(stages: dict[str, type[StageSettings]]) -> dict[str, list[tuple[str, FieldInfo]]]:
    """Flag -> the (stage, field) pairs it sets; shared flags must agree on kind and default."""
    out: dict[str, list[tuple[str, FieldInfo]]] = {}
    for stage, cls in stages.items():
        for info in cls.fields():
            if info.cli:
                out.setdefault(info.flag, []).append((stage, info))
    for flag, pairs in out.items():
        kinds = {(i.kind, json.dumps(i.default, sort_keys=True)) for _, i in pairs}
        if len(kinds) > 1:
            raise TypeError(f"{flag} is shared by settings of different kinds or defaults: {pairs}")
    return out


def add_stage_options(
    parser: argparse.ArgumentParser,
    stages: dict[str, type[StageSettings]],
    exclude: tuple[str, ...] = (),
) -> None:
    """Adds one option per CLI field of ``stages`` (grouped by stage), but the ``exclude`` flags."""
    groups: dict[str, Any] = {}
    for flag, pairs in _flags(stages).items():
        if flag in exclude:
            continue
        stage, info = pairs[0]
        names = ", ".join(sorted({s for s, _ in pairs}))
        group = groups.get(names) or parser.add_argument_group(f"{names} settings")
        groups[names] = group
        shown = "" if info.default is None else f" (default: {_shown(info.default)})"
        kwargs: dict[str, Any] = {
            "dest": _dest(flag),
            "default": argparse.SUPPRESS,
            "help": info.help + shown,
            "metavar": info.metavar or info.name.upper(),
        }
        if info.kind == "bool":
            kwargs.pop("metavar")
            kwargs["action"] = argparse.BooleanOptionalAction
        elif info.kind == "dict":
            kwargs.update(action="append", type=key_value)
        else:
            kwargs["type"] = {
                "int": int,
                "float": float,
                "str": str,
                "int_list": _int_list,
                "str_list": _str_list,
            }[info.kind]
            choices = getattr(info.check, "choices", None)
            if choices:
                kwargs["choices"] = choices
                kwargs.pop("metavar")
        group.add_argument(flag, **kwargs)


def stage_settings_from_args(
    args: argparse.Namespace, stages: dict[str, type[StageSettings]]
) -> dict[str, StageSettings]:
    """Each stage's validated settings: its defaults, replaced by the options given."""
    given: dict[str, dict[str, Any]] = {stage: {} for stage in stages}
    for flag, pairs in _flags(stages).items():
        dest = _dest(flag)
        if not hasattr(args, dest):
            continue
        value = getattr(args, dest)
        for stage, info in pairs:
            if info.kind == "dict":
                value = dict(value)
            elif info.kind == "str_list" and info.optional and not value:
                value = None
            given[stage][info.name] = value
    return {stage: cls.from_dict(given[stage]) for stage, cls in stages.items()}
