"""The study report: ``results.csv``, ``results.json`` and ``report.html``, one self-contained file with the
plots embedded as PNG. It reads only the run directories, the results store and ``diagnostics.json``.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from rnnlab.tasks import get_task  # noqa: E402
from rnnlab.train.rundir import RunDir, write_json_atomic  # noqa: E402

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]


# ------------------------------------------------------------------------------------------------ numbers
def mean_std(values: list[float]) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return float("nan"), float("nan")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def threshold_for(baseline: float, higher_is_better: bool) -> float:
    """The level a run must reach to count as having solved the task: 10% of the baseline's loss-like metric,
    or 90% of the way from the baseline to a perfect score for accuracy-like metrics."""
    return baseline + 0.9 * (1.0 - baseline) if higher_is_better else 0.1 * baseline


def steps_to_reach(run_dir: str | Path, monitor: str, threshold: float, higher_is_better: bool) -> int | None:
    """The first validation step at which the monitored metric reached ``threshold``, or None."""
    for record in RunDir(run_dir).read_metrics():
        if record.get("split") != "valid" or monitor not in record:
            continue
        value = record[monitor]
        if (value >= threshold) if higher_is_better else (value <= threshold):
            return int(record["step"])
    return None


def summarize_cells(study, runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cell: metric mean and std over seeds, size, speed, memory, steps to threshold, baseline."""
    task_cls = get_task(study.task)
    higher = task_cls.higher_is_better
    rows = []
    for spec in study.cells:
        mine = [(rid, r) for rid, r in sorted(runs.items()) if r.get("label", r["cell"]) == spec.label]
        if not mine:
            continue
        monitor = mine[0][1]["monitor"]
        key = f"test_{monitor}"
        values = [r["metrics"].get(key) for _, r in mine]
        mean, std = mean_std(values)
        baseline = mine[0][1]["baseline"].get(key, float("nan"))
        threshold = threshold_for(baseline, higher)
        reached = [steps_to_reach(Path(study.out) / "runs" / rid, monitor, threshold, higher) for rid, _ in mine]
        hit = [s for s in reached if s is not None]
        seconds = [r["train_seconds"] for _, r in mine]
        beats = [(v > baseline) if higher else (v < baseline) for v in values if v is not None]
        rows.append({
            "cell": spec.label,
            "metric": monitor,
            "mean": mean,
            "std": std,
            "seeds": len(mine),
            "params": mine[0][1]["params"],
            "hidden_size": mine[0][1].get("hidden_size"),
            "train_seconds": statistics.fmean(seconds),
            "ms_per_step": statistics.fmean(1000 * r["train_seconds"] / max(1, r["steps"]) for _, r in mine),
            "peak_rss_mb": max(r.get("peak_rss_mb", float("nan")) for _, r in mine),
            "threshold": threshold,
            "steps_to_threshold": statistics.fmean(hit) if hit else None,
            "reached_threshold": f"{len(hit)}/{len(mine)}",
            "baseline": baseline,
            "beats_baseline": f"{sum(beats)}/{len(mine)}",
        })
    return rows


def recommend(study, rows: list[dict[str, Any]], diagnostics: dict[str, Any]) -> list[str]:
    """A few plain sentences derived from the numbers: who wins, who fails, what to pick and why."""
    if not rows:
        return ["No run finished, so there is nothing to recommend yet."]
    higher = get_task(study.task).higher_is_better
    metric = rows[0]["metric"]
    ranked = sorted(rows, key=lambda r: (-r["mean"] if higher else r["mean"]))
    best = ranked[0]
    out = []
    failing = [r for r in rows if not r["beats_baseline"].startswith(str(r["seeds"]))]
    solving = [r for r in rows if int(r["reached_threshold"].split("/")[0]) > 0]
    out.append(f"Best test {metric}: {best['cell']} with {best['mean']:.4g} ± {best['std']:.2g} "
               f"(baseline {best['baseline']:.4g}).")
    if solving:
        out.append("Reached the 'solved' level (" + ("≥" if higher else "≤") + f" {best['threshold']:.3g}): "
                   + ", ".join(f"{r['cell']} in {r['reached_threshold']} seeds" for r in solving) + ".")
    if failing:
        out.append("Did not beat the trivial baseline in every seed: "
                   + ", ".join(f"{r['cell']} ({r['mean']:.4g})" for r in failing) + ".")
    # cells tied with the best within one standard deviation: prefer the cheapest
    tied = [r for r in ranked if abs(r["mean"] - best["mean"]) <= max(best["std"], r["std"], 1e-12)]
    if len(tied) > 1:
        cheapest = min(tied, key=lambda r: (r["params"], r["ms_per_step"]))
        out.append(f"{', '.join(r['cell'] for r in tied)} are within one standard deviation of each other; "
                   f"{cheapest['cell']} is the cheapest of them ({cheapest['params']:,} parameters, "
                   f"{cheapest['ms_per_step']:.1f} ms per step): pick it unless you need the last bit.")
    else:
        out.append(f"Pick {best['cell']}: no other cell comes within one standard deviation of it.")
    reach = {label: gradient_reach(diag["trained"]["grad_norm"]) for label, diag in diagnostics.items()
             if "trained" in diag}
    reach = {label: r for label, r in reach.items() if r is not None}
    if reach:
        steps = len(next(iter(diagnostics.values()))["trained"]["grad_norm"]) - 1
        worst = min(reach, key=reach.get)
        parts = ", ".join(f"{label} {r:.1e}" for label, r in sorted(reach.items(), key=lambda kv: -kv[1]))
        out.append(f"After training, the share of the loss's gradient that reaches {steps} steps back from the end "
                   f"of the sequence: {parts}. The smaller it is, the less a cell can learn from that far back"
                   + (f"; for {worst} it has vanished (see the gradient-flow plot)." if reach[worst] < 1e-3 else "."))
    return out


