"""The leaderboard as a self-contained HTML page (figures embedded) and as a Markdown table.

Same style and rules as the evaluation report (``components/retrieval_evaluator/report.py``):
written through ``fileio`` where the artifact is, labels drawn as plain text and escaped, a
figure that cannot be drawn named in the page and in the returned errors. Contents: the
table (``markdown_table``'s columns), test MAP@R per candidate as bars with 95% intervals over
seeds, and the candidates' mean Recall@k curves overlaid with the raw-feature baselines.
"""

from __future__ import annotations

import html

import matplotlib
from tfx.dsl.io import fileio

from tfx_metric_learning.components.retrieval_evaluator import report as evaluation_report

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# reported columns when the leaderboard has them: (metric, heading)
COLUMNS = (
    ("map_at_r", "MAP@R"),
    ("r_precision", "R-Precision"),
    ("precision_at_1", "P@1"),
    ("roc_auc", "AUC"),
)


def _interval(value: dict) -> str:
    half = value.get("ci95")
    return f"{value['mean']:.4f}" + ("" if half is None else f" ± {half:.4f}")


def _recall_columns(board: dict) -> list[str]:
    ks = sorted(int(m.rsplit("_", 1)[1]) for m in board["metrics"] if m.startswith("recall_at_"))
    return [f"recall_at_{k}" for k in ks]


def _significance(row: dict) -> str:
    test = row.get("vs_winner")
    if row["rank"] == 1:
        return "winner"
    if test is None:
        return "n/a (one seed)"
    word = "yes" if test["significant"] else "no"
    return f"{word} ({test['mean_difference']:+.4f}, p={test['p_value']:.3f})"


def _tuned(values: dict | None) -> str:
    if not values:
        return "-"
    return " ".join(f"{k.removeprefix('loss.')}={v:.3g}" for k, v in sorted(values.items()))


def rows(board: dict) -> tuple[list[str], list[list[str]]]:
    """The leaderboard's table: ``(headings, cells)``, candidates by rank, then raw baselines.

    "lift over raw": mean test MAP@R minus the better raw-feature baseline's (negative: the
    model separates worse than its inputs); "kept epochs": the epoch each seed kept.
    """
    columns = [(m, h) for m, h in COLUMNS if m in board["metrics"]]
    recall = _recall_columns(board)
    head = [
        "rank",
        "candidate",
        "valid MAP@R",
        *[f"test {h}" for _, h in columns],
        *[f"R@{m.rsplit('_', 1)[1]}" for m in recall],
        "lift over raw",
        "kept epochs",
        "train s",
        "differs from winner (paired)",
    ]
    tuned = any(row.get("tuned") for row in board["candidates"])
    if tuned:
        head.append("tuned")
    body = []
    for row in board["candidates"]:
        body.append(
            [
                str(row["rank"]),
                row["candidate"],
                _interval(row["validation"]),
                *[_interval(row["test"][m]) for m, _ in columns],
                *[f"{row['test'][m]['mean']:.4f}" for m in recall],
                "-" if row.get("lift_over_raw") is None else f"{row['lift_over_raw']:+.4f}",
                ",".join(str(v["kept_epoch"]) for v in row["per_seed"].values()),
                f"{row['seconds']['mean']:.0f}",
                _significance(row),
                *([_tuned(row.get("tuned"))] if tuned else []),
            ]
        )
    baselines = [(f"{n} (inputs, cosine)", v) for n, v in sorted(board["raw_baselines"].items())]
    baselines += [
        (f"{n} (linear, fit on train)", v)
        for n, v in sorted((board.get("classic_baselines") or {}).items())
    ]
    for label, values in baselines:
        body.append(
            [
                "-",
                label,
                "-",
                *[f"{values[m]:.4f}" for m, _ in columns],
                *[f"{values[m]:.4f}" for m in recall],
                "-",
                "-",
                "-",
                "-",
                *(["-"] if tuned else []),
            ]
        )
    return head, body


