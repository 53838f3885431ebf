"""``metric-learning compare`` run locally: the comparison pipeline once per protocol.

The same session as a run (``local_runner.checked_and_locked``: checks, lock, temp folder),
the plan printed before anything runs (``compare_plan``), then per protocol the compare
pipeline executed (``local_runner.execute``) and its leaderboard read back from ML Metadata.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from tfx.orchestration import metadata as tfx_metadata

from tfx_metric_learning.components.example_gen import split_plan
from tfx_metric_learning.components.leaderboard.spec import LEADERBOARD_FILE
from tfx_metric_learning.pipeline import (
    beam_policy,
    compare_plan,
    local_runner,
    preflight,
    run_report,
)
from tfx_metric_learning.pipeline.candidates import require_validation_split
from tfx_metric_learning.pipeline.config import PipelineConfig
from tfx_metric_learning.pipeline.pipeline import (
    create_compare_pipeline,
)


def comparison_configs(config: PipelineConfig, protocols: list[str]) -> list[PipelineConfig]:
    """One config per protocol of a comparison; the first is the deployment protocol.

    The first protocol's pipeline keeps the config's pipeline name, so it shares the cache with
    ``run`` (and, as every pipeline pushing to the same serving folder, the production model);
    each other protocol's pipeline is named ``<name>-<protocol>`` and only reports.
    """
    require_validation_split(config.ingest.validation_fraction)
    if not protocols:
        raise ValueError("a comparison needs at least one protocol")
    if len(set(protocols)) != len(protocols):
        raise ValueError(f"a protocol is given twice: {protocols}")
    out = []
    for i, protocol in enumerate(protocols):
        name = config.pipeline_name if i == 0 else f"{config.pipeline_name}-{protocol}"
        variant = dataclasses.replace(
            config,
            pipeline_name=name,
            ingest=dataclasses.replace(config.ingest, protocol=protocol),
        )
        variant.validate()
        out.append(variant)
    return out


def compare(
    config: PipelineConfig,
    candidates: list,
    seeds: list[int],
    protocols: list[str],
    progress: Callable[[str], None] = print,
    log_file: str | None = None,
    quiet: bool = False,
    wait_for_lock: float = 0.0,
    tuning_trials: int = 0,
    max_branches: int = compare_plan.MAX_BRANCHES,
) -> dict:
    """Runs the comparison pipeline of ``candidates`` x ``seeds`` once per protocol.

    Same checks, lock and temp folder as ``run``; the data is checked for every protocol and
    candidate before anything runs, then the plan is printed (``compare_plan``: branches,
    components, an estimate of the time; ``max_branches`` is only named there, the CLI
    refuses a larger plan before this runs). The first protocol's winner goes through the blessing
    against production and Pusher (``pipeline.create_compare_pipeline``); ``tuning_trials``
    > 0 tunes each candidate first. Returns
    ``{"seconds", "deploy_protocol", "protocols": {protocol: {"leaderboard",
    "leaderboard_uri", "seconds", "run" (the run summary of the blessing and push, first
    protocol only)}}}``.
    """
    configs = comparison_configs(config, protocols)
    trainings = {c.label: c.settings(config.training, seeds[0]) for c in candidates}

    found: list[dict] = []

    def check(data_path: str) -> None:
        found.extend(preflight.check(variant, data_path, trainings) for variant in configs)

    started = time.time()
    with local_runner.checked_and_locked(config, progress, wait_for_lock, check) as (
        run_id,
        data_path,
    ):
        plan = compare_plan.ComparePlan(
            candidates=len(candidates),
            seeds=len(seeds),
            tuning_trials=tuning_trials,
            components=sum(
                len(
                    create_compare_pipeline(
                        variant,
                        data_path,
                        candidates,
                        seeds,
                        deploy=i == 0,
                        tuning_trials=tuning_trials,
                    ).components
                )
                for i, variant in enumerate(configs)
            ),
            train_rows=[f["planned_split_rows"][split_plan.TRAIN] for f in found],
            epochs=[t.epochs for t in trainings.values()],
        )
        progress(plan.describe(max_branches))
        local_runner.configure_cpu_devices(config.cpu_replicas)

        out: dict = {"deploy_protocol": protocols[0], "protocols": {}, "data": data_path}
        for i, variant in enumerate(configs):
            protocol = variant.ingest.protocol
            progress(f"Protocol {protocol}: {len(candidates)} candidate(s) x {len(seeds)} seed(s)")
            variant = beam_policy.local_config(variant, data_path, progress)
            metadata = tfx_metadata.sqlite_metadata_connection_config(variant.metadata_path)
            pipeline = create_compare_pipeline(
                variant,
                data_path,
                candidates,
                seeds,
                deploy=i == 0,
                metadata_connection_config=metadata,
                tuning_trials=tuning_trials,
            )
            protocol_started = time.time()
            protocol_run = f"{run_id}-{protocol}"
            local_runner.execute(pipeline, protocol_run, progress, log_file, quiet)
            outputs = run_report.run_outputs(variant, protocol_run)
            found = outputs.get("Leaderboard", {}).get("leaderboard")
            result: dict = {"seconds": round(time.time() - protocol_started, 1)}
            if found:
                result["leaderboard_uri"] = found[0].uri
                result["leaderboard"] = run_report.read_json(found[0].uri, LEADERBOARD_FILE)
            if i == 0:
                result["run"] = run_report.latest_run(variant, protocol_run)
            out["protocols"][protocol] = result
    out["seconds"] = round(time.time() - started, 1)
    return out
