"""`rnnlab compare` end to end: tuning that survives a real kill, the significance verdicts on real runs, the
Ray executor, bad input, and the report."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rnnlab.study import ray_executor
from rnnlab.study.cellspec import parse_cells
from rnnlab.study.compare import Budget, StudyConfig, run_study
from rnnlab.study.executor import InProcessExecutor
from rnnlab.study.stats import pairwise_tests, verdicts
from rnnlab.tasks import base as task_base
from rnnlab.tasks.digits import Digits

from ..cli_helpers import assert_one_line_error, run_cli

RNNLAB = [sys.executable, "-c", "from rnnlab.cli import main; main()"]
TUNED = dict(task="digits", cells=parse_cells("gru"), seeds=2, budget=Budget(steps=40), tune=4, tune_batch=2,
             tune_budget=Budget(steps=40), workers=1)
TUNED_CLI = ["compare", "digits", "--cells", "gru", "--seeds", "2", "--budget", "40", "--tune", "4", "--tune-batch",
             "2", "--tune-budget", "40", "--workers", "1", "--quiet"]


def trial_states(out: Path) -> list[tuple[int, str]]:
    """(number, state) of the Optuna trials in a study's SQLite file, read as another process would."""
    try:
        con = sqlite3.connect(out / "study.sqlite", timeout=1)
        rows = con.execute("SELECT number, state FROM trials ORDER BY number").fetchall()
        con.close()
        return rows
    except sqlite3.OperationalError:  # not created yet
        return []


def outcome(summary: dict) -> tuple[list, dict]:
    """What must not depend on a kill: every trial (parameters, state, value) and every final test metric."""
    history = summary["tasks"]["digits"]["tuning"]["gru"]["history"]
    finals = {rid: r["metrics"] for rid, r in summary["runs"].items() if r["kind"] == "final"}
    return history, finals


