"""The settings base: types from annotations, checks, strict JSON, no side effects."""

import dataclasses
import json
import math

import pytest

from tfx_metric_learning.core.stage_settings import (
    SettingsError,
    StageSettings,
    at_least,
    each,
    one_of,
    positive,
    setting,
)


@dataclasses.dataclass(frozen=True)
class Demo(StageSettings):
    STAGE = "demo"

    count: int = setting(3, "a count", at_least(1))
    rate: float = setting(0.5, "a rate", positive)
    mode: str = setting("a", "a mode", one_of("a", "b"))
    widths: list[int] = setting([4, 2], "widths", each(at_least(1)))
    names: list[str] | None = setting(None, "optional names")
    bounds: dict[str, float] = setting({"x": 1.0}, "bounds")
    params: dict = setting({}, "anything")

    def _checks(self):
        return ["count must not exceed 10"] if self.count > 10 else []


def test_defaults_are_valid_and_round_trip_through_json():
    demo = Demo()
    demo.validate()
    again = Demo.from_json(demo.to_json(), complete=True)
    assert again == demo
    assert json.loads(demo.to_json()) == demo.to_dict()


def test_unknown_and_missing_keys_are_refused_naming_them():
    with pytest.raises(SettingsError, match=r"unknown demo setting\(s\) 'cuont'.*valid: count"):
        Demo.from_dict({"cuont": 2})
    with pytest.raises(SettingsError, match="must hold every setting; missing: rate, mode"):
        Demo.from_dict(
            {"count": 2, "widths": [1], "names": None, "bounds": {}, "params": {}}, complete=True
        )
    assert Demo.from_dict({"count": 2}).count == 2  # partial is fine unless complete


@pytest.mark.parametrize(
    "values, message",
    [
        ({"count": True}, "'count' must be an integer, got True"),
        ({"count": 2.5}, "'count' must be an integer, got 2.5"),
        ({"count": 0}, "'count' must be an integer >= 1, got 0"),
        ({"rate": math.nan}, "'rate' must be a finite number, got nan"),
        ({"rate": math.inf}, "'rate' must be a finite number"),
        ({"rate": "abc"}, "'rate' must be a finite number, got 'abc'"),
        ({"mode": "c"}, "'mode' must be one of a, b, got 'c'"),
        ({"widths": [2, 0]}, "'widths' must be an integer >= 1, got 0"),
        ({"widths": ["2"]}, "'widths' must be a list of integers"),
        ({"bounds": {"x": "abc"}}, "'bounds' must be an object of finite numbers"),
        ({"bounds": {"x": math.nan}}, "'bounds' must be an object of finite numbers"),
        ({"names": "a,b"}, "'names' must be a list of strings"),
        ({"count": 11}, "count must not exceed 10"),
    ],
)
def test_bad_values_are_refused_naming_the_setting_and_rule(values, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Demo.from_dict(values, source="test input")


def test_lossless_conversions_only():
    demo = Demo.from_dict({"count": 4.0, "rate": 2, "bounds": {"x": 3}, "widths": [3.0]})
    assert demo.count == 4 and isinstance(demo.count, int)
    assert demo.rate == 2.0 and isinstance(demo.rate, float)
    assert demo.bounds == {"x": 3.0} and demo.widths == [3]


def test_validation_changes_nothing_and_settings_are_frozen():
    demo = Demo(params={"k": 1})
    before = demo.to_dict()
    demo.validate()
    assert demo.to_dict() == before
    with pytest.raises(dataclasses.FrozenInstanceError):
        demo.count = 5


def test_malformed_json_names_its_source():
    with pytest.raises(SettingsError, match="demo settings in the runtime parameter are not JSON"):
        Demo.from_json("{not json", source="the runtime parameter")
    with pytest.raises(SettingsError, match="must be a JSON object"):
        Demo.from_json("[1, 2]")


def test_field_metadata_drives_the_cli():
    infos = {i.name: i for i in Demo.fields()}
    assert infos["count"].flag == "--count" and infos["count"].kind == "int"
    assert infos["names"].optional and infos["names"].kind == "str_list"
    assert infos["bounds"].value_kind == "float" and infos["params"].value_kind == "any"
    assert infos["widths"].default == [4, 2]


E = 1e-9
INF, NAN = float("inf"), float("nan")


@pytest.mark.parametrize(
    "check, fine, refused",
    [
        ("positive", [E, 1, 2.5], [0, 0.0, -E, INF, NAN, True, "1", None]),
        ("non_negative", [0, 0.0, E, 3], [-E, -1, INF, NAN, False, "0"]),
        ("any_number", [0, -2, 1.5, -E], [INF, -INF, NAN, True, "2", None]),
        ("fraction", [0, 0.0, E, 1 - E], [-E, 1, 1.0, NAN, True]),
        ("open_fraction", [E, 0.5, 1 - E], [0, 0.0, 1, -E, 1 + E, NAN, True]),
        ("closed_fraction", [0, E, 1, 1.0], [-E, 1 + E, NAN, INF, True]),
        ("boolean", [True, False], [0, 1, "true", None]),
    ],
)
def test_each_check_at_its_bounds(check, fine, refused):
    from tfx_metric_learning.core import stage_settings

    fn = getattr(stage_settings, check)
    for value in fine:
        assert fn(value) is None, (check, value)
    for value in refused:
        problem = fn(value)
        assert problem and problem.endswith(f"got {value!r}"), (check, value, problem)


def test_at_least_one_of_and_each_at_their_bounds():
    two = at_least(2)
    assert two(2) is None and two(3) is None
    for value in (1, 2.0, True, "2", None):
        assert two(value) == f"must be an integer >= 2, got {value!r}"
    pick = one_of("a", 3)
    assert pick("a") is None and pick(3) is None
    assert pick("b") == "must be one of a, 3, got 'b'" and pick.choices == ("a", 3)
    every = each(positive)
    assert every([1, 2]) is None and every({"x": 1}) is None and every(None) is None
    assert every([1, 0, -1]) == "must be a finite number > 0, got 0"  # the first problem
    assert every({"x": 1, "y": -2}) == "must be a finite number > 0, got -2"
