"""`rnnlab compare` end to end: a real kill half-way, a rerun that keeps every finished run, the report."""

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

RNNLAB = [sys.executable, "-c", "from rnnlab.cli import main; main()"]
STUDY = ["compare", "digits", "--cells", "rnn,gru,lstm", "--seeds", "1", "--budget", "30", "--workers", "1", "--quiet"]


def finished_rows(out: Path) -> dict[str, float]:
    db = out / "study.sqlite"
    if not db.is_file():
        return {}
    try:
        con = sqlite3.connect(db, timeout=1)
        rows = dict(con.execute("SELECT run_id, finished_at FROM runs").fetchall())
        con.close()
        return rows
    except sqlite3.OperationalError:
        return {}


def test_killed_study_resumes_without_rerunning_finished_runs(tmp_path):
    out = tmp_path / "study"
    proc = subprocess.Popen([*RNNLAB, *STUDY, "--out", str(out)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while not finished_rows(out) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # the study and its workers, mid-study
    proc.wait()
    before = finished_rows(out)
    assert 1 <= len(before) < 3, before
    mtimes = {rid: (out / "runs" / rid / "results.json").stat().st_mtime_ns for rid in before}

    done = subprocess.run([*RNNLAB, *STUDY, "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    after = finished_rows(out)
    assert set(after) == {"rnn-s0", "gru-s0", "lstm-s0"}
    for rid, finished_at in before.items():  # kept, not rerun
        assert after[rid] == finished_at
        assert (out / "runs" / rid / "results.json").stat().st_mtime_ns == mtimes[rid]
    assert f"{len(before)} of 3 runs already finished" in done.stderr
    summary = json.loads((out / "results.json").read_text())
    assert [c["cell"] for c in summary["cells"]] == ["rnn", "gru", "lstm"]
    assert all(c["seeds"] == 1 for c in summary["cells"])
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") >= 4  # curves, size, time, gradient flow (+ gates)
    assert "Recommendation" in report

    listing = subprocess.run([*RNNLAB, "runs", str(out)], capture_output=True, text=True)
    assert listing.returncode == 0 and listing.stdout.count("\n") == 3

    # the same directory with a different budget is a different study: refused, results untouched
    other = subprocess.run([*RNNLAB, *STUDY[:-5], "--budget", "31", "--out", str(out)], capture_output=True,
                           text=True)
    assert other.returncode == 2
    assert other.stderr.startswith("rnnlab: error:") and "holds a different study" in other.stderr
    assert other.stderr.count("\n") == 1
    assert finished_rows(out) == after


@pytest.mark.parametrize("args,message", [
    (["compare", "--cells", "rnn,transformer"], "unknown cell 'transformer'"),
    (["compare", "--seeds", "0"], "--seeds must be at least 1, got 0"),
    (["compare", "digits", "--seq-len", "5"], "does not apply to task digits"),
    (["compare", "nosuchtask"], "unknown task 'nosuchtask'"),
    (["compare", "--budget", "soon"], "--budget expects a positive number of steps"),
    (["diagnose", "--cells", "lstm:mut1"], "unknown lstm variant 'mut1'"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    done = subprocess.run([*RNNLAB, *args, "--out", str(tmp_path / "x")], capture_output=True, text=True)
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert not (tmp_path / "x").exists()


def test_report_renders_in_headless_chromium(tmp_path):
    """Screenshot the report of a tiny study in headless Chromium and check the image is a page, not blank."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    from rnnlab.study.cellspec import parse_cells
    from rnnlab.study.compare import Budget, StudyConfig, run_study
    from rnnlab.study.executor import InProcessExecutor

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
