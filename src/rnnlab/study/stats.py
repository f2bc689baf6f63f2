"""The statistics of a study, apart from the report that shows them.

- :func:`bootstrap_ci`: a 95% percentile-bootstrap confidence interval of a cell's mean test metric over its
  seeds (``scipy.stats.bootstrap``). With 3 seeds it is narrow and rough: it says how far the seeds spread,
  not more.
- :func:`pairwise_tests`: every pair of cells of one task, across seeds: Welch's t-test (default; unequal
  variances) or the Mann-Whitney U test (``scipy.stats``), p-values adjusted for the number of pairs by
  Holm's step-down method (``statsmodels``). With ``n`` seeds per cell the smallest two-sided p of
  Mann-Whitney is ``2 / C(2n, n)`` (0.1 at ``n = 3``, 0.008 at ``n = 5``): it needs 4 seeds or more to
  ever reach 0.05.
- :func:`friedman_nemenyi`: several tasks: each task ranks the cells by mean (1 = best), the Friedman test
  asks whether the mean ranks differ at all, the Nemenyi post-hoc test (``scikit-posthocs``) which pairs
  differ, and the critical difference ``CD = q_alpha sqrt(k (k+1) / (6 N))`` (Demšar 2006) is the gap in
  mean rank that is significant.
- :func:`verdicts`: the recommendation in words, derived from the pairwise tests only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

import numpy as np

__all__ = ["ALPHA", "TESTS", "bootstrap_ci", "friedman_nemenyi", "pairwise_tests", "verdicts"]

ALPHA = 0.05
TESTS = ("welch", "mannwhitney")


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def bootstrap_ci(values: Sequence[float | None], confidence: float = 0.95, resamples: int = 9999,
                 seed: int = 0) -> tuple[float, float]:
    """The percentile-bootstrap interval of the mean of ``values``; ``(nan, nan)`` below 2 values, the value
    itself when all are equal."""
    from scipy import stats

    data = np.asarray(_finite(values))
    if len(data) < 2:
        return float("nan"), float("nan")
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's warnings about degenerate resamples of tiny samples
        result = stats.bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=resamples,
                                 method="percentile", rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _two_sample(a: list[float], b: list[float], test: str) -> tuple[float, float]:
    """``(statistic, two-sided p)`` of one pair; exact answers where scipy has none (no spread at all)."""
    from scipy import stats

    if test == "mannwhitney":
        result = stats.mannwhitneyu(a, b, alternative="two-sided")
        return float(result.statistic), float(result.pvalue)
    if np.var(a) == 0 and np.var(b) == 0:  # Welch's t is 0/0 or x/0: equal means are no evidence, else certain
        same = math.isclose(np.mean(a), np.mean(b), rel_tol=0, abs_tol=0)
        return (0.0, 1.0) if same else (math.copysign(math.inf, np.mean(a) - np.mean(b)), 0.0)
    result = stats.ttest_ind(a, b, equal_var=False)
    return float(result.statistic), float(result.pvalue)


def pairwise_tests(samples: Mapping[str, Sequence[float | None]], higher_is_better: bool, test: str = "welch",
                   alpha: float = ALPHA) -> list[dict[str, Any]]:
    """Every pair of ``samples`` (label -> test metric per seed), in the order given.

    Returns one dict per pair: ``a``, ``b``, ``mean_a``, ``mean_b``, ``n_a``, ``n_b``, ``test``, ``statistic``,
    ``p`` (raw), ``p_holm`` (adjusted over all pairs), ``significant`` (``p_holm < alpha``) and ``better``
    (the label with the better mean, or None when they are equal). Pairs with fewer than 2 values on a side
    get ``p = None`` and take no part in the adjustment.
    """
    if test not in TESTS:
        raise ValueError(f"expected a test among {', '.join(TESTS)}, got {test!r}")
    from statsmodels.stats.multitest import multipletests

    data = {k: _finite(v) for k, v in samples.items()}
    rows = []
    for a, b in combinations(data, 2):
        xa, xb = data[a], data[b]
        ma = float(np.mean(xa)) if xa else float("nan")
        mb = float(np.mean(xb)) if xb else float("nan")
        statistic, p = _two_sample(xa, xb, test) if min(len(xa), len(xb)) >= 2 else (None, None)
        better = None
        if math.isfinite(ma) and math.isfinite(mb) and ma != mb:
            better = a if (ma > mb) == higher_is_better else b
        rows.append({"a": a, "b": b, "mean_a": ma, "mean_b": mb, "n_a": len(xa), "n_b": len(xb), "test": test,
                     "statistic": statistic, "p": p, "p_holm": None, "significant": False, "better": better})
    tested = [r for r in rows if r["p"] is not None]
    if tested:
        _, adjusted, _, _ = multipletests([r["p"] for r in tested], alpha=alpha, method="holm")
        for r, p_holm in zip(tested, adjusted, strict=True):
            r["p_holm"] = float(p_holm)
            r["significant"] = bool(p_holm < alpha)
    return rows


def _pair(pairs: list[dict[str, Any]], a: str, b: str) -> dict[str, Any] | None:
    return next((p for p in pairs if {p["a"], p["b"]} == {a, b}), None)


def _p(value: float) -> str:
    return "p<0.001" if value < 0.001 else f"p={value:.3f}"


def verdicts(rows: Sequence[Mapping[str, Any]], pairs: list[dict[str, Any]], higher_is_better: bool,
             alpha: float = ALPHA) -> tuple[list[str], str | None]:
    """The recommendation in words, from the pairwise tests: ``(sentences, the cell to pick)``.

    ``rows`` are the cells' summaries (``cell``, ``mean``, ``params``, ``ms_per_step``). The best cell by mean
    is compared with every other one; the cells not significantly different from it are tied, and the
    cheapest of them (fewest parameters, then fastest step) is the pick.
    """
    rows = [r for r in rows if r["mean"] is not None and math.isfinite(r["mean"])]
    if not rows:
        return ["No run finished, so there is nothing to recommend yet."], None
    ranked = sorted(rows, key=lambda r: -r["mean"] if higher_is_better else r["mean"])
    best = ranked[0]
    if len(rows) == 1:
        return [f"{best['cell']} is the only cell with results."], best["cell"]
    out, tied, untested = [], [best], []
    for other in ranked[1:]:
        pair = _pair(pairs, best["cell"], other["cell"])
        if pair is None or pair["p_holm"] is None:
            untested.append(other)
            tied.append(other)
        elif pair["significant"]:
            out.append(f"{best['cell']} is significantly better than {other['cell']} ({pair['test']}, "
                       f"{_p(pair['p_holm'])} Holm-adjusted; {best['mean']:.4g} vs {other['mean']:.4g}).")
        else:
            tied.append(other)
            out.append(f"No significant difference between {best['cell']} and {other['cell']} "
                       f"({pair['test']}, {_p(pair['p_holm'])} Holm-adjusted, alpha {alpha:g}).")
    if untested:
        out.append(f"{', '.join(r['cell'] for r in untested)}: fewer than 2 seeds on a side, so no test; "
                   "rerun with --seeds 3 or more.")
    for a, b in combinations([r["cell"] for r in ranked[1:]], 2):  # the other significant pairs
        pair = _pair(pairs, a, b)
        if pair is not None and pair["significant"]:
            loser = b if pair["better"] == a else a
            out.append(f"{pair['better']} is significantly better than {loser} ({_p(pair['p_holm'])}).")
    if len(tied) > 1:
        pick = min(tied, key=lambda r: (r["params"], r.get("ms_per_step") or 0.0))
        out.append(f"Pick {pick['cell']}: it is the cheapest of {', '.join(r['cell'] for r in tied)}, "
                   f"which the tests do not tell apart ({pick['params']:,} parameters, "
                   f"{pick.get('ms_per_step') or float('nan'):.1f} ms per step).")
    else:
        pick = best
        out.append(f"Pick {best['cell']}: significantly better than every other cell.")
    return out, pick["cell"]


def critical_difference(k: int, n: int, alpha: float = ALPHA) -> float:
    """Nemenyi's critical difference of mean ranks for ``k`` cells over ``n`` tasks (Demšar 2006, eq. 5)."""
    from scipy.stats import studentized_range

    q = studentized_range.ppf(1 - alpha, k, np.inf) / math.sqrt(2)
    return float(q * math.sqrt(k * (k + 1) / (6 * n)))