def gradient_reach(norms: list[float]) -> float | None:
    """``||dL/dh_0|| / ||dL/dh_{T-1}||``: how much of the gradient at the end of a sequence reaches its start."""
    if len(norms) < 2 or not norms[-1] > 0:
        return None
    return norms[0] / norms[-1]


# ------------------------------------------------------------------------------------------------- plots
def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _log_scale(metric: str) -> bool:
    """Loss-like metrics span orders of magnitude between a failing and a solving cell: plot them on a log axis."""
    return metric in ("mse", "rmse", "mae", "mase", "loss", "perplexity") or metric.startswith(("nll", "bits"))


def plot_learning_curves(study, runs, metric: str) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, spec in enumerate(study.cells):
        curves = []
        for rid, r in sorted(runs.items()):
            if r.get("label", r["cell"]) != spec.label:
                continue
            records = [m for m in RunDir(Path(study.out) / "runs" / rid).read_metrics()
                       if m.get("split") == "valid" and metric in m]
            curves.append(([m["step"] for m in records], [m[metric] for m in records]))
        for j, (steps, values) in enumerate(curves):
            ax.plot(steps, values, marker=".", color=COLORS[i % len(COLORS)], alpha=0.85,
                    label=spec.label if j == 0 else None)
    baseline = next(iter(runs.values()))["baseline"].get(f"test_{metric}") if runs else None
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label="baseline")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"validation {metric}")
    if _log_scale(metric):
        ax.set_yscale("log")
    ax.set_title("Learning curves (one line per seed)")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_metric_vs(rows, x_key: str, x_label: str, metric: str) -> str:
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for i, r in enumerate(rows):
        ax.errorbar(r[x_key], r["mean"], yerr=r["std"], fmt="o", capsize=4, color=COLORS[i % len(COLORS)],
                    label=r["cell"])
    if rows:
        ax.axhline(rows[0]["baseline"], color="gray", linestyle="--", label="baseline")
    if _log_scale(metric) and all(r["mean"] > 0 for r in rows):
        ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"test {metric} (mean ± std over seeds)")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_gradient_flow(diagnostics) -> str:
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, (label, diag) in enumerate(diagnostics.items()):
        color = COLORS[i % len(COLORS)]
        for stage, style in (("init", "--"), ("trained", "-")):
            if stage not in diag:
                continue
            d = diag[stage]
            norms = [max(n, 1e-30) for n in d["grad_norm"]]
            when = "initial" if stage == "init" else "trained"
            ax.plot(d["distance"], norms, style, color=color, label=f"{label} ({when})")
    ax.set_yscale("log")
    ax.set_xlabel("distance from the end of the sequence (time steps)")
    ax.set_ylabel("‖∂loss/∂h_t‖ (mean over the batch)")
    ax.set_title("Gradient flow: how much of the loss's gradient reaches each step")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def plot_gates(diagnostics) -> str | None:
    latest = {label: (d["trained"] if "trained" in d else d["init"]) for label, d in diagnostics.items()}
    stage = "trained" if all("trained" in d for d in diagnostics.values()) else "initial"
    gated = {label: d for label, d in latest.items() if d["gates"]}
    if not gated:
        return None
    fig, axes = plt.subplots(1, len(gated), figsize=(4.2 * len(gated), 3.4), squeeze=False)
    for ax, (label, diag) in zip(axes[0], gated.items(), strict=True):
        for i, (name, g) in enumerate(diag["gates"].items()):
            edges, counts = g["edges"], g["counts"]
            total = max(1, sum(counts))
            centers = [(a + b) / 2 for a, b in zip(edges[:-1], edges[1:], strict=True)]
            ax.plot(centers, [c / total for c in counts], marker=".", color=COLORS[i % len(COLORS)],
                    label=f"{name} ({100 * g['saturated']:.0f}% saturated)")
        ax.set_title(f"{label}: gate activations ({stage})")
        ax.set_xlabel("activation (0 = closed, 1 = open)")
        ax.set_ylabel("share of activations")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return _png(fig)


