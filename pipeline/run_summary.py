"""The end-of-run text: a run's summary and a comparison's leaderboards, for the terminal.

``run_report`` gathers a run's facts from ML Metadata into a summary dict (also written by
``--summary-json``); this module only words them. Nothing here reads the store.
"""

from __future__ import annotations

from tfx_metric_learning.components.data_validator.executor import message
from tfx_metric_learning.components.leaderboard.report import markdown_table, raw_verdict


def strategy_words(name: str) -> str:
    """The training summary's strategy as the run summary says it (``none``: one device)."""
    return "one device, no distribution strategy" if name == "none" else name


def production_line(production: dict) -> str:
    """What was in production when the run started (its baseline and warm start)."""
    if production["status"] == "found":
        return f"Production at the start: {production['reason']}."
    return f"Production at the start: none ({production['reason']}); no baseline to beat."


def format_summary(summary: dict) -> str:
    """The end-of-run summary: metrics, blessing, where the pushed model is."""
    lines = ["", f"Run finished in {summary.get('seconds', 0):.1f} s."]
    ingest = summary.get("ingest")
    if ingest and ingest.get("spans_read"):
        names = ingest.get("span_names") or ingest  # as the data pattern names them
        left_out = names.get("spans_left_out")
        lines.append(
            f"Spans: newest {names['span']}; read {', '.join(map(str, names['spans_read']))}"
            + (
                f"; left out (rejected by validation) {', '.join(map(str, left_out))}"
                if left_out
                else ""
            )
            + "."
        )
        if names.get("spans_without_files"):
            lines.append(
                f"Span(s) {', '.join(map(str, names['spans_without_files']))} have no files "
                f"yet: the newest readable span is {names['span']}."
            )
    if ingest:
        dropped = sum(ingest["rows_dropped"].values())
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(ingest["rows_dropped"].items()))
        splits = ", ".join(f"{k} {v}" for k, v in sorted(ingest["split_rows"].items()))
        lines.append(
            f"Data: {ingest['rows_read']} rows read, {dropped} dropped"
            + (f" ({reasons})" if reasons else "")
            + f", {ingest['missing_values_imputed']} missing values imputed; split: {splits}."
        )
    validation = summary.get("validation")
    if validation:
        lines.append(validation_line(validation))
    production = summary.get("production")
    if production:
        lines.append(production_line(production))
    metrics = summary.get("metrics")
    baseline = summary.get("baseline_metrics")
    if metrics:
        lines.append(
            "Retrieval metrics on the eval split (candidate"
            + (" vs baseline):" if baseline else "):")
        )
        for key, value in metrics.items():
            if isinstance(value, float):
                extra = f"   baseline {baseline[key]:.4f}" if baseline else ""
                lines.append(f"  {key:<16} {value:.4f}{extra}")
        for name, raw in (summary.get("raw_baselines") or {}).items():
            lines.append(f"  {name} (inputs, cosine): map_at_r {raw['map_at_r']:.4f}")
        for name, classic in (summary.get("classic_baselines") or {}).items():
            lines.append(f"  {name} (linear, fit on train): map_at_r {classic['map_at_r']:.4f}")
        for what, key in (("raw features", "lift_over_raw"), ("classic", "lift_over_classic")):
            lift = summary.get(key) or {}
            if lift.get("value") is not None:
                lines.append(
                    f"  lift over {what}: {lift['metric']} {lift['value']:+.4f} "
                    f"(over {lift['over']})"
                )
    training = summary.get("training")
    if training:
        lines.append(
            f"Trained with {training['loss']} on {training['num_replicas']} replica(s) "
            f"({strategy_words(training['strategy'])}), {training['total_steps']} steps."
        )
        kept = training.get("selection") or {}
        if kept.get("split"):
            before = " (the encoder before training)" if kept["kept_epoch"] == 0 else ""
            lines.append(
                f"Kept epoch {kept['kept_epoch']} of {training['epochs']}{before}: the best "
                f"validation {kept['metric']} ({kept['value']:.4f} on {kept['validation_rows']} "
                f"rows of the {kept['split']} split)."
            )
        if training.get("warm_started_from"):
            version = (production or {}).get("version")
            lines.append(
                "Warm start from: "
                + (f"production version {version}, " if version else "")
                + training["warm_started_from"]
            )
        elif training.get("warm_start_asked"):
            lines.append(
                "Cold start: --warm-start was asked, but nothing usable is in production yet; "
                "trained from scratch."
            )
        if training.get("resumed_after_epoch"):
            lines.append(f"Resumed after epoch {training['resumed_after_epoch']} (preempted).")
    blessed = summary.get("blessed")
    if blessed is None:
        lines.append("Blessed: unknown (the evaluator did not run)")
    else:
        why = "" if blessed else f" ({'; '.join(summary.get('reasons') or [])})"
        lines.append(f"Blessed: {'yes' if blessed else 'no'}{why}")
    pushed = summary.get("pushed_model")
    lines.append(f"Pushed model: {pushed}" if pushed else "Pushed model: none (not pushed)")
    if summary.get("gallery"):
        lines.append(gallery_line(summary["gallery"], bool(pushed)))
    if summary.get("evaluation_uri"):
        lines.append(f"Evaluation: {summary['evaluation_uri']}")
    if summary.get("report"):
        lines.append(f"Report: {summary['report']}")
    for error in summary.get("report_errors") or []:
        lines.append(f"Report incomplete: {error}")
    if (summary.get("gallery") or {}).get("report"):
        lines.append(f"Gallery report: {summary['gallery']['report']}")
    if summary.get("log_file"):
        lines.append(f"Full log: {summary['log_file']}")
    return "\n".join(lines)


