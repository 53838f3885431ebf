"""The settings base: types from annotations, checks, strict JSON, no side effects."""

import dataclasses
import json
import math

import pytest

from tfx_metric_learning.core.stage_settings import (
    SettingsError,
    StageSettings,
    at_least,
    boolean,
    each,
    one_of,
    positive,
    seed_setting,
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
        ("fraction", [0, 0.0, E, 1 - E], [-E, 1, 1.0, 1 + E, 2, NAN, True]),
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


@pytest.mark.parametrize(
    "values, message",
    [
        # no conversion across kinds: the value is shown as given
        ({"mode": 2.0}, "'mode' must be a string, got 2.0"),
        ({"names": [2.0]}, "'names' must be a list of strings, got [2.0]"),
        ({"params": 3}, "'params' must be an object, got 3"),
        ({"params": [2.0]}, "'params' must be an object, got [2.0]"),
        ({"flag": 1}, "'flag' must be true or false, got 1"),
        # a bool is not a number, and None is not a value of a required setting
        ({"rate": True}, "'rate' must be a finite number, got True"),
        ({"count": None}, "'count' must be set, got None"),
        ({"either": None}, "'either' must be set, got None"),
        ({"either": 1.5}, "'either' must be an integer, got 1.5"),
    ],
)
def test_values_of_another_kind_are_refused_unconverted(values, message):
    with pytest.raises(SettingsError) as raised:
        Flagged.from_dict(values, source="test input")
    assert str(raised.value) == f"demo setting {message} in test input"


@dataclasses.dataclass(frozen=True)
class Flagged(Demo):
    flag: bool = setting(False, "a flag", boolean)
    either: int | float = setting(1, "a union: its first type is the field's kind")
    plain: int = 1  # a dataclass field not made by setting()


def test_conversions_keep_the_kind_of_the_field():
    demo = Flagged.from_dict({"rate": 2.0, "bounds": {"x": 3}, "params": {"k": 1}})
    assert isinstance(demo.rate, float) and isinstance(demo.bounds["x"], float)
    assert isinstance(demo.params["k"], int)  # an object of anything is left as given
    assert Flagged.from_dict({"params": {"k": "x"}}).params == {"k": "x"}  # not only numbers
    assert demo.to_dict()["bounds"] == {"x": 3.0}


def test_field_defaults_of_the_metadata():
    infos = {i.name: i for i in Flagged.fields()}
    assert infos["count"].optional is False and infos["count"].cli is True
    assert infos["either"].kind == "int" and infos["either"].optional is False
    assert infos["plain"].cli is True and infos["plain"].flag == "--plain"
    assert infos["plain"].help == "" and infos["plain"].check is None
    with pytest.raises(dataclasses.FrozenInstanceError):
        infos["count"].kind = "float"


def test_the_seed_setting_defaults_to_42():
    @dataclasses.dataclass(frozen=True)
    class Seeded(StageSettings):
        seed: int = seed_setting()

    assert Seeded().seed == 42 and Seeded.fields()[0].flag == "--seed"


def test_the_first_of_several_problems_is_raised_and_json_keys_are_sorted():
    demo = Demo(count=0, rate=-1.0)
    assert len(demo.problems()) == 2
    with pytest.raises(SettingsError, match=r"^demo setting 'count'"):
        demo.validate()
    with pytest.raises(SettingsError, match=r"^demo setting 'count'.* in here$"):
        Demo.from_dict({"count": 0, "rate": -1.0}, source="here")
    keys = list(json.loads(demo.to_json()))
    assert keys == sorted(keys) and keys != [i.name for i in Demo.fields()]


def test_a_settings_field_names_its_options():
    with pytest.raises(TypeError):
        setting(1, "a count", None, "--count")  # the flag must be named
    assert setting(1, "a count", None, flag="--n").metadata["flag"] == "--n"


def test_from_json_is_partial_by_default_and_its_options_are_named():
    assert Demo.from_json('{"count": 2}').count == 2
    with pytest.raises(TypeError):
        Demo.from_json('{"count": 2}', True)  # noqa: FBT003 (what is refused)
    with pytest.raises(TypeError):
        Demo.from_dict({"count": 2}, True)  # noqa: FBT003
    long = json.dumps(list(range(100)))
    with pytest.raises(SettingsError) as raised:
        Demo.from_json(long)
    assert str(raised.value).endswith(f"got {long[:80]!r}")