# ------------------------------------------------------------------------------------------------ output
def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


COLUMNS = [("cell", "cell"), ("mean", "test {metric} (mean)"), ("std", "± std"), ("seeds", "seeds"),
           ("params", "parameters"), ("hidden_size", "hidden size"), ("train_seconds", "train time (s)"),
           ("ms_per_step", "ms / step"), ("peak_rss_mb", "peak memory (MB)"),
           ("steps_to_threshold", "steps to solve"), ("reached_threshold", "solved (seeds)"),
           ("baseline", "baseline"), ("beats_baseline", "beats baseline")]


def write_report(study, runs: dict[str, dict[str, Any]], diagnostics: dict[str, Any]) -> dict[str, Any]:
    """Write results.csv, results.json and report.html into the study directory; return the summary."""
    out = Path(study.out)
    rows = summarize_cells(study, runs)
    metric = rows[0]["metric"] if rows else get_task(study.task).monitor
    advice = recommend(study, rows, diagnostics)
    summary = {"task": study.task, "task_options": study.task_options,
               "budget": (study.budget.describe() if study.budget else "the task's default budget"),
               "cells": rows, "runs": runs, "recommendation": advice}
    write_json_atomic(out / "results.json", summary)
    with open(out / "results.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=[k for k, _ in COLUMNS] + ["metric", "threshold"])
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r[k] for k in writer.fieldnames})
    figures = []
    if runs:
        figures.append(("Learning curves", plot_learning_curves(study, runs, metric)))
        figures.append((f"Test {metric} against model size", plot_metric_vs(rows, "params", "parameters", metric)))
        figures.append((f"Test {metric} against training time",
                        plot_metric_vs(rows, "train_seconds", "training time (seconds)", metric)))
    if diagnostics:
        figures.append(("Gradient flow (the vanishing gradient made visible)", plot_gradient_flow(diagnostics)))
        gates = plot_gates(diagnostics)
        if gates:
            figures.append(("Gate saturation", gates))
    (out / "report.html").write_text(render_html(study, rows, advice, figures, metric), encoding="utf-8")
    summary["report"] = str(out / "report.html")
    return summary


def render_html(study, rows, advice, figures, metric) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(label.format(metric=metric))}</th>" for _, label in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{esc(_fmt(r[k]))}</td>" for k, _ in COLUMNS) + "</tr>" for r in rows)
    opts = ", ".join(f"{k}={v}" for k, v in study.task_options.items()) or "defaults"
    figs = "".join(f'<figure><img alt="{esc(t)}" src="data:image/png;base64,{b}"><figcaption>{esc(t)}'
                   "</figcaption></figure>" for t, b in figures)
    budget = study.budget.describe() if study.budget else "the task's default budget"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rnnlab compare: {esc(study.task)}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto; max-width: 72rem;
       color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }} .sub {{ color: #666; margin-top: 0; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .35rem .6rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }} th {{ background: #f4f6f8; }}
.advice {{ background: #f0f7ff; border-left: 4px solid #3b82f6; padding: .6rem 1rem; }}
.figs {{ display: flex; flex-wrap: wrap; gap: 1.2rem; }}
figure {{ margin: 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; font-size: .9rem; }}
</style></head><body>
<h1>Which recurrent cell for <code>{esc(study.task)}</code>?</h1>
<p class="sub">task options: {esc(opts)} · {len(study.cells)} cells × {study.seeds} seeds · {esc(budget)}</p>
<h2>Recommendation</h2>
<div class="advice">{"".join(f"<p>{esc(a)}</p>" for a in advice)}</div>
<h2>Summary</h2>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
<h2>Plots</h2>
<div class="figs">{figs}</div>
</body></html>
"""


def write_diagnostics(out: str | Path, diagnostics: dict[str, Any]) -> list[Path]:
    """``gradient_flow.png`` (and ``gates.png`` if any cell has gates) in ``out``: what ``rnnlab diagnose``
    writes beside ``diagnostics.json``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, image in (("gradient_flow.png", plot_gradient_flow(diagnostics)), ("gates.png", plot_gates(diagnostics))):
        if image is not None:
            (out / name).write_bytes(base64.b64decode(image))
            written.append(out / name)
    return written


def list_runs(directory: str | Path) -> list[dict[str, Any]]:
    """The finished runs of a study directory, for ``rnnlab runs``."""
    from rnnlab.study.store import ResultsStore

    return ResultsStore.read(directory)


def load_summary(directory: str | Path) -> dict[str, Any]:
    return json.loads((Path(directory) / "results.json").read_text())
