"""The command line: listing, training, evaluating, and one-line errors (exit code 2) on every bad input."""

import json
import shutil

import pytest
import torch

from rnnlab.cli import cli, main

from .cli_helpers import assert_one_line_error, run_cli

TINY = ["--cell", "gru", "--hidden", "8", "--steps", "10", "--eval-every", "5", "--batch-size", "32", "--quiet"]


def snapshot(path):
    return {p.relative_to(path): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny finished digits run, shared by the tests that need a run directory (copy before changing)."""
    out = tmp_path_factory.mktemp("runs") / "digits"
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "digits", *TINY, "--out", str(out)])
    assert exit_info.value.code == 0
    return out


@pytest.fixture
def run_copy(trained, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    return out


def test_tasks_lists_one_line_per_task(capsys):
    code, out, _ = run_cli(capsys, "tasks")
    assert code == 0
    lines = {line.split()[0]: line for line in out.strip().splitlines()}
    assert {"adding", "copy", "digits"} <= set(lines)
    assert "--seq-len 200" in lines["adding"]


@pytest.mark.parametrize("command", [[], ["tasks"], ["train"], ["eval"]])
def test_every_help_has_an_example(capsys, command):
    code, out, _ = run_cli(capsys, *command, "--help")
    assert code == 0 and "Example" in out


@pytest.mark.parametrize("command", ["train", "generate", "predict", "translate"])
def test_a_command_without_arguments_shows_its_whole_help(capsys, command):
    code, out, err = run_cli(capsys, command)
    assert code == 2 and out == ""
    assert err.startswith(f"Usage: rnnlab {command} ") and "rnnlab: error" not in err
    assert len(err.splitlines()) > 5 and "Options:" in err


def test_every_command_has_an_example_in_its_help():
    for name, command in cli.commands.items():
        assert "Example" in (command.help or ""), name


def test_train_then_eval(capsys, trained):
    results = json.loads((trained / "results.json").read_text())
    assert results["task"] == "digits" and results["cell"] == "gru" and results["steps"] == 10
    config = json.loads((trained / "config.json").read_text())
    assert config["model"]["hidden_size"] == 8 and config["loop"]["eval_every"] == 5
    code, out, _ = run_cli(capsys, "eval", str(trained))
    assert code == 0
    printed = dict(line.split() for line in out.strip().splitlines())
    assert float(printed["test_accuracy"]) == pytest.approx(results["metrics"]["test_accuracy"], abs=1e-6)


def test_task_specific_option_reaches_the_task(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "copy", "--seq-len", "3", "--copy-len", "2", *TINY,
                           "--out", str(tmp_path / "c"))
    assert code == 0, err
    config = json.loads((tmp_path / "c" / "config.json").read_text())
    assert config["task_options"] == {"seq_len": 3, "copy_len": 2}


def test_layer_options_reach_the_layer(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "copy", "--seq-len", "3", *TINY, "--chrono-init", "23",
                           "--out", str(tmp_path / "c"))
    assert code == 0, err
    assert json.loads((tmp_path / "c" / "config.json").read_text())["model"]["layer_options"] == {"chrono_init": 23}


def test_max_minutes_stops_training_and_keeps_the_evaluated_result(capsys, tmp_path):
    args = [a if a != "10" else "100000" for a in TINY]  # --steps 100000: only the clock can stop it
    code, _, err = run_cli(capsys, "train", "digits", *args, "--max-minutes", "0.002", "--out", str(tmp_path / "r"))
    assert code == 0, err
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert config["loop"]["max_seconds"] == pytest.approx(0.12)
    assert 0 < results["steps"] < 100000 and "test_accuracy" in results["metrics"]


def test_max_cpu_minutes_reaches_the_config_and_the_results(capsys, tmp_path):
    code, _, err = run_cli(capsys, "train", "digits", *TINY, "--max-cpu-minutes", "10", "--out", str(tmp_path / "r"))
    assert code == 0, err
    assert json.loads((tmp_path / "r" / "config.json").read_text())["loop"]["max_cpu_seconds"] == pytest.approx(600)
    assert json.loads((tmp_path / "r" / "results.json").read_text())["train_cpu_seconds"] > 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "digits", "--max-minutes", "0"], "'--max-minutes'"),
        (["train", "digits", "--max-cpu-minutes", "0"], "'--max-cpu-minutes'"),
        (["train", "nosuchtask"], "unknown task 'nosuchtask'; known tasks: activity, adding"),
        (["train", "digits", "--cell", "transformer"], "unknown cell 'transformer'; expected one of: rnn, lstm"),
        (["train", "digits", "--cell", "lstm", "--variant", "mut1"], "unknown lstm variant 'mut1'"),
        (["train", "digits", "--seq-len", "10"], "option --seq-len does not apply to task digits"),
        (["train", "adding", "--copy-len", "3"], "option --copy-len does not apply to task adding"),
        (["train", "copy", "--copy-len", "zero"], "--copy-len expects int, got 'zero'"),
        (["train", "copy", "--copy-len", "0"], "--copy-len expects a value >= 1"),
        (["train", "digits", "--hidden", "0"], "'--hidden': 0 is not in the range x>=1"),
        (["train", "digits", "--layers", "-2"], "'--layers'"),
        (["train", "digits", "--batch-size", "0"], "'--batch-size'"),
        (["train", "digits", "--steps", "0"], "'--steps'"),
        (["train", "adding", "--seq-len", "0"], "'--seq-len'"),
        (["train", "digits", "--steps", "5", "--epochs", "1"], "either --steps or --epochs"),
        (["train", "digits", "--resume"], "--resume needs --out"),
        (["train", "digits", "--cell", "rnn", "--forget-bias", "1"], "forget_bias does not apply to rnn"),
        (["train", "digits", "--cell", "rnn", "--chrono-init", "10"], "chrono_init does not apply to rnn"),
        (["train", "digits", "--chrono-init", "2"], "'--chrono-init': 2 is not in the range x>=3"),
        (["eval"], "Missing argument 'RUN_DIR'"),
        (["bench", "--quick", "--workbench"], "--quick and --workbench are two presets: choose one"),
        (["bench", "--single-thread", "--threads", "2"], "--single-thread runs one thread; it cannot take --threads 2"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)  # should a case train after all, its run lands here
    code, _, err = run_cli(capsys, *args)
    assert_one_line_error(code, err, message)


def test_unwritable_out(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, _, err = run_cli(capsys, "train", "digits", *TINY, "--out", str(blocker / "run"))
    assert_one_line_error(code, err, "cannot write the run directory")
    assert blocker.read_text() == "not a directory"


def test_existing_run_is_not_overwritten(capsys, run_copy):
    before = snapshot(run_copy)
    code, _, err = run_cli(capsys, "train", "digits", *TINY, "--out", str(run_copy))
    assert_one_line_error(code, err, "is not empty; pass --resume")
    assert snapshot(run_copy) == before


def test_resume_with_different_options_is_refused(capsys, run_copy):
    before = snapshot(run_copy)
    code, _, err = run_cli(capsys, "train", "digits", "--hidden", "32", "--out", str(run_copy), "--resume")
    assert_one_line_error(code, err, "options differ from the run's config.json: hidden_size 32 (run: 8)")
    code, _, err = run_cli(capsys, "train", "adding", "--out", str(run_copy), "--resume")
    assert_one_line_error(code, err, "is a run of task digits, not adding")
    assert snapshot(run_copy) == before


def test_resume_of_a_finished_run_is_idempotent(capsys, run_copy):
    results = json.loads((run_copy / "results.json").read_text())
    code, _, err = run_cli(capsys, "train", "digits", "--out", str(run_copy), "--resume", "--quiet")
    assert code == 0, err
    again = json.loads((run_copy / "results.json").read_text())
    assert again["metrics"] == results["metrics"] and again["steps"] == results["steps"]


@pytest.mark.parametrize("which", ["best", "last"])
def test_corrupt_checkpoint(capsys, run_copy, which):
    path = run_copy / "checkpoints" / f"{which}.pt"
    path.write_bytes(path.read_bytes()[:300])
    before = snapshot(run_copy)
    code, _, err = run_cli(capsys, "eval", str(run_copy), "--checkpoint", which)
    assert_one_line_error(code, err, "cannot read checkpoint")
    code, _, err = run_cli(capsys, "train", "digits", "--out", str(run_copy), "--resume")
    assert_one_line_error(code, err, "cannot read checkpoint")
    assert snapshot(run_copy) == before


def test_foreign_checkpoint(capsys, run_copy):
    path = run_copy / "checkpoints" / "last.pt"
    torch.save({"model": {"weight": torch.ones(2)}}, path)
    before = snapshot(run_copy)
    code, _, err = run_cli(capsys, "train", "digits", "--out", str(run_copy), "--resume")
    assert_one_line_error(code, err, "is not an rnnlab checkpoint")
    code, _, err = run_cli(capsys, "eval", str(run_copy), "--checkpoint", "last")
    assert_one_line_error(code, err, "is not an rnnlab checkpoint")
    assert snapshot(run_copy) == before


def test_eval_of_a_directory_that_is_no_run(capsys, tmp_path):
    code, _, err = run_cli(capsys, "eval", str(tmp_path))
    assert_one_line_error(code, err, "is not a run directory")


def test_debug_shows_the_traceback_of_an_input_error(capsys, monkeypatch):
    from rnnlab.errors import InputError

    monkeypatch.delenv("RNNLAB_DEBUG", raising=False)
    with pytest.raises(InputError, match="unknown task"):
        main(["--debug", "train", "no_such_task"])
    code, _, err = run_cli(capsys, "train", "no_such_task")  # without --debug: one line again
    assert_one_line_error(code, err, "unknown task")
    monkeypatch.setenv("RNNLAB_DEBUG", "1")
    with pytest.raises(InputError, match="unknown task"):
        main(["train", "no_such_task"])


@pytest.mark.parametrize("bug", [ValueError, TypeError, KeyError])
def test_a_bug_is_not_reported_as_bad_input(monkeypatch, bug):
    """Only the user's mistakes become one line and exit 2; an error inside rnnlab keeps its traceback."""
    import rnnlab.tasks

    def broken():
        raise bug("an internal error")

    monkeypatch.setattr(rnnlab.tasks, "registered_tasks", broken)
    with pytest.raises(bug, match="an internal error"):
        main(["tasks"])