def comparison_markdown(summary: dict) -> str:
    """Each protocol's leaderboard as a Markdown table under a heading."""
    parts = []
    for protocol, result in summary["protocols"].items():
        if result.get("leaderboard"):
            parts.append(f"#### {protocol}\n\n{markdown_table(result['leaderboard'])}\n")
    return "\n".join(parts)


def format_comparison(summary: dict) -> str:
    """The end of a comparison: each protocol's leaderboard, its winner, the blessing and push."""
    lines = ["", f"Comparison finished in {summary['seconds']:.1f} s."]
    for protocol, result in summary["protocols"].items():
        board = result.get("leaderboard")
        lines.append("")
        if not board:
            lines.append(f"{protocol}: no leaderboard (the pipeline stopped before it).")
            continue
        winner = board["winner"]
        lines += [
            f"Protocol {protocol} ({result['seconds']:.0f} s): test metrics on the "
            f"{board.get('split', 'eval')} split, mean ± 95% CI over seeds; ranked by mean "
            f"validation {board['selection']['metric']}.",
            markdown_table(board),
            f"Winner: {winner['candidate']} (seed {winner['seed']}, validation "
            f"{board['selection']['metric']} {winner['validation']:.4f}).",
            raw_verdict(board),
            f"Leaderboard: {result['leaderboard_uri']}",
        ]
        if board.get("report"):
            lines.append(f"Report: {board['report']}")
        run = result.get("run")
        if run is not None:
            blessed = run.get("blessed")
            if blessed is None:
                verdict = "unknown (the evaluator did not run)"
            else:
                verdict = "yes" if blessed else f"no ({'; '.join(run.get('reasons') or [])})"
            lines.append(f"Winner blessed against production: {verdict}")
            pushed = run.get("pushed_model")
            lines.append(f"Pushed model: {pushed}" if pushed else "Pushed model: none (not pushed)")
        elif protocol != summary["deploy_protocol"]:
            lines.append(
                f"(report only: the {summary['deploy_protocol']} winner is the one deployed)"
            )
    if summary.get("log_file"):
        lines.append(f"Full log: {summary['log_file']}")
    return "\n".join(lines)


def gallery_line(gallery: dict, pushed: bool) -> str:
    """The gallery index: its size and kind, the match threshold and its rates."""
    index, match = gallery["index"], gallery["match"]
    kind = (
        "exact"
        if index["kind"] == "flat"
        else f"IVF, nprobe {index['nprobe']} of {index['nlist']}, recall@{index['k']} "
        f"{index['recall_at_k']:.4f}"
    )
    if match["threshold"] is None:
        threshold = f"no threshold reaches precision {match['target_precision']}: every lookup "
        threshold += "says unknown"
    else:
        threshold = (
            f"match threshold {match['threshold']:.4f} (precision {match['precision']:.4f}, "
            f"recall {match['recall']:.4f}, false accepts {match['false_accept_rate']:.4f} on "
            f"{match['queries']} eval queries)"
        )
    where = "pushed with the model" if pushed else "not pushed"
    if gallery.get("signature"):
        where += ", whose 'lookup' signature searches it"
    source = gallery.get("source", "data")
    rows = f"{index['rows']} rows" + ("" if source == "data" else f" of {source}")
    return f"Gallery index: {rows}, {kind}; {threshold}; {where}."


def validation_line(validation: dict) -> str:
    """The DataValidator's verdict in one line (the anomalies by feature when there are any)."""
    found = validation["anomalies"]
    what = "Validation"
    if validation.get("span") is not None:
        baseline = validation.get("baseline_span")
        what += f" of span {validation['span']} against the schema" + (
            f" and span {baseline}" if baseline is not None else " (no earlier span to drift from)"
        )
    if not found:
        return f"{what}: no anomalies."
    if validation["accepted"]:
        return f"{what}: anomalies allowed (--allow-anomalies): {message(found)}"
    return (
        f"{what}: stopped before Transform, nothing trained or pushed: {message(found)} "
        f"(anomalies: {validation['anomalies_uri']})"
    )
