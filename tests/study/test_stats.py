"""The statistics of a study: intervals, pairwise tests with Holm's adjustment, Friedman/Nemenyi, verdicts."""

import math

import numpy as np
import pytest

from rnnlab.study.stats import bootstrap_ci, critical_difference, friedman_nemenyi, pairwise_tests, verdicts


def test_bootstrap_ci_brackets_the_mean_and_is_reproducible():
    values = [0.80, 0.84, 0.79, 0.83, 0.81]
    low, high = bootstrap_ci(values)
    assert low < np.mean(values) < high
    assert (low, high) == bootstrap_ci(values)
    assert min(values) <= low and high <= max(values)  # a percentile interval of the mean stays in the data
    wide = bootstrap_ci([0.5, 0.84, 0.79, 0.83, 1.1])
    assert wide[1] - wide[0] > high - low
    assert bootstrap_ci([0.3, 0.3, 0.3]) == (0.3, 0.3)
    assert all(math.isnan(v) for v in bootstrap_ci([0.3]))
    assert all(math.isnan(v) for v in bootstrap_ci([0.3, None, float("nan")]))


def test_pairwise_tests_holm_and_direction():
    rng = np.random.default_rng(0)
    same_a, same_b = rng.normal(1.0, 0.1, 5), rng.normal(1.0, 0.1, 5)
    worse = rng.normal(2.0, 0.1, 5)
    pairs = pairwise_tests({"a": same_a, "b": same_b, "c": worse}, higher_is_better=False)
    by = {(p["a"], p["b"]): p for p in pairs}
    assert list(by) == [("a", "b"), ("a", "c"), ("b", "c")]
    assert not by["a", "b"]["significant"] and by["a", "b"]["p_holm"] > 0.05
    assert by["a", "c"]["significant"] and by["a", "c"]["better"] == "a"  # lower mse is better
    assert by["b", "c"]["significant"] and by["b", "c"]["better"] == "b"
    # Holm: the smallest p is multiplied by the number of pairs; adjusted values never fall below the raw ones
    smallest = min(pairs, key=lambda p: p["p"])
    assert smallest["p_holm"] == pytest.approx(min(1.0, 3 * smallest["p"]))
    assert all(p["p_holm"] >= p["p"] for p in pairs)
    flipped = pairwise_tests({"a": same_a, "c": worse}, higher_is_better=True)
    assert flipped[0]["better"] == "c"


def test_mann_whitney_cannot_reach_five_percent_with_three_seeds():
    """The documented limit: with 3 seeds a side the smallest two-sided p is 0.1, however far apart."""
    pairs = pairwise_tests({"a": [1, 2, 3], "b": [10, 11, 12]}, False, test="mannwhitney")
    assert pairs[0]["p"] == pytest.approx(0.1) and not pairs[0]["significant"]
    welch = pairwise_tests({"a": [1, 2, 3], "b": [10, 11, 12]}, False, test="welch")
    assert welch[0]["significant"]


def test_pairwise_tests_without_spread_or_seeds():
    pairs = pairwise_tests({"x": [0.2, 0.2], "y": [0.2, 0.2], "z": [0.5, 0.5], "one": [0.1]}, False)
    by = {(p["a"], p["b"]): p for p in pairs}
    assert by["x", "y"]["p"] == 1.0 and by["x", "y"]["better"] is None
    assert by["x", "z"]["p"] == 0.0 and by["x", "z"]["significant"]
    assert by["x", "one"]["p"] is None and by["x", "one"]["p_holm"] is None  # one seed: no test, no adjustment
    with pytest.raises(ValueError, match="expected a test among welch, mannwhitney"):
        pairwise_tests({"x": [1, 2]}, False, test="t")


def row(cell, mean, params, ms=1.0):
    return {"cell": cell, "mean": mean, "params": params, "ms_per_step": ms}


def test_verdicts_say_significant_or_pick_the_cheaper():
    values = {"lstm": [0.010, 0.012, 0.011], "gru": [0.011, 0.010, 0.012], "rnn": [0.166, 0.167, 0.168]}
    rows = [row("rnn", 0.167, 1000), row("lstm", 0.011, 4000), row("gru", 0.011, 3000)]
    pairs = pairwise_tests(values, higher_is_better=False)
    words, pick = verdicts(rows, pairs, higher_is_better=False)
    text = " ".join(words)
    assert "significantly better than rnn" in text
    assert "No significant difference between lstm and gru" in text
    assert pick == "gru" and "Pick gru: it is the cheapest of lstm, gru" in text
    only_best = verdicts([row("a", 1.0, 10), row("b", 0.0, 5)],
                         pairwise_tests({"a": [1.0, 1.1, 0.9], "b": [0.0, 0.1, -0.1]}, True), True)
    assert only_best[1] == "a" and "significantly better than every other cell" in only_best[0][-1]
    untested = verdicts([row("a", 1.0, 10), row("b", 0.5, 5)], pairwise_tests({"a": [1.0], "b": [0.5]}, True), True)
    assert untested[1] == "b" and "fewer than 2 seeds" in " ".join(untested[0])


def test_friedman_nemenyi_ranks_and_critical_difference():
    # Demšar (2006), Table 5: q_0.05 = 2.343 for 3 classifiers, so CD = 2.343 * sqrt(3*4 / (6*N))
    assert critical_difference(3, 6) == pytest.approx(2.343 * math.sqrt(12 / 36), abs=1e-3)
    tasks = {f"t{i}": {"lstm": 0.10 + 0.01 * i, "gru": 0.2 + 0.01 * i, "rnn": 0.9} for i in range(8)}
    tasks["acc"] = {"lstm": 0.99, "gru": 0.95, "rnn": 0.5}  # an accuracy: higher is better, ranked the same way
    higher = {t: t == "acc" for t in tasks}
    out = friedman_nemenyi(tasks, higher)
    assert out["ranks"]["acc"] == {"lstm": 1.0, "gru": 2.0, "rnn": 3.0}
    assert out["mean_ranks"] == {"lstm": 1.0, "gru": 2.0, "rnn": 3.0}
    assert out["friedman"]["p"] < 0.001
    assert out["nemenyi"]["lstm"]["rnn"] < 0.05 and out["nemenyi"]["lstm"]["gru"] > out["nemenyi"]["lstm"]["rnn"]
    assert out["critical_difference"] == pytest.approx(critical_difference(3, 9))
    ties = friedman_nemenyi({"a": {"x": 1.0, "y": 1.0}, "b": {"x": 2.0, "y": 1.0}}, {"a": False, "b": False})
    assert ties["ranks"]["a"] == {"x": 1.5, "y": 1.5} and ties["friedman"] is None  # 2 cells: no Friedman test