def test_study_killed_while_tuning_ends_like_one_never_killed(tmp_path, one_thread):
    out = tmp_path / "killed"
    proc = subprocess.Popen([*RNNLAB, *TUNED_CLI, "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 1800  # a crowded machine takes long; a quiet one a few seconds
    while not any(s == "COMPLETE" for _, s in trial_states(out)) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the study and its workers, mid-tuning
    proc.wait()
    before = trial_states(out)
    complete = [n for n, s in before if s == "COMPLETE"]
    assert 1 <= len(complete) < 4, before
    first = out / "runs" / "digits" / "tune" / "gru" / f"trial-{complete[0]:03d}" / "results.json"
    mtime = first.stat().st_mtime_ns

    done = subprocess.run([*RNNLAB, *TUNED_CLI, "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "tuning trials and 0 runs already finished" in done.stderr
    assert first.stat().st_mtime_ns == mtime  # a finished trial is never trained again
    assert [s for _, s in trial_states(out)].count("RUNNING") == 0 and len(trial_states(out)) == 4

    whole = run_study(StudyConfig(**TUNED, out=tmp_path / "whole"), InProcessExecutor())
    killed = json.loads((out / "results.json").read_text())
    assert outcome(killed) == outcome(whole)
    history = outcome(whole)[0]
    assert len({json.dumps(t["params"], sort_keys=True) for t in history}) == 4  # four different trials
    best = whole["tasks"]["digits"]["tuning"]["gru"]
    best_value = max(t["value"] for t in history if t["state"] == "COMPLETE")
    assert best["best_valid"] == best_value  # selected on validation
    assert whole["tasks"]["digits"]["cells"][0]["best_params"] == best["best_params"]
    run = whole["runs"]["digits/gru-s1"]
    assert run["hidden_size"] == best["best_params"]["hidden_size"]  # the final runs train the winner

    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 4 and "Pairwise tests" in report and "Tuning" in report
    listing = subprocess.run([*RNNLAB, "runs", str(out)], capture_output=True, text=True)
    assert listing.returncode == 0 and listing.stdout.count("\n") == 6  # 4 trials, 2 final runs
    # the same directory with a different budget is a different study: refused, results untouched
    trials = trial_states(out)
    other = subprocess.run([*RNNLAB, *TUNED_CLI[:6], "--budget", "41", "--tune", "4", "--out", str(out)],
                           capture_output=True, text=True)
    assert other.returncode == 2 and "holds a different study" in other.stderr and other.stderr.count("\n") == 1
    assert trial_states(out) == trials


def test_a_cell_that_cannot_learn_is_significantly_worse(tmp_path, one_thread):
    """The tanh RNN on the adding problem at T=100 stays at the trivial baseline; the GRU solves it."""
    study = StudyConfig(task="adding", task_options={"seq_len": 100}, cells=parse_cells("rnn,gru"), seeds=3,
                        budget=Budget(steps=600), out=tmp_path, diagnose=False)
    summary = run_study(study, InProcessExecutor())
    adding = summary["tasks"]["adding"]
    (pair,) = adding["pairwise"]
    assert pair["significant"] and pair["better"] == "gru" and pair["p_holm"] < 0.01, pair
    assert adding["pick"] == "gru"
    assert any(line.startswith("gru is significantly better than rnn") for line in adding["recommendation"])
    rnn = next(r for r in adding["cells"] if r["cell"] == "rnn")
    assert rnn["ci_low"] <= rnn["mean"] <= rnn["ci_high"] and rnn["seeds"] == 3


def test_the_same_model_up_to_seed_shows_no_significant_difference(tmp_path, one_thread):
    """Six seeds of one GRU, split into two contestants of three seeds: the tests must not tell them apart."""
    study = StudyConfig(task="digits", cells=parse_cells("gru"), seeds=6, budget=Budget(steps=60), out=tmp_path,
                        diagnose=False)
    summary = run_study(study, InProcessExecutor())
    values = {r["seed"]: r["metrics"]["test_accuracy"] for r in summary["runs"].values()}
    assert len(set(values.values())) > 1  # the seeds do differ
    samples = {"gru-a": [values[s] for s in (0, 2, 4)], "gru-b": [values[s] for s in (1, 3, 5)]}
    for test in ("welch", "mannwhitney"):
        (pair,) = pairwise_tests(samples, higher_is_better=True, test=test)
        assert not pair["significant"], pair
        rows = [{"cell": k, "mean": sum(v) / 3, "params": 100, "ms_per_step": 1.0} for k, v in samples.items()]
        words, pick = verdicts(rows, [pair], higher_is_better=True)
        assert words[0].startswith("No significant difference between") and pick in samples


def test_ray_executor_runs_a_small_study_like_the_local_one(tmp_path, one_thread):
    pytest.importorskip("ray")
    kwargs = dict(task="digits", cells=parse_cells("gru"), seeds=1, budget=Budget(steps=30), tune=2,
                  tune_budget=Budget(steps=20), diagnose=False)
    on_ray = run_study(StudyConfig(**kwargs, out=tmp_path / "ray", workers=2, executor="ray"))
    local = run_study(StudyConfig(**kwargs, out=tmp_path / "local"), InProcessExecutor())
    assert outcome(on_ray) == outcome(local)
    assert [t["state"] for t in outcome(on_ray)[0]] == ["COMPLETE", "COMPLETE"]
    assert on_ray["runs"]["digits/gru-s0"]["peak_rss_mb"] > 0


class Untuned(Digits):
    name = "untuned"
    defaults = {}


@pytest.mark.parametrize("args,message", [
    (["--tasks", "digits,nosuchtask"], "unknown task 'nosuchtask'"),
    (["digits", "--cells", "rnn,gru", "--space", "forget_bias=0:2"],
     "search space forget_bias=0 cannot be used by rnn on task digits"),
    (["digits", "--tune", "0", "--space", "lr=1e-3:1e-2"], "--space needs --tune N with N > 0"),
    (["untuned", "--tune", "0"], "task untuned has no default hyperparameters"),
    (["digits", "--data-fractions", "0,0.5"], "--data-fractions expects shares in (0, 1]"),
    (["digits", "--data-fractions", "0.5,1.5"], "--data-fractions expects shares in (0, 1]"),
    (["adding", "--data-fractions", "0.5"], "draws fresh training examples at every step"),
    (["digits", "--executor", "ray", "--address", "127.0.0.1:9"], "cannot reach a Ray cluster at 127.0.0.1:9"),
    (["digits", "--address", "auto"], "--address is for --executor ray"),
    (["digits", "--tune", "-1"], "--tune must be 0 (no tuning) or a number of trials"),
    (["--cells", "rnn,transformer"], "unknown cell 'transformer'"),
    (["--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["digits", "--seq-len", "5"], "does not apply to task digits"),
    (["--budget", "soon"], "--budget expects a positive number of steps"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, args, message):
    monkeypatch.setitem(task_base._REGISTRY, "untuned", Untuned)
    code, _, err = run_cli(capsys, "compare", *args, "--out", tmp_path / "x")
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "x").exists()


def test_ray_missing_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(ray_executor, "ray_available", lambda: False)
    code, _, err = run_cli(capsys, "compare", "digits", "--executor", "ray", "--out", tmp_path / "x")
    assert_one_line_error(code, err, "--executor ray needs Ray: pip install 'rnnlab[ray]'")
    assert not (tmp_path / "x").exists()


def test_diagnose_bad_variant(tmp_path, capsys):
    code, _, err = run_cli(capsys, "diagnose", "--cells", "lstm:mut1", "--out", tmp_path / "x")
    assert_one_line_error(code, err, "unknown lstm variant 'mut1'")


def test_report_renders_in_headless_chromium(tmp_path):
    """Screenshot the report of a tiny study in headless Chromium and check the image is a page, not blank."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    study = StudyConfig(task="digits", task_options={}, cells=parse_cells("rnn,lstm"), seeds=1,
                        budget=Budget(steps=20), out=tmp_path / "s")
    summary = run_study(study, InProcessExecutor())
    shot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2400",
                    f"--screenshot={shot}", Path(summary["report"]).as_uri()],
                   capture_output=True, timeout=120, check=True)
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] == 2400 and pixels.shape[1] == 1200
    # a rendered page: mostly white background, with plenty of ink (text, tables, plots)
    ink = (pixels[..., :3].mean(axis=-1) < 0.6).mean()
    assert 0.01 < ink < 0.5, ink