def raw_verdict(board: dict) -> str:
    """One sentence: whether the winner, and which candidates, separate better than the inputs."""
    raw = board.get("best_raw_baseline")
    if raw is None:
        return ""
    metric = board["test_metric"]
    value = board["raw_baselines"][raw][metric]
    better = [r["candidate"] for r in board["candidates"] if r["lift_over_raw"] > 0]
    equal = [r["candidate"] for r in board["candidates"] if r["lift_over_raw"] == 0]
    winner = board["candidates"][0]
    if winner["lift_over_raw"] > 0:
        return (
            f"The winner separates better than its inputs: test {metric} "
            f"{winner['test'][metric]['mean']:.4f} against {value:.4f} for {raw} "
            f"(lift {winner['lift_over_raw']:+.4f})."
        )
    if better:
        others = f"; better than the inputs: {', '.join(better)}"
    else:
        others = "; no candidate does" + (f" (as good: {', '.join(equal)})" if equal else "")
    how = "only as well as" if winner["lift_over_raw"] == 0 else "WORSE than"
    return (
        f"The winner separates {how} its own inputs: test {metric} "
        f"{winner['test'][metric]['mean']:.4f} against {value:.4f} for {raw} "
        f"(lift {winner['lift_over_raw']:+.4f}){others}."
    )


def markdown_table(board: dict) -> str:
    """The table as Markdown (what the CLI prints and docs/compare.md shows)."""
    head, body = rows(board)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    return "\n".join(lines)


def _bars(board: dict, out_dir: str) -> str:
    metric = board["test_metric"]
    names = [r["candidate"] for r in board["candidates"]]
    means = [r["test"][metric]["mean"] for r in board["candidates"]]
    errors = [r["test"][metric]["ci95"] or 0.0 for r in board["candidates"]]
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(names)), 3.8))
    ax.bar(range(len(names)), means, yerr=errors, capsize=4, color="tab:blue")
    for i, (name, values) in enumerate(sorted(board["raw_baselines"].items())):
        ax.axhline(values[metric], ls="--", color=f"C{i + 1}", label=f"{name} (inputs)")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel(f"test {metric} (mean, 95% CI)")
    ax.set_ylim(0, 1)
    if board["raw_baselines"]:
        ax.legend(fontsize=8)
    return evaluation_report.save_figure(fig, out_dir, "leaderboard.png")


def _recall_curves(board: dict, out_dir: str) -> str:
    recall = _recall_columns(board)
    ks = [int(m.rsplit("_", 1)[1]) for m in recall]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for row in board["candidates"]:
        ax.plot(
            ks, [row["test"][m]["mean"] for m in recall], marker="o", ms=3, label=row["candidate"]
        )
    for name, values in sorted(board["raw_baselines"].items()):
        ax.plot(ks, [values[m] for m in recall], ls="--", label=f"{name} (inputs)")
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k (mean over seeds)")
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return evaluation_report.save_figure(fig, out_dir, "recall_at_k.png")


def write_report(out_dir: str, board: dict) -> tuple[str, list[str]]:
    """Writes ``report.html`` and its PNGs into ``out_dir``; returns ``(path, errors)``."""
    fileio.makedirs(out_dir)
    images, errors = {}, []
    for title, draw in {
        f"Test {board['test_metric']} by candidate": lambda: _bars(board, out_dir),
        "Recall@k": lambda: _recall_curves(board, out_dir),
    }.items():
        try:
            with matplotlib.rc_context(evaluation_report.PLAIN_TEXT):
                images[title] = draw()
        except Exception as e:  # a figure is a courtesy; the leaderboard stands without it
            plt.close("all")
            errors.append(f"figure {title!r} could not be drawn: {type(e).__name__}: {e}")
    head, lines = rows(board)
    table = "<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"
    table += "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>" for cells in lines
    )
    table += "</table>"
    winner = board["winner"]
    n_seeds = max(len(r["seeds"]) for r in board["candidates"])
    body = f"""<h1>Leaderboard: {html.escape(winner["candidate"])} wins</h1>
<p>Ranked by mean validation {board["selection"]["metric"]} (the
{html.escape(board["selection"]["split"])} split) over up to {n_seeds} seed(s); test metrics on
the {html.escape(board.get("split", "eval"))} split, mean ± 95% t interval over seeds.
"Differs from winner": paired t-test over seeds of test {board["test_metric"]},
significant below p = {board["alpha"]}. Shipped for blessing: seed {winner["seed"]} of the
winner (validation {winner["validation"]:.4f}).</p>
<p><b>{html.escape(raw_verdict(board))}</b></p>
{table}
{evaluation_report.figures_html(images, errors)}"""
    path = evaluation_report.write_page(out_dir, "Leaderboard", body)
    return path, errors