def friedman_nemenyi(table: Mapping[str, Mapping[str, float]], higher_is_better: Mapping[str, bool],
                     alpha: float = ALPHA) -> dict[str, Any]:
    """Ranks, Friedman test, Nemenyi p-values and critical difference over several tasks.

    Args:
        table: ``{task: {cell: mean test metric}}``; only cells present on every task take part.
        higher_is_better: ``{task: direction of its metric}``.

    Returns:
        ``tasks``, ``cells``, ``ranks`` (``{task: {cell: rank}}``, 1 = best, ties averaged), ``mean_ranks``,
        ``friedman`` (``{"statistic", "p"}``; None below 3 cells or 2 tasks), ``nemenyi`` (``{a: {b: p}}``),
        ``critical_difference`` and ``alpha``.
    """
    import pandas as pd
    from scipy import stats

    tasks = list(table)
    cells = [c for c in next(iter(table.values()), {}) if all(c in table[t] for t in tasks)]
    # lower is better in every column of `oriented`, so rank 1 is the best cell of a task
    oriented = pd.DataFrame([[(-1 if higher_is_better[t] else 1) * table[t][c] for c in cells] for t in tasks],
                            index=tasks, columns=cells, dtype=float)
    ranks = oriented.rank(axis=1, method="average")
    out: dict[str, Any] = {
        "tasks": tasks, "cells": cells, "alpha": alpha,
        "ranks": {t: {c: float(ranks.loc[t, c]) for c in cells} for t in tasks},
        "mean_ranks": {c: float(ranks[c].mean()) for c in cells},
        "friedman": None, "nemenyi": None, "critical_difference": None,
    }
    if len(cells) < 3 or len(tasks) < 2:
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # identical ranks in every task: 0/0
        result = stats.friedmanchisquare(*[oriented[c].to_numpy() for c in cells])
    import scikit_posthocs as sp

    nemenyi = sp.posthoc_nemenyi_friedman(oriented.to_numpy())
    nemenyi.index, nemenyi.columns = cells, cells
    out["friedman"] = {"statistic": float(result.statistic),
                       "p": float(result.pvalue) if math.isfinite(result.pvalue) else 1.0}
    out["nemenyi"] = {a: {b: float(nemenyi.loc[a, b]) for b in cells} for a in cells}
    out["critical_difference"] = critical_difference(len(cells), len(tasks), alpha)
    return out
