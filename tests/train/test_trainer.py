"""The Trainer: learning, determinism, resuming (simulated and by a real kill), early stopping, results."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnlab.errors import InputError
from rnnlab.train import RunConfig, RunDir, Trainer
from rnnlab.train.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.train.run import evaluate_run, start_run


def _train(config, path=None, **fit):
    run = RunDir.create(path) if path is not None else None
    if run is not None:
        run.write_config(config.to_dict())
    return Trainer(config, run).fit(**fit)


def _losses(run_dir):
    return [(r["step"], r.get("loss"), r.get("accuracy"), r.get("nll_nats"))
            for r in RunDir(run_dir).read_metrics()]


def test_learns_digits_and_writes_the_run_dir(tiny_digits, tmp_path):
    results = _train(tiny_digits(steps=60, hidden_size=32), tmp_path / "run")
    assert results["metrics"]["test_accuracy"] > 0.5 > results["baseline"]["test_accuracy"]
    run = RunDir(tmp_path / "run")
    assert json.loads(run.results_path.read_text()) == results
    assert set(results) >= {"task", "cell", "variant", "params", "metrics", "baseline", "train_seconds"}
    assert results["variant"] == "vanilla" and results["params"] > 0
    records = run.read_metrics()
    assert [r["step"] for r in records if r["split"] == "valid"] == [10, 20, 30, 40, 50, 60]
    assert all(r["step"] % 5 == 0 for r in records if r["split"] == "train")
    assert run.best_checkpoint.exists() and run.last_checkpoint.exists()


def test_same_seed_same_numbers(tiny_digits, tmp_path):
    a = _train(tiny_digits(), tmp_path / "a")
    b = _train(tiny_digits(), tmp_path / "b")
    assert a["metrics"] == b["metrics"]
    assert _losses(tmp_path / "a") == _losses(tmp_path / "b")
    _train(tiny_digits(seed=1), tmp_path / "c")
    assert _losses(tmp_path / "c") != _losses(tmp_path / "a")


@pytest.mark.parametrize("interrupt_at", [10, 13])  # at a validation step, and between two
def test_resume_equals_uninterrupted(tiny_digits, tmp_path, interrupt_at):
    config = tiny_digits(dropout=0.0, schedule="cosine", warmup_steps=3)
    whole = _train(config, tmp_path / "whole")
    assert _train(config, tmp_path / "cut", until=interrupt_at) is None
    assert load_checkpoint(RunDir(tmp_path / "cut").last_checkpoint)["step"] == interrupt_at
    resumed = Trainer(config, RunDir.open(tmp_path / "cut")).fit(resume=True)
    assert resumed["metrics"] == whole["metrics"]
    assert resumed["best_valid"] == whole["best_valid"] and resumed["best_step"] == whole["best_step"]
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "whole")


def test_resume_with_dropout_and_per_step_task(tiny_copy, tmp_path):
    """RNG states in the checkpoint: dropout masks after resuming are those of the uninterrupted run."""
    config = tiny_copy(num_layers=2, dropout=0.3)
    whole = _train(config, tmp_path / "whole")
    _train(config, tmp_path / "cut", until=11)
    resumed = Trainer(config, RunDir.open(tmp_path / "cut")).fit(resume=True)
    assert resumed["metrics"] == whole["metrics"]
    assert _losses(tmp_path / "cut") == _losses(tmp_path / "whole")


def test_killed_process_resumes_to_the_same_results(tmp_path):
    """Kill a real `rnnlab train` with SIGKILL after a few checkpoints, resume it, compare."""
    args = ["digits", "--cell", "gru", "--hidden", "16", "--steps", "150", "--batch-size", "32",
            "--eval-every", "5", "--quiet"]
    cmd = [sys.executable, "-c", "from rnnlab.cli import main; main()", "train", *args]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([*cmd, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last = killed / "checkpoints" / "last.pt"
    deadline = time.time() + 900  # a crowded machine (or a first kernel build) takes long; a quiet one seconds
    step = 0
    while time.time() < deadline and proc.poll() is None:
        if last.exists():
            step = load_checkpoint(last)["step"]
            if step >= 20:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 20 <= step < 150, f"the run ended (or never checkpointed) before it could be killed: step {step}"
    assert not (killed / "results.json").exists()
    resumed = subprocess.run([*cmd, "--out", str(killed), "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    a = json.loads((killed / "results.json").read_text())
    config = RunConfig.from_dict(json.loads((killed / "config.json").read_text()))
    b = _train(config, tmp_path / "whole")  # the same run, uninterrupted, in this process
    # Equal up to float32 round-off: this process and the CLI's may pick differently aligned buffers, and
    # oneDNN/MKL reduction order can follow alignment. (Reruns in the same kind of process are bit-identical:
    # see the determinism tests.)
    assert a["best_step"] == b["best_step"]
    assert a["metrics"] == pytest.approx(b["metrics"], rel=1e-6)
    killed_losses, whole_losses = _losses(killed), _losses(tmp_path / "whole")
    assert [r[0] for r in killed_losses] == [r[0] for r in whole_losses]
    for got, want in zip(killed_losses, whole_losses, strict=True):
        for g, w in zip(got, want, strict=True):
            assert g == (w if w is None else pytest.approx(w, rel=1e-6)), f"step {got[0]}: {got} != {want}"


def test_early_stopping(tiny_digits, tmp_path):
    results = _train(tiny_digits(steps=200, lr=1e-9, patience=2, eval_every=5), tmp_path / "run")
    assert results["stopped_early"] and results["steps"] == 15  # best at 5, no gain at 10 and 15


def test_divergence_is_reported_not_raised(tiny_digits, tmp_path):
    results = _train(tiny_digits(lr=1e12, clip_norm=None, optimizer="sgd", steps=40), tmp_path / "run")
    assert results["diverged"] is True  # lr 1e12 without clipping overflows the loss within a few steps
    assert results["steps"] < 40  # the run stopped at the first non-finite loss instead of training on


def test_epoch_budget(tiny_digits):
    trainer = Trainer(tiny_digits(steps=None, epochs=0.5))
    assert trainer.total_steps == 20  # 1257 examples / 32 per batch = 40 steps per epoch


def test_in_memory_training_without_run_dir(tiny_digits):
    results = Trainer(tiny_digits(steps=20)).fit()
    assert results["steps"] == 20 and "test_accuracy" in results["metrics"]


def test_eval_of_a_saved_run_matches_its_results(tiny_digits, tmp_path):
    _, results = start_run("digits", {}, {"cell": "gru", "hidden_size": 16, "steps": 20, "eval_every": 10},
                           tmp_path / "run")
    assert evaluate_run(tmp_path / "run") == results["metrics"]
    valid = evaluate_run(tmp_path / "run", "valid", "best")
    assert valid["valid_accuracy"] == results["best_valid"]


def test_checkpoint_of_another_run_is_refused(tiny_digits, tmp_path):
    _train(tiny_digits(), tmp_path / "a")
    _train(tiny_digits(hidden_size=8), tmp_path / "b")
    b = RunDir(tmp_path / "b")
    b.best_checkpoint.write_bytes(RunDir(tmp_path / "a").best_checkpoint.read_bytes())
    with pytest.raises(InputError, match="belongs to another run"):
        evaluate_run(b.path)


def test_checkpoint_with_wrong_weights_is_refused(tiny_digits, tmp_path):
    _train(tiny_digits(), tmp_path / "a")
    run = RunDir(tmp_path / "a")
    payload = load_checkpoint(run.best_checkpoint)
    payload["model"] = {"w": torch.ones(1)}
    save_checkpoint(run.best_checkpoint, payload)
    with pytest.raises(InputError, match="does not fit the model"):
        evaluate_run(run.path)


def test_resume_from_before_the_first_checkpoint_starts_over(tiny_digits, tmp_path):
    config = tiny_digits()
    run = RunDir.create(tmp_path / "run")
    run.write_config(config.to_dict())
    run.log({"step": 3, "split": "train", "loss": 9.0})
    results = Trainer(config, RunDir.open(run.path)).fit(resume=True)
    assert results["metrics"] == _train(config, tmp_path / "fresh")["metrics"]
    assert os.path.exists(run.results_path)


def test_ctrl_c_saves_and_resumes_exactly(tiny_digits, tmp_path, monkeypatch):
    config = tiny_digits()
    whole = _train(config, tmp_path / "whole")
    run = RunDir.create(tmp_path / "cut")
    run.write_config(config.to_dict())
    trainer = Trainer(config, run)
    original = Trainer._train_step

    def step_then_ctrl_c(self, batch):
        loss = original(self, batch)
        if self.step == 16:  # the 17th step is under way: Ctrl-C lets it finish
            signal.raise_signal(signal.SIGINT)
        return loss

    monkeypatch.setattr(Trainer, "_train_step", step_then_ctrl_c)
    # Python's own Ctrl-C handler, as in a terminal, whatever pytest inherited (a background job ignores SIGINT)
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            trainer.fit()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the handler is restored
    finally:
        signal.signal(signal.SIGINT, inherited)
    monkeypatch.setattr(Trainer, "_train_step", original)
    assert load_checkpoint(run.last_checkpoint)["step"] == 17
    resumed = Trainer(config, RunDir.open(run.path)).fit(resume=True)
    assert resumed["metrics"] == whole["metrics"]
    assert _losses(run.path) == _losses(tmp_path / "whole")


def test_progress_bar_is_off_without_a_terminal():
    from rnnlab.train.loggers import ProgressBar

    bar = ProgressBar(10, 0, "accuracy", enabled=True)  # pytest captures stderr: not a terminal
    assert not bar.enabled
    with bar:
        bar.update(3, loss=0.5, metric=0.9)


def test_tensorboard_needs_its_package(tiny_digits, monkeypatch):
    import rnnlab.train.loggers as loggers

    monkeypatch.setattr(loggers, "tensorboard_available", lambda: False)
    with pytest.raises(InputError, match="needs the tensorboard package"):
        tiny_digits(tensorboard=True)


def test_on_validate_stops_a_run_and_a_killed_one_stops_the_same(tiny_digits, tmp_path):
    """The hook a tuning trial's pruner uses: seeing step 20 it stops the run, which ends as pruned; a run cut
    right after that decision (its checkpoint saved) resumes to the same end without asking again."""
    seen = []

    def stop_at_20(step, metrics):
        seen.append((step, round(metrics["accuracy"], 6)))
        return step == 20

    config = tiny_digits()
    run = RunDir.create(tmp_path / "whole")
    run.write_config(config.to_dict())
    whole = Trainer(config, run, on_validate=stop_at_20).fit()
    assert whole["pruned"] and whole["steps"] == 20 and [s for s, _ in seen] == [10, 20]
    assert not _train(config, tmp_path / "plain")["pruned"]

    shutil.copytree(tmp_path / "whole", tmp_path / "cut")
    (tmp_path / "cut" / "results.json").unlink()  # killed after the decision's checkpoint, before the results
    asked = len(seen)
    resumed = Trainer(config, RunDir.open(tmp_path / "cut"), on_validate=stop_at_20).fit(resume=True)
    assert len(seen) == asked  # the decision came back from the checkpoint
    assert resumed["pruned"] and resumed["metrics"] == whole["metrics"] and resumed["steps"] == 20


def test_train_fraction_trains_on_a_nested_subset(tiny_digits, tmp_path):
    small = Trainer(tiny_digits(train_fraction=0.25))
    assert len(small.task.data("train")) == pytest.approx(0.25 * len(Trainer(tiny_digits()).task.data("train")), abs=1)
    with pytest.raises(InputError, match=r"train_fraction must be in \(0, 1\]"):
        tiny_digits(train_fraction=0.0)


def test_cpu_budget_counts_the_process_cpu_time_across_sessions(tiny_digits, tmp_path, monkeypatch):
    """``max_cpu_seconds`` stops at the step where the process's CPU time reaches it, the wall clock aside; a
    resumed run counts the time of its earlier session. A fake CPU clock advances one second per training step."""
    import rnnlab.train.trainer as trainer_module

    cpu = [0.0]
    monkeypatch.setattr(trainer_module.time, "process_time", lambda: cpu[0])
    step = Trainer._train_step

    def counted(self, batch):
        cpu[0] += 1.0
        return step(self, batch)

    monkeypatch.setattr(Trainer, "_train_step", counted)
    config = tiny_digits(steps=1000, max_cpu_seconds=7.5)
    results = _train(config, tmp_path / "one")
    assert results["steps"] == 8 and results["train_cpu_seconds"] == 8.0 and "test_accuracy" in results["metrics"]
    assert _train(config, tmp_path / "two", until=3) is None  # interrupted after 3 CPU seconds
    resumed = Trainer(config, RunDir.open(tmp_path / "two")).fit(resume=True)
    assert resumed["steps"] == 8 and resumed["train_cpu_seconds"] == 8.0
    with pytest.raises(InputError, match="max_cpu_seconds"):
        tiny_digits(max_cpu_seconds=0)
