"""RunPlan digests exactly what the run's cached tasks will read from outside their artifacts."""

import json

import pytest
import yaml

from tests.pipeline import span_data
from tfx_metric_learning.components.data_validator import ledger
from tfx_metric_learning.components.production import record
from tfx_metric_learning.components.production import spec as production_spec
from tfx_metric_learning.kubeflow import run_plan
from tfx_metric_learning.pipeline import cli


@pytest.fixture
def planned(tmp_path):
    """A compiled daily pipeline (spans, curated schema) and its plan's ``ExecutorInput``."""
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "label" type: BYTES }\n')
    args = ["compile", "--data-root", str(tmp_path / "data")]
    args += ["--pipeline-root", str(tmp_path / "root"), "--allow-local-paths"]
    args += ["--data-pattern", span_data.PATTERN, "--window", "2", "--schema", str(schema)]
    assert cli.main([*args, "--output", str(tmp_path / "p.yaml")]) == 0
    spec = yaml.safe_load((tmp_path / "p.yaml").read_text())
    defaults = {
        name: p["defaultValue"]
        for name, p in spec["root"]["inputDefinitions"]["parameters"].items()
    }
    values = {}
    for key, source in spec["root"]["dag"]["tasks"][run_plan.TASK]["inputs"]["parameters"].items():
        if "componentInputParameter" in source:
            values[key] = defaults[source["componentInputParameter"]]
        else:
            values[key] = source["runtimeValue"]["constant"]
    outputs = spec["components"][run_plan.TASK]["outputDefinitions"]["parameters"]
    out = tmp_path / "pod" / "output_metadata.json"
    executor_input = {
        "inputs": {"parameterValues": values},
        "outputs": {
            "parameters": {key: {"outputFile": str(out.parent / key)} for key in outputs},
            "outputFile": str(out),
        },
    }
    return {
        "input": executor_input,
        "out": out,
        "data": tmp_path / "data",
        "schema": schema,
        "serving": tmp_path / "root" / "serving_model",
        "verdicts": json.loads(defaults["ingest"])["verdicts_dir"],
    }


def test_the_plan_changes_exactly_with_what_a_task_will_read(planned):
    span_data.write_span(str(planned["data"]), 1)
    first = run_plan.run(planned["input"])
    assert set(first) == {run_plan.DATA_KEY, run_plan.PRODUCTION_KEY, run_plan.SCHEMA_KEY}
    assert json.loads(planned["out"].read_text()) == {"parameterValues": first}
    assert first[run_plan.PRODUCTION_KEY] == record.NO_RECORD
    assert run_plan.run(planned["input"]) == first  # nothing changed: the same keys

    def changed():
        now = run_plan.run(planned["input"])
        return {key for key in now if now[key] != first[key]}, now

    for span in (2, 3):  # a new span each day: the window of 2 reads 1-2, then 2-3
        span_data.write_span(str(planned["data"]), span)
        moved, first = changed()
        assert moved == {run_plan.DATA_KEY}
    ledger.record(planned["verdicts"], {"span": 2, "version": None, "accepted": False})
    moved, first = changed()  # span 2 rejected since: the window reads spans 1 and 3
    assert moved == {run_plan.DATA_KEY}
    serving = planned["serving"]
    (serving / "100").mkdir(parents=True)
    (serving / "100" / production_spec.SAVED_MODEL).write_bytes(b"model")
    record.write(str(serving), record.make_record("100", str(serving / "100")))  # a push
    moved, first = changed()
    assert moved == {run_plan.PRODUCTION_KEY}
    assert first[run_plan.PRODUCTION_KEY] == record.read(str(serving)).digest
    planned["schema"].write_text('feature { name: "label" type: INT }\n')  # the schema edited
    moved, first = changed()
    assert moved == {run_plan.SCHEMA_KEY}


def test_a_missing_input_fails_the_plan_naming_it(planned):
    with pytest.raises(Exception, match="no span of 'span-\\{SPAN\\}/\\*.csv'"):
        run_plan.run(planned["input"])
    span_data.write_span(str(planned["data"]), 1)
    planned["schema"].unlink()
    with pytest.raises(FileNotFoundError, match=f"the schema file {planned['schema']}"):
        run_plan.main(["--executor_input", json.dumps(planned["input"])])
    assert not planned["out"].exists()
