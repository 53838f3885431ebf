"""The stand-in scenarios of tests/kubeflow, started together once (see ``scenarios``)."""

import concurrent.futures

import pytest

from tests.kubeflow import scenarios
from tests.kubeflow.kfp_local import MODES


@pytest.fixture(scope="session")
def stand_in_runs(tmp_path_factory):
    """``{"kfp" | "vertex": four days, "compare": a comparison}``, each a future."""
    base = tmp_path_factory.mktemp("stand-in")
    schema = scenarios.curated_schema(base)
    schedules = {mode: scenarios.compile_schedule(base / mode, schema) for mode in MODES}
    compare = scenarios.compile_comparison(base / "compare")
    with concurrent.futures.ThreadPoolExecutor(len(MODES) + 1) as pool:
        futures = {
            mode: pool.submit(scenarios.four_days, schedules[mode], mode, base / mode)
            for mode in MODES
        }
        futures["compare"] = pool.submit(scenarios.comparison, compare)
        yield futures
