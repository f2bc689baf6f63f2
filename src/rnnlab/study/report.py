"""The study report: ``results.csv``, ``results.json`` and ``report.html``, one self-contained file with the
plots embedded as PNG. It reads only the results store (runs, with their validation curves), the tuning
summaries and ``diagnostics.json``; the numbers come from :mod:`rnnlab.study.stats`.

``results.json`` (format 2)::

    format            2
    budget            the final runs' budget, in words
    tune              tuning trials per contestant (0: the tasks' defaults)
    test, alpha       the pairwise test (welch | mannwhitney) and the significance level
    tasks             {task: per-task summary}:
      task_options      the task's options
      metric, higher_is_better     the test metric (test_<metric> of the runs) and its direction
      cells             one row per cell, final runs on the whole training split:
                        cell, metric, mean, std, ci_low, ci_high (95% bootstrap CI of the mean), seeds,
                        values (per seed), params, hidden_size, train_seconds (mean), ms_per_step,
                        peak_rss_mb, steps_to_threshold, reached_threshold, baseline, beats_baseline,
                        best_params (the tuned configuration; {} without tuning), pareto (on the
                        metric-vs-training-time front)
      pairwise          every pair of cells: a, b, mean_a, mean_b, n_a, n_b, test, statistic, p, p_holm
                        (Holm-adjusted over the task's pairs), significant, better
      pick              the recommended cell; recommendation: the sentences
      tuning            {cell: trials, complete, pruned, failed, best_trial, best_valid, best_params, history,
                        importance ({param: fANOVA importance} or {"unavailable": why})}
      scaling           {cell: {fraction: {mean, ci_low, ci_high, seeds}}} (with --data-fractions)
    cross_task        (several tasks) tasks, cells, ranks {task: {cell: rank}}, mean_ranks,
                      friedman {statistic, p}, nemenyi {a: {b: p}}, critical_difference, alpha
    recommendation    every task's sentences, then the cross-task ones
    runs              {run_id: the run's results.json plus label, kind (trial | final), fraction, valid_curve,
                      peak_rss_mb, run_dir}
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

from rnnlab.study import stats  # noqa: E402
from rnnlab.tasks import get_task  # noqa: E402
from rnnlab.train.rundir import write_json_atomic  # noqa: E402

COLORS = plt.rcParams["axes.prop_cycle"].by_key()["color"]
FORMAT = 2


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


def steps_to_reach(curve: list[list[float]], threshold: float, higher_is_better: bool) -> int | None:
    """The first validation step of ``curve`` (``[[step, value], ...]``) that reached ``threshold``, or None."""
    for step, value in curve:
        if value is not None and ((value >= threshold) if higher_is_better else (value <= threshold)):
            return int(step)
    return None


def final_runs(runs: dict[str, dict[str, Any]], task: str, label: str,
               fraction: float = 1.0) -> list[dict[str, Any]]:
    """The final runs of one cell on one task (and training fraction), by seed."""
    mine = [r for r in runs.values() if r.get("kind", "final") == "final" and r.get("task_key", r["task"]) == task
            and r.get("label", r["cell"]) == label and float(r.get("fraction", 1.0)) == fraction]
    return sorted(mine, key=lambda r: r["seed"])


def summarize_cells(study, task: str, runs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per cell of ``task``: metric mean, std and bootstrap CI over seeds, size, speed, memory, steps
    to threshold, baseline, tuned configuration."""
    task_cls = get_task(task)
    higher = task_cls.higher_is_better
    rows = []
    for spec in study.cells:
        mine = final_runs(runs, task, spec.label)
        if not mine:
            continue
        monitor = mine[0]["monitor"]
        key = f"test_{monitor}"
        values = [r["metrics"].get(key) for r in mine]
        mean, std = mean_std(values)
        ci_low, ci_high = stats.bootstrap_ci(values)
        baseline = mine[0]["baseline"].get(key, float("nan"))
        threshold = threshold_for(baseline, higher)
        reached = [steps_to_reach(r.get("valid_curve", []), threshold, higher) for r in mine]
        hit = [s for s in reached if s is not None]
        beats = [(v > baseline) if higher else (v < baseline) for v in values if v is not None]
        rows.append({
            "cell": spec.label, "metric": monitor, "mean": mean, "std": std, "ci_low": ci_low, "ci_high": ci_high,
            "seeds": len(mine), "values": values,
            "params": mine[0]["params"], "hidden_size": mine[0].get("hidden_size"),
            "train_seconds": statistics.fmean(r["train_seconds"] for r in mine),
            "ms_per_step": statistics.fmean(1000 * r["train_seconds"] / max(1, r["steps"]) for r in mine),
            "peak_rss_mb": max(r.get("peak_rss_mb", float("nan")) for r in mine),
            "threshold": threshold,
            "steps_to_threshold": statistics.fmean(hit) if hit else None,
            "reached_threshold": f"{len(hit)}/{len(mine)}",
            "baseline": baseline,
            "beats_baseline": f"{sum(beats)}/{len(mine)}",
            "best_params": mine[0].get("tuned", {}),  # the configuration the final runs were given
        })
    _mark_pareto(rows, higher)
    return rows


