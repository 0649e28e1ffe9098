"""`cinerec report`: one self-contained HTML page comparing the approaches, for a person to read.

Plots (PNG, inlined as base64): metric bars at k, precision and recall for k = 1..20,
training time. Numbers in a table below them.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

TABLE_METRICS = ("ndcg", "precision", "recall", "map", "coverage", "novelty", "rmse", "mae",
                 "train_seconds")


def render(evaluation: dict, *, title: str, data_summary: dict) -> str:
    models = evaluation["models"]
    k = evaluation["k"]
    figures = [_bars(models, k), _curves(models), _times(models)]
    rows = "".join(
        "<tr><th>{}</th>{}</tr>".format(html.escape(name), "".join(
            f"<td>{_fmt(result.get(metric))}</td>" for metric in TABLE_METRICS))
        for name, result in sorted(models.items(), key=lambda item: -item[1]["ndcg"]))
    header = "".join(f"<th>{m}</th>" for m in TABLE_METRICS)
    images = "".join(f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}">'
                     for alt, png in figures)
    facts = ", ".join(f"{html.escape(str(key))}: {html.escape(str(value))}"
                      for key, value in data_summary.items())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} td, th {{ padding: .3rem .7rem; border-bottom: 1px solid #ddd; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }} img {{ max-width: 100%; margin: 1rem 0; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Protocol <b>{evaluation['protocol']}</b>, k = {k}, {evaluation['users']} test users,
{evaluation['items']} films ranked, {evaluation['train_ratings']} training and
{evaluation['test_ratings']} held-out ratings. Every held-out film is relevant; training films are
excluded from the ranking. Data: {facts}.</p>
<table><tr><th>model</th>{header}</tr>{rows}</table>
{images}
</body></html>
"""


def write(evaluation: dict, path: Path, **kwargs) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(evaluation, **kwargs), encoding="utf-8")
    return path


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def _png(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode()


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _bars(models: dict, k: int) -> tuple[str, str]:
    plt = _plt()
    names = sorted(models, key=lambda n: -models[n]["ndcg"])
    figure, ax = plt.subplots(figsize=(10, 4))
    width = 0.2
    for i, metric in enumerate(("ndcg", "precision", "recall", "map")):
        ax.bar([x + i * width for x in range(len(names))], [models[n][metric] for n in names], width,
               label=f"{metric}@{k}")
    ax.set_xticks([x + 1.5 * width for x in range(len(names))], names, rotation=20)
    ax.set_title(f"Ranking metrics at k = {k}")
    ax.legend()
    png = _png(figure)
    plt.close(figure)
    return "ranking metrics", png


def _curves(models: dict) -> tuple[str, str]:
    plt = _plt()
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for name, result in models.items():
        curve = result.get("curve")
        if not curve:
            continue
        ks = range(1, len(curve["precision"]) + 1)
        left.plot(ks, curve["precision"], label=name)
        right.plot(ks, curve["recall"], label=name)
    left.set_title("Precision@k")
    right.set_title("Recall@k")
    for ax in (left, right):
        ax.set_xlabel("k")
    right.legend(fontsize="small")
    png = _png(figure)
    plt.close(figure)
    return "precision and recall curves", png


def _times(models: dict) -> tuple[str, str]:
    plt = _plt()
    names = sorted(models, key=lambda n: models[n]["train_seconds"])
    figure, ax = plt.subplots(figsize=(10, 3))
    ax.barh(names, [models[n]["train_seconds"] for n in names])
    ax.set_xlabel("training seconds")
    ax.set_title("Training time")
    png = _png(figure)
    plt.close(figure)
    return "training time", png
