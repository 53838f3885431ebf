"""The stand-in scenarios of tests/kubeflow, started together once (see ``scenarios``)."""

import concurrent.futures

import pytest

from tests.kubeflow import scenarios
from tests.kubeflow.kfp_local import MODES


@pytest.fixture(scope="session")
def stand_in_runs(tmp_path_factory):
    """``{"kfp" | "vertex": four days, "compare-kfp" | "compare-vertex": a comparison}``,
    each a future."""
    base = tmp_path_factory.mktemp("stand-in")
    schema = scenarios.curated_schema(base)
    schedules = {mode: scenarios.compile_schedule(base / mode, schema) for mode in MODES}
    compares = {mode: scenarios.compile_comparison(base / f"compare-{mode}") for mode in MODES}
    with concurrent.futures.ThreadPoolExecutor(2 * len(MODES)) as pool:
        futures = {
            mode: pool.submit(scenarios.four_days, schedules[mode], mode, base / mode)
            for mode in MODES
        }
        for mode in MODES:
            futures[f"compare-{mode}"] = pool.submit(scenarios.comparison, compares[mode], mode)
        yield futures