def _mark_pareto(rows: list[dict[str, Any]], higher: bool) -> None:
    """``pareto``: no other cell is at least as good on the metric and as fast to train, and better on one."""
    def better_or_equal(a, b):
        as_good = a["mean"] >= b["mean"] if higher else a["mean"] <= b["mean"]
        return as_good and a["train_seconds"] <= b["train_seconds"]

    for r in rows:
        r["pareto"] = not any(o is not r and better_or_equal(o, r) and
                              (o["mean"] != r["mean"] or o["train_seconds"] != r["train_seconds"]) for o in rows)


def scaling(study, task: str, runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{cell: {fraction: {mean, ci_low, ci_high, seeds}}}`` of the test metric per training fraction."""
    fractions = sorted(set(study.data_fractions) | {1.0})
    if len(fractions) < 2:
        return {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for spec in study.cells:
        per = {}
        for f in fractions:
            mine = final_runs(runs, task, spec.label, f)
            if not mine:
                continue
            values = [r["metrics"].get(f"test_{r['monitor']}") for r in mine]
            lo, hi = stats.bootstrap_ci(values)
            per[f"{f:g}"] = {"mean": mean_std(values)[0], "ci_low": lo, "ci_high": hi, "seeds": len(mine)}
        if per:
            out[spec.label] = per
    return out


def extra_sentences(task: str, rows: list[dict[str, Any]], diagnostics: dict[str, Any]) -> list[str]:
    """What the tests do not say: who solved the task, who did not beat the trivial baseline, gradient reach."""
    higher = get_task(task).higher_is_better
    out = []
    solving = [r for r in rows if int(r["reached_threshold"].split("/")[0]) > 0]
    failing = [r for r in rows if not r["beats_baseline"].startswith(str(r["seeds"]))]
    if solving:
        out.append("Reached the 'solved' level (" + ("≥" if higher else "≤") + f" {rows[0]['threshold']:.3g}): "
                   + ", ".join(f"{r['cell']} in {r['reached_threshold']} seeds" for r in solving) + ".")
    if failing:
        out.append("Did not beat the trivial baseline in every seed: "
                   + ", ".join(f"{r['cell']} ({r['mean']:.4g}, baseline {r['baseline']:.4g})" for r in failing) + ".")
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
    """``||dL/ds_0|| / ||dL/ds_{T-1}||`` of the carried state ``s`` (``h`` for most cells): how much of the gradient
    at the end of a sequence reaches its start."""
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


def plot_learning_curves(study, task: str, runs, metric: str, baseline: float | None) -> str:
    """Validation metric against step per cell: the mean over seeds, and a band from the lowest to the highest."""
    import numpy as np

    fig, ax = plt.subplots(figsize=(6.4, 4))
    for i, spec in enumerate(study.cells):
        curves = [dict((int(s), v) for s, v in r.get("valid_curve", [])) for r in final_runs(runs, task, spec.label)]
        curves = [c for c in curves if c]
        if not curves:
            continue
        steps = sorted(set().union(*curves))
        table = np.array([[c.get(s, np.nan) for s in steps] for c in curves], dtype=float)  # (seeds, evals)
        color = COLORS[i % len(COLORS)]
        with np.errstate(all="ignore"):
            ax.plot(steps, np.nanmean(table, axis=0), color=color, label=f"{spec.label} ({len(curves)} seeds)")
            if len(curves) > 1:
                ax.fill_between(steps, np.nanmin(table, axis=0), np.nanmax(table, axis=0), color=color, alpha=0.2)
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label="baseline")
    ax.set_xlabel("training step")
    ax.set_ylabel(f"validation {metric}")
    if _log_scale(metric):
        ax.set_yscale("log")
    ax.set_title(f"{task}: learning curves (mean over seeds, band: min to max)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def _ci_errors(rows):
    lows = [max(0.0, r["mean"] - r["ci_low"]) if math.isfinite(r["ci_low"]) else 0.0 for r in rows]
    highs = [max(0.0, r["ci_high"] - r["mean"]) if math.isfinite(r["ci_high"]) else 0.0 for r in rows]
    return lows, highs


def plot_metric_vs(rows, x_key: str, x_label: str, metric: str, title: str, pareto: bool = False) -> str:
    fig, ax = plt.subplots(figsize=(5.4, 3.9))
    for i, r in enumerate(rows):
        lo, hi = _ci_errors([r])
        ax.errorbar(r[x_key], r["mean"], yerr=[lo, hi], fmt="o", capsize=4, color=COLORS[i % len(COLORS)],
                    label=r["cell"] + (" (Pareto front)" if pareto and r.get("pareto") else ""))
    if pareto:
        front = sorted((r for r in rows if r.get("pareto")), key=lambda r: r[x_key])
        if len(front) > 1:
            ax.plot([r[x_key] for r in front], [r["mean"] for r in front], "k:", linewidth=1)
    if rows:
        ax.axhline(rows[0]["baseline"], color="gray", linestyle="--", label="baseline")
    if _log_scale(metric) and all(r["mean"] > 0 for r in rows):
        ax.set_yscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"test {metric} (mean, 95% CI)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_importance(task: str, tuning: dict[str, Any]) -> str | None:
    """fANOVA importance of each hyperparameter, one group of bars per cell."""
    per_cell = {cell: t["importance"] for cell, t in tuning.items() if "unavailable" not in t["importance"]}
    if not per_cell:
        return None
    params = sorted({p for imp in per_cell.values() for p in imp})
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(per_cell) * max(1, len(params)) * 0.45 + 2), 3.6))
    width = 0.8 / max(1, len(params))
    for j, p in enumerate(params):
        xs = [i + j * width for i in range(len(per_cell))]
        ax.bar(xs, [imp.get(p, 0.0) for imp in per_cell.values()], width, label=p, color=COLORS[j % len(COLORS)])
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(per_cell))], list(per_cell), rotation=30, ha="right")
    ax.set_ylabel("importance (fANOVA share of variance)")
    ax.set_title(f"{task}: hyperparameter importance for the validation metric", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)


def plot_scaling(task: str, scale: dict[str, Any], metric: str) -> str:
    fig, ax = plt.subplots(figsize=(5.4, 3.9))
    for i, (cell, per) in enumerate(scale.items()):
        xs = [float(f) for f in per]
        means = [v["mean"] for v in per.values()]
        lows = [v["mean"] - v["ci_low"] if math.isfinite(v["ci_low"]) else 0.0 for v in per.values()]
        highs = [v["ci_high"] - v["mean"] if math.isfinite(v["ci_high"]) else 0.0 for v in per.values()]
        ax.errorbar(xs, means, yerr=[lows, highs], marker="o", capsize=3, color=COLORS[i % len(COLORS)], label=cell)
    ax.set_xscale("log")
    if _log_scale(metric):
        ax.set_yscale("log")
    ax.set_xlabel("share of the training split (nested subsets)")
    ax.set_ylabel(f"test {metric} (mean, 95% CI)")
    ax.set_title(f"{task}: test {metric} against training-set size", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _png(fig)


def plot_critical_difference(cross: dict[str, Any]) -> str | None:
    """Demšar's critical-difference diagram (scikit-posthocs): mean ranks over tasks; cells joined by a bar are
    not significantly different (Nemenyi)."""
    if cross.get("nemenyi") is None:
        return None
    import pandas as pd
    import scikit_posthocs as sp

    cells = cross["cells"]
    sig = pd.DataFrame([[cross["nemenyi"][a][b] for b in cells] for a in cells], index=cells, columns=cells)
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(cells) + 1.2))
    sp.critical_difference_diagram(pd.Series(cross["mean_ranks"]), sig, ax=ax, alpha=cross["alpha"])
    ax.set_title(f"Mean rank over {len(cross['tasks'])} tasks (1 = best); Friedman p="
                 f"{cross['friedman']['p']:.3g}, Nemenyi CD={cross['critical_difference']:.2f}", fontsize=9)
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
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items()) or "defaults"
    return str(value)


COLUMNS = [("cell", "cell"), ("mean", "test {metric} (mean)"), ("ci_low", "95% CI low"), ("ci_high", "95% CI high"),
           ("std", "± std"), ("seeds", "seeds"), ("params", "parameters"), ("hidden_size", "hidden size"),
           ("train_seconds", "train time (s)"), ("ms_per_step", "ms / step"), ("peak_rss_mb", "peak memory (MB)"),
           ("steps_to_threshold", "steps to solve"), ("reached_threshold", "solved (seeds)"),
           ("baseline", "baseline"), ("beats_baseline", "beats baseline"), ("pareto", "Pareto"),
           ("best_params", "tuned configuration")]


def summarize_task(study, task, runs, diagnostics, tuning, importance) -> dict[str, Any]:
    task_cls = get_task(task.name)
    higher = task_cls.higher_is_better
    rows = summarize_cells(study, task.name, runs)
    pairs = stats.pairwise_tests({r["cell"]: r["values"] for r in rows}, higher, study.test, study.alpha)
    sentences, pick = stats.verdicts(rows, pairs, higher, study.alpha)
    first = study.tasks[0].name == task.name
    sentences += extra_sentences(task.name, rows, diagnostics if first else {})
    mine = {}
    for spec in study.cells:
        key = f"{task.name}/{spec.label}"
        if key in tuning:
            mine[spec.label] = {**tuning[key], "importance": importance.get(key, {})}
    return {"task_options": get_task(task.name).resolve_options(task.options), "metric": task_cls.monitor,
            "higher_is_better": higher, "cells": rows, "pairwise": pairs, "pick": pick,
            "recommendation": sentences, "tuning": mine, "scaling": scaling(study, task.name, runs)}


def cross_task(study, per_task: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """Ranks of the cells over the tasks, with the Friedman and Nemenyi tests (several tasks only)."""
    if len(per_task) < 2:
        return None
    table = {t: {r["cell"]: r["mean"] for r in s["cells"] if math.isfinite(r["mean"])} for t, s in per_task.items()}
    cross = stats.friedman_nemenyi(table, {t: s["higher_is_better"] for t, s in per_task.items()}, study.alpha)
    order = sorted(cross["mean_ranks"], key=cross["mean_ranks"].get)
    words = [f"Across {len(cross['tasks'])} tasks, mean rank (1 = best): "
             + ", ".join(f"{c} {cross['mean_ranks'][c]:.2f}" for c in order) + "."]
    if cross["friedman"] is None:
        words.append("The Friedman test needs 3 cells or more and 2 tasks or more.")
    else:
        f = cross["friedman"]
        verdict = "the ranks differ" if f["p"] < study.alpha else "no evidence that the ranks differ"
        words.append(f"Friedman test: p={f['p']:.3g} ({verdict} at alpha {study.alpha:g}); Nemenyi critical "
                     f"difference {cross['critical_difference']:.2f}.")
        sig = [(a, b) for i, a in enumerate(order) for b in order[i + 1:] if cross["nemenyi"][a][b] < study.alpha]
        if sig:
            words.append("Significantly different mean ranks (Nemenyi): "
                         + "; ".join(f"{a} better than {b} (p={cross['nemenyi'][a][b]:.3g})" for a, b in sig) + ".")
        else:
            words.append("No pair of cells differs significantly in mean rank (Nemenyi).")
    cross["recommendation"] = words
    return cross


def write_report(study, runs: dict[str, dict[str, Any]], diagnostics: dict[str, Any],
                 tuning: dict[str, Any] | None = None, importance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write results.csv, results.json and report.html into the study directory; return the summary."""
    out = Path(study.out)
    tuning, importance = tuning or {}, importance or {}
    per_task = {t.name: summarize_task(study, t, runs, diagnostics, tuning, importance) for t in study.tasks}
    cross = cross_task(study, per_task)
    advice = [f"{t}: {line}" if len(per_task) > 1 else line
              for t, s in per_task.items() for line in s["recommendation"]]
    if cross:
        advice += cross["recommendation"]
    budget = study.budget.describe() if study.budget else "the task's default budget"
    summary = {"format": FORMAT, "budget": budget, "tune": study.tune, "test": study.test, "alpha": study.alpha,
               "tasks": per_task, "cross_task": cross, "recommendation": advice, "runs": runs}
    write_json_atomic(out / "results.json", summary)
    with open(out / "results.csv", "w", newline="") as fh:
        fields = ["task"] + [k for k, _ in COLUMNS if k != "best_params"] + ["metric", "threshold"]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for t, s in per_task.items():
            for r in s["cells"]:
                writer.writerow({"task": t, **{k: r[k] for k in fields if k != "task"}})
    sections = []
    for t, s in per_task.items():
        rows, metric = s["cells"], s["metric"]
        figures = []
        baseline = rows[0]["baseline"] if rows else None
        if rows:
            figures.append(("Learning curves", plot_learning_curves(study, t, runs, metric, baseline)))
            figures.append((f"Test {metric} against model size",
                            plot_metric_vs(rows, "params", "parameters", metric, f"{t}: test {metric} against size")))
            figures.append((f"Test {metric} against training time (Pareto front)",
                            plot_metric_vs(rows, "train_seconds", "training time per run (seconds)", metric,
                                           f"{t}: quality against cost", pareto=True)))
        imp = plot_importance(t, s["tuning"]) if s["tuning"] else None
        if imp:
            figures.append(("Hyperparameter importance (fANOVA)", imp))
        if s["scaling"]:
            figures.append(("Data-size scaling", plot_scaling(t, s["scaling"], metric)))
        if study.tasks[0].name == t and diagnostics:
            figures.append(("Gradient flow (the vanishing gradient made visible)", plot_gradient_flow(diagnostics)))
            gates = plot_gates(diagnostics)
            if gates:
                figures.append(("Gate saturation", gates))
        sections.append((t, s, figures))
    cd = plot_critical_difference(cross) if cross else None
    if cd:
        (out / "critical_difference.png").write_bytes(base64.b64decode(cd))
    (out / "report.html").write_text(render_html(study, sections, cross, cd, advice), encoding="utf-8")
    summary["report"] = str(out / "report.html")
    return summary


def _table(head: list[str], body: list[list[Any]]) -> str:
    esc = html.escape
    return ("<table><thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join("<tr>" + "".join(f"<td>{esc(_fmt(v))}</td>" for v in row) + "</tr>" for row in body)
            + "</tbody></table>")


def render_html(study, sections, cross, cd, advice) -> str:
    esc = html.escape
    parts = []
    for t, s, figures in sections:
        metric = s["metric"]
        opts = ", ".join(f"{k}={v}" for k, v in s["task_options"].items() if v not in ("", None)) or "defaults"
        cells = _table([label.format(metric=metric) for _, label in COLUMNS],
                       [[r[k] for k, _ in COLUMNS] for r in s["cells"]])
        pairs = _table(["cell A", "cell B", "mean A", "mean B", "test", "statistic", "p", "p (Holm)", "significant",
                        "better"], [[p["a"], p["b"], p["mean_a"], p["mean_b"], p["test"], p["statistic"], p["p"],
                                     p["p_holm"], p["significant"], p["better"]] for p in s["pairwise"]])
        tuning = ""
        if s["tuning"]:
            tuning = "<h3>Tuning</h3>" + _table(
                ["cell", "trials", "finished", "pruned", "failed", "best trial", f"best valid {metric}",
                 "best configuration", "importance (fANOVA)"],
                [[c, v["trials"], v["complete"], v["pruned"], v["failed"], v["best_trial"], v["best_valid"],
                  v["best_params"], v["importance"]] for c, v in s["tuning"].items()])
        figs = "".join(f'<figure><img alt="{esc(title)}" src="data:image/png;base64,{b}"><figcaption>{esc(title)}'
                       "</figcaption></figure>" for title, b in figures)
        parts.append(f"""<h2>Task <code>{esc(t)}</code></h2>
<p class="sub">options: {esc(opts)} · test metric {esc(metric)} ({'higher' if s['higher_is_better'] else 'lower'}
is better)</p>
<div class="advice">{"".join(f"<p>{esc(a)}</p>" for a in s["recommendation"])}</div>
<h3>Summary (final runs, test split)</h3>{cells}
<h3>Pairwise tests across seeds</h3>{pairs}{tuning}
<h3>Plots</h3><div class="figs">{figs}</div>""")
    if cross:
        ranks = _table(["task"] + cross["cells"], [[t] + [cross["ranks"][t][c] for c in cross["cells"]]
                                                   for t in cross["tasks"]]
                       + [["mean rank"] + [cross["mean_ranks"][c] for c in cross["cells"]]])
        img = (f'<figure><img alt="critical-difference diagram" src="data:image/png;base64,{cd}"><figcaption>'
               "Critical-difference diagram (Nemenyi)</figcaption></figure>") if cd else ""
        parts.append(f"""<h2>Across tasks</h2>
<div class="advice">{"".join(f"<p>{esc(a)}</p>" for a in cross["recommendation"])}</div>{ranks}{img}""")
    tasks = ", ".join(t.name for t in study.tasks)
    budget = study.budget.describe() if study.budget else "the task's default budget"
    tune = (f"{study.tune} tuning trials per cell ({study.sampler}, pruned on validation)" if study.tune
            else "no tuning (the tasks' defaults)")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>rnnlab compare: {esc(tasks)}</title>
<style>
body {{ font-family: system-ui, -apple-system, Segoe UI, sans-serif; margin: 2rem auto; max-width: 76rem;
       color: #222; padding: 0 1rem; }}
h1 {{ font-size: 1.6rem; margin-bottom: .2rem; }} .sub {{ color: #666; margin-top: 0; }}
table {{ border-collapse: collapse; margin: 1rem 0; font-size: .85rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: .3rem .5rem; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }} th {{ background: #f4f6f8; }}
.advice {{ background: #f0f7ff; border-left: 4px solid #3b82f6; padding: .6rem 1rem; }}
.figs {{ display: flex; flex-wrap: wrap; gap: 1.2rem; }}
figure {{ margin: 0; }} img {{ max-width: 100%; }} figcaption {{ color: #555; font-size: .9rem; }}
</style></head><body>
<h1>Which recurrent cell for <code>{esc(tasks)}</code>?</h1>
<p class="sub">{len(study.cells)} cells × {study.seeds} seeds · {esc(budget)} · {esc(tune)} · {esc(study.test)} tests,
Holm-adjusted, alpha {study.alpha:g}</p>
<h2>Recommendation</h2>
<div class="advice">{"".join(f"<p>{esc(a)}</p>" for a in advice)}</div>
{"".join(parts)}
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
