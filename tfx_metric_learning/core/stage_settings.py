"""The base of every stage's settings: typed fields, one default each, checks, JSON, CLI metadata.

Each stage of the pipeline (ingest, pair construction, training, evaluation) owns a frozen
dataclass of settings beside its code. A field is declared once with ``setting()``: its
default, its help text, a check, and how the command line spells it. From that one
declaration come

- validation without side effects (``problems`` / ``validate``): types from the annotations
  (an ``int`` is never a bool; a ``float`` is finite), then each field's check, then the
  class's cross-field ``_checks``;
- serialisation (``to_dict`` / ``to_json``) and parsing (``from_dict`` / ``from_json``): unknown
  keys are refused naming them; with ``complete=True`` (what a KFP runtime parameter must be)
  missing keys are refused too, so a partial JSON never silently falls back to code defaults;
- the CLI flags of ``run`` and ``compile`` (``pipeline/cli/options.py`` reads the metadata).

The checks below are shared with the loss registry, so a number is judged the same way
everywhere. Written by hand because no dependency of the stack offers typed, JSON-round-trip
dataclasses with per-field checks (pydantic is not in TFX 1.16's dependency set).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import types
import typing
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], "str | None"]


class SettingsError(ValueError):
    """A setting is unknown, missing, of the wrong type or out of range; the message names it."""


# --- checks: each returns an error message, or None when the value is fine -----------------


def is_number(value: Any) -> bool:
    """An int or float (never a bool) that is finite."""
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


def positive(value: Any) -> str | None:
    """A finite number > 0."""
    return None if is_number(value) and value > 0 else f"must be a finite number > 0, got {value!r}"


def non_negative(value: Any) -> str | None:
    """A finite number >= 0."""
    ok = is_number(value) and value >= 0
    return None if ok else f"must be a finite number >= 0, got {value!r}"


def any_number(value: Any) -> str | None:
    """Any finite number."""
    return None if is_number(value) else f"must be a finite number, got {value!r}"


def fraction(value: Any) -> str | None:
    """A number in [0, 1)."""
    return None if is_number(value) and 0 <= value < 1 else f"must be in [0, 1), got {value!r}"


def open_fraction(value: Any) -> str | None:
    """A number in (0, 1)."""
    return None if is_number(value) and 0 < value < 1 else f"must be in (0, 1), got {value!r}"


def closed_fraction(value: Any) -> str | None:
    """A number in [0, 1]."""
    return None if is_number(value) and 0 <= value <= 1 else f"must be in [0, 1], got {value!r}"


def at_least(minimum: int) -> Check:
    """An integer >= ``minimum``."""

    def check(value: Any) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        return None if ok else f"must be an integer >= {minimum}, got {value!r}"

    return check


def one_of(*choices: Any) -> Check:
    """One of ``choices``; the CLI offers them as its choices."""

    def check(value: Any) -> str | None:
        ok = value in choices
        return None if ok else f"must be one of {', '.join(map(str, choices))}, got {value!r}"

    check.choices = choices  # type: ignore[attr-defined]
    return check


def boolean(value: Any) -> str | None:
    """True or False."""
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


def each(check: Check) -> Check:
    """``check`` applied to every item of a list (or every value of a dict)."""

    def check_all(value: Any) -> str | None:
        items = value.values() if isinstance(value, dict) else (value or [])
        for item in items:
            problem = check(item)
            if problem:
                return problem
        return None

    return check_all


# --- fields -------------------------------------------------------------------------------


def setting(
    default: Any,
    help: str,
    check: Check | None = None,
    *,
    flag: str | None = None,
    cli: bool = True,
    metavar: str | None = None,
) -> Any:
    """A settings field: ``default`` (the only place it is defined), ``help``, ``check``.

    ``flag`` is the CLI option (default ``--field-name``); fields of several stages may share
    one flag (e.g. ``--seed``), which then sets all of them. ``cli=False`` keeps a field off
    the command line (set by the pipeline itself).
    """
    metadata = {"help": help, "check": check, "flag": flag, "cli": cli, "metavar": metavar}
    if isinstance(default, (list, dict)):
        return dataclasses.field(default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def seed_setting() -> Any:
    """The ``seed`` field every stage has; one ``--seed`` flag sets them all."""
    return setting(42, "seed of every random choice (splits, pairs, weights, batches)")


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """What the CLI and the parser need to know of one field."""

    name: str
    kind: str  # int, float, str, bool, int_list, str_list, dict
    optional: bool  # None is allowed
    default: Any
    help: str
    check: Check | None
    flag: str
    cli: bool
    metavar: str | None
    value_kind: str = "any"  # for dicts: the values' kind (float or any)


def _kind_of(annotation: Any) -> tuple[str, bool, str]:
    """``(kind, optional, value_kind)`` of a field annotation.

    A union takes the kind of its first member that is not None (``int | float``: int).
    """
    optional = False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        optional = len(non_none) < len(args)
        annotation = non_none[0]
        args = typing.get_args(annotation)
    origin = typing.get_origin(annotation) or annotation
    if origin is list:
        return ("int_list" if args and args[0] is int else "str_list"), optional, "any"
    if origin is dict:
        value_kind = "float" if len(args) == 2 and args[1] is float else "any"
        return "dict", optional, value_kind
    return {int: "int", float: "float", str: "str", bool: "bool"}[origin], optional, "any"


@dataclasses.dataclass(frozen=True)
class StageSettings:
    """Base class: subclasses are frozen dataclasses whose fields come from ``setting()``."""

    STAGE: typing.ClassVar[str] = "settings"  # the stage's name in messages

    @classmethod
    def fields(cls) -> list[FieldInfo]:
        """Every field with its kind, default and CLI metadata, in declaration order."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            kind, optional, value_kind = _kind_of(hints[f.name])
            default = f.default_factory() if callable(f.default_factory) else f.default
            meta = f.metadata
            out.append(
                FieldInfo(
                    name=f.name,
                    kind=kind,
                    optional=optional,
                    default=default,
                    help=meta.get("help", ""),
                    check=meta.get("check"),
                    flag=meta.get("flag") or "--" + f.name.replace("_", "-"),
                    cli=meta.get("cli", True),
                    metavar=meta.get("metavar"),
                    value_kind=value_kind,
                )
            )
        return out

    # --- validation ---------------------------------------------------------------------

    def problems(self) -> list[str]:
        """Every problem of these settings, each naming the field (empty: valid)."""
        found = []
        for info in self.fields():
            value = getattr(self, info.name)
            problem = _type_problem(info, value)
            if problem is None and info.check is not None and value is not None:
                problem = info.check(value)
            if problem:
                found.append(f"{self.STAGE} setting {info.name!r} {problem}")
        if not found:
            found.extend(f"{self.STAGE} settings: {p}" for p in self._checks())
        return found

    def _checks(self) -> list[str]:
        """Cross-field checks of a stage (override); run when every field is valid alone."""
        return []

    def validate(self) -> None:
        """Raises ``SettingsError`` with the first problem; changes nothing."""
        found = self.problems()
        if found:
            raise SettingsError(found[0])

    # --- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return {info.name: copy.deepcopy(getattr(self, info.name)) for info in self.fields()}

    def to_json(self) -> str:
        """Deterministic JSON (sorted keys), e.g. for an execution property."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(
        cls, data: dict[str, Any] | None, *, complete: bool = False, source: str = ""
    ) -> Any:
        """Validated settings from ``data``; unknown keys (and missing ones if ``complete``) fail.

        Integral floats become ints for int fields (a protobuf Struct stores every number as a
        double); ints become floats for float fields. ``source`` names where the data came
        from in error messages.
        """
        where = f" in {source}" if source else ""
        data = dict(data or {})
        infos = {info.name: info for info in cls.fields()}
        unknown = sorted(set(data) - set(infos))
        if unknown:
            raise SettingsError(
                f"unknown {cls.STAGE} setting(s) {', '.join(map(repr, unknown))}{where}; "
                f"valid: {', '.join(infos)}"
            )
        missing = [name for name in infos if name not in data]
        if complete and missing:
            raise SettingsError(
                f"{cls.STAGE} settings{where} must hold every setting; missing: "
                f"{', '.join(missing)}"
            )
        values = {name: _coerce(infos[name], value) for name, value in data.items()}
        settings = cls(**values)
        found = settings.problems()
        if found:
            raise SettingsError(found[0] + where)
        return settings

    @classmethod
    def from_json(cls, text: str, *, complete: bool = False, source: str = "") -> Any:
        """``from_dict`` of a JSON object; malformed JSON fails naming ``source``."""
        try:
            data = json.loads(text) if text else {}
        except json.JSONDecodeError as e:
            raise SettingsError(
                f"{cls.STAGE} settings{' in ' + source if source else ''} are not JSON: {e}"
            ) from None
        if not isinstance(data, dict):
            raise SettingsError(f"{cls.STAGE} settings must be a JSON object, got {text[:80]!r}")
        return cls.from_dict(data, complete=complete, source=source)


def _coerce(info: FieldInfo, value: Any) -> Any:
    """Lossless conversions only (2.0 -> 2 for ints, 2 -> 2.0 for floats); others stay."""
    if value is None or isinstance(value, bool):
        return value
    if info.kind == "int" and isinstance(value, float) and value.is_integer():
        return int(value)
    if info.kind == "float" and isinstance(value, int):
        return float(value)
    if info.kind == "int_list" and isinstance(value, list):
        return [int(v) if isinstance(v, float) and v.is_integer() else v for v in value]
    if info.kind == "dict" and info.value_kind == "float" and isinstance(value, dict):
        return {
            k: float(v) if isinstance(v, int) and not isinstance(v, bool) else v
            for k, v in value.items()
        }
    return value


def _type_problem(info: FieldInfo, value: Any) -> str | None:
    if value is None:
        return None if info.optional else "must be set, got None"
    expected = {
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": is_number,
        "str": lambda v: isinstance(v, str),
        "bool": lambda v: isinstance(v, bool),
        "int_list": lambda v: (
            isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)
        ),
        "str_list": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
        "dict": lambda v: (
            isinstance(v, dict)
            and all(isinstance(k, str) for k in v)
            and (info.value_kind != "float" or all(is_number(x) for x in v.values()))
        ),
    }[info.kind]
    if expected(value):
        return None
    kind = {
        "int": "an integer",
        "float": "a finite number",
        "str": "a string",
        "bool": "true or false",
        "int_list": "a list of integers",
        "str_list": "a list of strings",
        "dict": "an object of finite numbers" if info.value_kind == "float" else "an object",
    }[info.kind]
    return f"must be {kind}, got {value!r}"
