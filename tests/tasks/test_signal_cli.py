"""The command line of the signal tasks: train, forecast, generate, and one-line errors on bad input."""

import json
import re

import numpy as np
import pytest

from ..cli_helpers import run_cli
from .test_forecast import _csv
from .test_music import TINY


def assert_one_line_error(code, err, pattern):
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith("rnnlab: error: ")
    assert re.search(pattern, err), err


def test_train_then_forecast_prints_and_plots(capsys, write, tmp_path):
    data = write("sales.csv", _csv(120))
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "train", "forecast", "--data", data, "--value-column", "temp,sales",
                            "--date-column", "month", "--window", 6, "--horizon", 2, "--hidden", 8, "--steps", 3,
                            "--out", out, "--quiet")
    assert code == 0, err
    assert "test_mase" in stdout and "baseline" in stdout
    results = json.loads((out / "results.json").read_text())
    assert {"test_arima_mase", "test_naive_mase", "test_seasonal_naive_mase"} <= set(results["baseline"])

    plot = tmp_path / "f.png"
    code, stdout, err = run_cli(capsys, "forecast", out, "--horizon", 5, "--plot", plot)
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[0] == "time\ttemp\tsales" and len(lines) == 7 and lines[-1] == f"wrote {plot}"
    assert lines[1].startswith("2010-01-01\t")  # the month after the last of the 120 rows
    assert plot.read_bytes()[:4] == b"\x89PNG"

    newer = write("newer.csv", _csv(132, seed=3))
    code, stdout, err = run_cli(capsys, "forecast", out, "--data", newer, "--plot", tmp_path / "g.png")
    assert code == 0, err
    assert stdout.splitlines()[1].startswith("2011-01-01\t") and len(stdout.splitlines()) == 4  # run's horizon 2
    values = [float(v) for v in stdout.splitlines()[1].split("\t")[1:]]
    assert all(np.isfinite(values))

    code, _, err = run_cli(capsys, "forecast", out, "--horizon", 0)
    assert_one_line_error(code, err, "--horizon expects a positive number of steps, got 0")
    code, _, err = run_cli(capsys, "forecast", out, "--data", write("x.csv", "month,temp\n2000-01-01,1\n"))
    assert_one_line_error(code, err, "column 'sales' not found in x.csv")
    code, _, err = run_cli(capsys, "forecast", tmp_path / "nowhere")
    assert_one_line_error(code, err, "is not a run directory")


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["--value-column", "price"], r"column 'price' not found in s.csv; columns are: month, temp, sales"),
        (["--value-column", "temp", "--horizon", "0"], r"--horizon expects a value >= 1, got 0"),
        (["--value-column", "temp", "--window", "90"], r"too few rows in 's': the train split has 84 of its 120"),
    ],
)
def test_forecast_bad_options_are_one_line(capsys, write, tmp_path, args, pattern):
    data = write("s.csv", _csv(120))
    code, _, err = run_cli(capsys, "train", "forecast", "--data", data, *args, "--steps", 1, "--out", tmp_path / "r")
    assert_one_line_error(code, err, pattern)
    assert not (tmp_path / "r").exists()  # nothing left behind


def test_forecast_bad_files_are_one_line(capsys, write, tmp_path):
    words = write("w.csv", "month,temp\n2000-01-01,1.5\n2000-02-01,warm\n")
    code, _, err = run_cli(capsys, "train", "forecast", "--data", words, "--value-column", "temp", "--steps", 1,
                       "--out", tmp_path / "r")
    assert_one_line_error(code, err, r"column 'temp' of w.csv must be numeric; found 'warm' at data row 2")
    code, _, err = run_cli(capsys, "train", "forecast", "--data", write("e.csv", ""), "--value-column", "temp")
    assert_one_line_error(code, err, r"e.csv is empty")


def test_train_music_then_generate_midi(capsys, write, tmp_path):
    data = write("tiny.json", json.dumps(TINY))
    out = tmp_path / "run"
    code, stdout, err = run_cli(capsys, "train", "music", "--data", data, "--hidden", 8, "--steps", 2, "--out", out,
                            "--quiet")
    assert code == 0, err
    assert "test_nll_nats" in stdout
    midi = tmp_path / "sample.mid"
    code, stdout, err = run_cli(capsys, "generate", out, "--length", 16, "--out", midi, "--seed", 4)
    assert code == 0, err
    assert stdout.strip() == f"wrote {midi}" and midi.read_bytes()[:4] == b"MThd"
    code, _, err = run_cli(capsys, "generate", out, "--length", 16)
    assert_one_line_error(code, err, r"task music generates a file: give --out FILE")
    code, _, err = run_cli(capsys, "generate", out, "--length", 8, "--prompt", "la", "--out", midi)
    assert_one_line_error(code, err, r"task music does not take prompt")


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ("[[60], [62]]", r"expected a JSON object .* found a list of 2"),
        (json.dumps({"train": TINY["train"]}), r"missing valid, test"),
        (json.dumps(dict(TINY, valid=[[]])), r"valid\[0\] is empty; expected at least one time step"),
        (json.dumps(dict(TINY, test=[[[60], [200]]])), r"test\[0\] step 1 has note 200"),
        ('{"train": [', r"not valid JSON"),
    ],
)
def test_music_bad_files_are_one_line(capsys, write, tmp_path, content, pattern):
    data = write("bad.json", content)
    code, _, err = run_cli(capsys, "train", "music", "--data", data, "--steps", 1, "--out", tmp_path / "r")
    assert_one_line_error(code, err, pattern)
    assert not (tmp_path / "r").exists()


def test_generate_on_a_task_that_does_not_generate(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "mnist", "--hidden", 8, "--steps", 1, "--out", out, "--quiet")
    assert code == 0, err
    code, _, err = run_cli(capsys, "generate", out, "--out", tmp_path / "x")
    assert_one_line_error(code, err, "task mnist does not generate")
    code, _, err = run_cli(capsys, "forecast", out)
    assert_one_line_error(code, err, "is a run of task mnist; forecasting needs a run of task forecast")
