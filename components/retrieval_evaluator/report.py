"""A self-contained HTML report (images embedded) plus PNGs, rendered offline with matplotlib.

Contents: the metrics table (candidate vs baseline) with the decision, the Recall@k curve,
histograms of same-class vs different-class distances, a 2-D projection of the embeddings
coloured by label (t-SNE when the split is small, PCA otherwise), and MAP@R per class (the
``PER_CLASS_MAX`` worst classes of the first model when there are more: a chart of thousands of
bars is neither readable nor cheap to draw).

Every file is written through ``tfx.dsl.io.fileio``, so the report lands where the artifact
is (a bucket on Kubeflow), never on the worker's local disk.

Labels are the user's text: matplotlib draws them as text, never as mathtext (``$5_$10``, a
price band, would otherwise be parsed as a formula and fail), and the HTML escapes them. A
figure that cannot be drawn is left out and named in the report and in the returned errors:
the report never costs a finished evaluation.
"""

from __future__ import annotations

import base64
import html
import io
import os

import matplotlib
from tfx.dsl.io import fileio

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from tfx_metric_learning.components.retrieval_evaluator import verification  # noqa: E402
from tfx_metric_learning.components.retrieval_evaluator.spec import REPORT_FILE  # noqa: E402

TSNE_MAX_POINTS = 2000
# t-SNE optimisation steps: half of scikit-learn's default 1,000, which on the demo's 539 points
# took 3 s of the evaluator's 9 for a picture that changes little after 500
TSNE_ITERATIONS = 500
# matplotlib settings for every figure: labels and titles are plain text
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}
PROJECTION_MAX_POINTS = 5000
LEGEND_MAX_CLASSES = 20  # classes named in the projection's legend, and drawn one by one
PER_CLASS_MAX = 40  # classes in the per-class chart: beyond, the worst ones


def save_figure(fig, out_dir: str, name: str) -> str:
    """Writes ``fig`` as ``out_dir/name`` (PNG, through fileio), closes it; returns it as base64."""
    path = os.path.join(out_dir, name)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = buf.getvalue()
    with fileio.open(path, "wb") as f:
        f.write(data)
    return base64.b64encode(data).decode()


def _recall_curve(results: dict, out_dir: str) -> str:
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, res in results.items():
        curve = res["retrieval"]["recall_curve"]
        ax.plot(range(1, len(curve) + 1), curve, marker="o", ms=3, label=name)
    ax.set_xlabel("k")
    ax.set_ylabel("Recall@k")
    ax.set_title("Recall@k")
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, out_dir, "recall_at_k.png")


def _histograms(results: dict, out_dir: str) -> str:
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.5), squeeze=False)
    bins = np.linspace(0, 2, 81)
    for ax, (name, res) in zip(axes[0], results.items(), strict=True):
        same, diff = res["pairs"]
        ax.hist(diff, bins=bins, density=True, alpha=0.6, label="different class")
        ax.hist(same, bins=bins, density=True, alpha=0.6, label="same class")
        v = res["verification"]
        ax.set_title(f"{name}: d'={v['separation']:.2f}, overlap={v['overlap']:.3f}")
        ax.set_xlabel("cosine distance")
        ax.legend()
    return save_figure(fig, out_dir, "distance_histograms.png")


def _projection(embeddings: np.ndarray, labels: np.ndarray, out_dir: str, seed: int) -> str:
    rng = np.random.default_rng(seed)
    if len(embeddings) > PROJECTION_MAX_POINTS:
        keep = rng.choice(len(embeddings), PROJECTION_MAX_POINTS, replace=False)
        embeddings, labels = embeddings[keep], labels[keep]
    if len(embeddings) <= TSNE_MAX_POINTS and len(embeddings) > 5:
        from sklearn.manifold import TSNE

        points = TSNE(
            n_components=2,
            random_state=seed,
            init="pca",
            perplexity=min(30.0, (len(embeddings) - 1) / 3),
            max_iter=TSNE_ITERATIONS,
        ).fit_transform(embeddings)
        method = "t-SNE"
    else:
        from sklearn.decomposition import PCA

        points = PCA(n_components=2, random_state=seed).fit_transform(embeddings)
        method = "PCA"
    fig, ax = plt.subplots(figsize=(6, 5))
    classes, codes = np.unique(labels, return_inverse=True)
    cmap = plt.get_cmap("tab20" if len(classes) > 10 else "tab10")
    if len(classes) <= LEGEND_MAX_CLASSES:
        for i, c in enumerate(classes):
            sel = codes == i
            ax.scatter(points[sel, 0], points[sel, 1], s=8, color=cmap(i % cmap.N), label=str(c))
        ax.legend(markerscale=2, fontsize=7, ncol=2)
    else:  # one call: a legend of thousands of classes would be unreadable anyway
        ax.scatter(points[:, 0], points[:, 1], s=4, c=cmap(codes % cmap.N))
    ax.set_title(f"candidate embeddings ({method}), coloured by label")
    ax.set_xticks([])
    ax.set_yticks([])
    return save_figure(fig, out_dir, "projection.png")


