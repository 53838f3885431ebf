"""ClassBalance, run on a real Examples artifact, locally and on a non-local file system."""

import json

import pytest
from tfx.types import channel, standard_artifacts

from acme_embeddings.class_balance import spec
from acme_embeddings.class_balance.component import ClassBalance
from tfx_metric_learning.testing import (
    ExecutorRunError,
    check_writes_through_fileio,
    run_executor,
)


def _component(min_rows=20):
    return ClassBalance(
        examples=channel.Channel(type=standard_artifacts.Examples), min_rows_per_class=min_rows
    )


def test_counts_every_row_of_every_split(tmp_path, digits_examples):
    outputs = run_executor(
        _component(), {spec.EXAMPLES_KEY: digits_examples}, output_dir=str(tmp_path)
    )
    (balance,) = outputs[spec.BALANCE_KEY]
    report = json.loads((tmp_path / spec.BALANCE_KEY / spec.BALANCE_FILE).read_text())
    assert balance.uri == str(tmp_path / spec.BALANCE_KEY)
    assert sorted(report["splits"]) == ["eval", "train", "valid"]
    assert sum(n for counts in report["splits"].values() for n in counts.values()) == 300
    assert set(report["splits"]["train"]) == {str(d) for d in range(10)}
    small = report["under_minimum"]["eval"]
    assert small == [c for c, n in report["splits"]["eval"].items() if n < 20]


def test_writes_only_through_fileio(digits_examples):
    written = check_writes_through_fileio(_component(), {spec.EXAMPLES_KEY: digits_examples})
    (path,) = written["outputs"][spec.BALANCE_KEY]
    assert path.startswith("ram://") and path.endswith(spec.BALANCE_FILE)


def test_a_call_the_spec_does_not_allow_is_refused(digits_examples):
    with pytest.raises(ExecutorRunError, match="no execution property 'min_rows'"):
        run_executor(_component(), {spec.EXAMPLES_KEY: digits_examples}, {"min_rows": 3})
    with pytest.raises(ExecutorRunError, match="needs input\\(s\\) examples"):
        run_executor(_component(), {})
