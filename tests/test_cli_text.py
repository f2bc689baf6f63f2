"""`rnnlab predict` and `rnnlab generate` on text runs: output, streaming, warnings, one-line errors."""

import csv
import io

import pytest
import torch

from rnnlab.cli import main

from .cli_helpers import assert_one_line_error, run_cli

GOOD = ["great", "tasty", "delicious", "lovely", "fresh", "perfect"]
BAD = ["awful", "stale", "bland", "soggy", "rotten", "terrible"]
VERSE = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nAy me!\n\n"
TINY = ["--hidden", "16", "--batch-size", "8", "--lr", "0.01", "--schedule", "constant", "--quiet"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny sentiment run and a tiny char-level lm run, trained through the CLI."""
    root = tmp_path_factory.mktemp("text-runs")
    rows = []
    for k in range(80):
        cues = GOOD if k % 2 == 0 else BAD
        rows.append((f"the snack was {cues[k % 6]} and the box {cues[(k // 2) % 6]}", "pos" if k % 2 == 0 else "neg"))
    table = io.StringIO()
    csv.writer(table, lineterminator="\n").writerows([("text", "label"), *rows])
    (root / "reviews.csv").write_text(table.getvalue(), encoding="utf-8")
    (root / "play.txt").write_text(VERSE * 40, encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for args in (
            ["train", "sentiment", "--data", root / "reviews.csv", "--io-dropout", "0", "--embedding-size", "16",
             "--steps", "60", "--eval-every", "30", "--out", root / "sentiment", *TINY],
            ["train", "lm", "--data", root / "play.txt", "--seq-len", "20", "--embedding-size", "16",
             "--steps", "150", "--eval-every", "75", "--out", root / "lm", *TINY],
        ):
            with pytest.raises(SystemExit) as exit_info:
                main([str(a) for a in args])
            assert exit_info.value.code == 0
    finally:
        torch.set_num_threads(threads)
    (root / "reviews.csv").unlink()  # predict and generate need only the run directories
    (root / "play.txt").unlink()
    return root


def test_predict_prints_label_and_probability(capsys, runs):
    code, out, err = run_cli(capsys, "predict", runs / "sentiment", "a tasty and lovely snack")
    assert code == 0, err
    label, probability = out.strip().split("\t")
    assert label == "pos" and 0.5 < float(probability) <= 1.0


def test_predict_from_a_file_skips_empty_lines_with_a_warning(capsys, runs, tmp_path):
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("stale and soggy\n\nfresh and perfect\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "predict", runs / "sentiment", "--input", inputs)
    assert code == 0
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert [(line[0], line[2]) for line in lines] == [("neg", "stale and soggy"), ("pos", "fresh and perfect")]
    assert err.strip() == "rnnlab: warning: skipped 1 empty text(s) in inputs.txt"


def test_generate_streams_the_text(capsys, runs, monkeypatch):
    flushes = []
    real_flush = __import__("sys").stdout.flush
    monkeypatch.setattr("sys.stdout.flush", lambda: (flushes.append(1), real_flush())[1])
    code, out, err = run_cli(capsys, "generate", runs / "lm", "--prompt", "ROMEO:", "--length", "40",
                             "--temperature", "0.5", "--top-k", "5", "--seed", "3")
    assert code == 0, err
    assert out.startswith("ROMEO:") and len(out) == len("ROMEO:") + 40 + 1  # the final newline
    assert len(flushes) >= 40  # printed and flushed piece by piece
    again = run_cli(capsys, "generate", runs / "lm", "--prompt", "ROMEO:", "--length", "40", "--temperature",
                    "0.5", "--top-k", "5", "--seed", "3")[1]
    assert again == out


def test_generate_writes_out_and_warns_about_unknown_characters(capsys, runs, tmp_path):
    target = tmp_path / "sample.txt"
    code, out, err = run_cli(capsys, "generate", runs / "lm", "--prompt", "ZQ:", "--length", "10", "--out", target)
    assert code == 0
    assert out.startswith("ZQ:") and target.read_text(encoding="utf-8") + "\n" == out
    assert "rnnlab: warning: 2 prompt token(s) not in the vocabulary were mapped to <unk>: 'Z', 'Q'" in err
    assert f"wrote {target}" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "{tmp}"], "is not a run directory"),
        (["predict", "{lm}", "hello"], "task lm does not support predict"),
        (["predict", "{sentiment}", "   "], "the text to classify is empty"),
        (["predict", "{sentiment}", "--input", "{tmp}/missing.txt"], "file not found"),
        (["predict", "{sentiment}"], "expected a text to classify"),
        (["generate", "{sentiment}"], "does not generate"),
        (["generate", "{lm}", "--temperature", "0"], "--temperature"),
        (["generate", "{lm}", "--top-k", "0"], "--top-k"),
        (["generate", "{tmp}"], "is not a run directory"),
    ],
)
def test_bad_input_is_one_line_exit_2(capsys, runs, tmp_path, args, message):
    filled = [a.format(tmp=tmp_path, lm=runs / "lm", sentiment=runs / "sentiment") for a in args]
    code, _, err = run_cli(capsys, *filled)
    assert_one_line_error(code, err, message)


@pytest.mark.parametrize("command", ["predict", "generate"])
def test_help_has_an_example(capsys, command):
    code, out, _ = run_cli(capsys, command, "--help")
    assert code == 0 and "Example:" in out