def chart_classes(per_class: dict[str, dict], model: str) -> tuple[list[str], str]:
    """The classes the per-class chart draws (sorted) and its title.

    All of them, or the ``PER_CLASS_MAX`` with the lowest MAP@R of ``model`` (ties by name).
    """
    classes = sorted(per_class)
    if len(classes) <= PER_CLASS_MAX:
        return classes, "MAP@R per class"
    worst = sorted(classes, key=lambda c: (per_class[c]["map_at_r"], c))[:PER_CLASS_MAX]
    return sorted(worst), f"MAP@R of the {PER_CLASS_MAX} worst of {len(classes)} classes ({model})"


def _per_class(results: dict, out_dir: str) -> str:
    names = list(results)
    classes, title = chart_classes(results[names[0]]["retrieval"]["per_class"], names[0])
    fig, ax = plt.subplots(figsize=(max(5, 0.45 * len(classes) * len(names)), 3.5))
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        per = results[name]["retrieval"]["per_class"]
        values = [per.get(c, {}).get("map_at_r", np.nan) for c in classes]
        ax.bar(np.arange(len(classes)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(classes)) + 0.4 - width / 2)
    ax.set_xticklabels(classes, rotation=90 if len(classes) > 15 else 0)
    ax.set_ylabel("MAP@R")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.legend()
    return save_figure(fig, out_dir, "map_at_r_per_class.png")


def _cell(result: dict, metric: str) -> str:
    """The metric, with its sampling error when the queries were a sample."""
    value = f"{result['metrics'].get(metric, float('nan')):.4f}"
    error = (result["retrieval"].get("sampling_error") or {}).get(metric)
    return value if error is None else f"{value} &plusmn; {error:.4f}"


def _table(results: dict, metric_names: list[str]) -> str:
    """One column per result: a full one, or ``{"metrics", "retrieval": {"sampling_error"}}``."""
    names = list(results)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for metric in metric_names:
        cells = "".join(f"<td>{_cell(results[n], metric)}</td>" for n in names)
        rows.append(f"<tr><th>{metric}</th>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


def figures_html(images: dict[str, str], errors: list[str]) -> str:
    """Each figure (title -> base64 PNG) under its heading, after the ones that failed."""
    failed = "".join(f"<p>{html.escape(e)}</p>" for e in errors)
    return failed + "".join(
        f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' "
        f"src='data:image/png;base64,{data}'>"
        for title, data in images.items()
    )


def write_page(out_dir: str, title: str, body: str) -> str:
    """``out_dir/report.html``: ``body`` in the reports' self-contained page; its path."""
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}
img{{max-width:100%}}</style></head><body>
{body}
</body></html>"""
    path = os.path.join(out_dir, REPORT_FILE)
    with fileio.open(path, "wb") as f:
        f.write(page.encode("utf-8"))
    return path


def write_report(
    out_dir: str,
    results: dict,
    candidate_embeddings: np.ndarray,
    candidate_labels: np.ndarray,
    metric_names: list[str],
    decision: dict,
    seed: int = 0,
    reused: dict | None = None,
) -> tuple[str, list[str]]:
    """Writes ``report.html`` and the PNGs into ``out_dir``; returns ``(html path, errors)``.

    ``errors`` names each figure that could not be drawn (the rest of the report is written).

    ``results``: name ("candidate", "baseline") -> {"metrics", "retrieval" (with details),
    "verification", "pairs" (same, different distances)}. ``reused``: name -> {"metrics",
    "retrieval": {"sampling_error"}} of baselines another evaluation scored, shown in the
    table only.
    """
    fileio.makedirs(out_dir)
    figures_to_draw = {
        "Recall@k": lambda: _recall_curve(results, out_dir),
        "Distances of same-class and different-class pairs": lambda: _histograms(results, out_dir),
        "Embeddings in 2-D": lambda: _projection(
            verification.normalise(candidate_embeddings),
            np.asarray(candidate_labels),
            out_dir,
            seed,
        ),
        "MAP@R per class": lambda: _per_class(results, out_dir),
    }
    images, errors = {}, []
    for title, draw in figures_to_draw.items():
        try:
            with matplotlib.rc_context(PLAIN_TEXT):
                images[title] = draw()
        except Exception as e:  # a figure is a courtesy; the evaluation stands without it
            plt.close("all")
            errors.append(f"figure {title!r} could not be drawn: {type(e).__name__}: {e}")
    verdict = "BLESSED" if decision["blessed"] else "NOT BLESSED"
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in decision.get("reasons", []))
    lone = results["candidate"]["retrieval"].get("classes_without_positive", [])
    notes = (
        f"<p>{len(lone)} class(es) have a single example in the gallery and add no "
        f"R-Precision/MAP@R term: {html.escape(', '.join(lone[:20]))}</p>"
        if lone
        else ""
    )
    body = f"""<h1>Retrieval evaluation: {verdict}</h1>
<ul>{reasons or "<li>all thresholds met and not worse than the baseline</li>"}</ul>
{_table({**results, **(reused or {})}, metric_names)}
{notes}
{figures_html(images, errors)}"""
    path = write_page(out_dir, "Retrieval evaluation", body)
    return path, errors
