"""Checkpoints: atomic writes, safe reads, RNG capture; run directories."""

import os
import pickle
import random

import numpy as np
import pytest
import torch

from rnnlab.errors import InputError
from rnnlab.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from rnnlab.train.rundir import RunDir


def test_round_trip(tmp_path):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 3, "model": {"w": torch.ones(2)}, "best": None, "loss_window": [0.5, 2]})
    payload = load_checkpoint(path)
    assert payload["step"] == 3 and torch.equal(payload["model"]["w"], torch.ones(2))
    assert os.listdir(tmp_path) == ["c.pt"]  # no temporary file left behind


def test_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"step": 1})
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.pt"]


def test_corrupt_and_truncated_files_raise_input_error(tmp_path):
    good = tmp_path / "good.pt"
    save_checkpoint(good, {"step": 1, "model": {"w": torch.zeros(100)}})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[:200])
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint at all" * 10)
    for path in (truncated, garbage):
        with pytest.raises(InputError, match="cannot read checkpoint"):
            load_checkpoint(path)
    with pytest.raises(InputError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_foreign_files_raise_input_error(tmp_path):
    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.ones(1)}}, foreign)
    with pytest.raises(InputError, match="not an rnnlab checkpoint"):
        load_checkpoint(foreign)
    torch.save(torch.ones(3), foreign)
    with pytest.raises(InputError, match="not an rnnlab checkpoint"):
        load_checkpoint(foreign)


class _Exploit:
    def __reduce__(self):
        return (open, (str(_Exploit.target), "w"))


def test_loading_never_executes_code(tmp_path):
    _Exploit.target = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": "rnnlab-checkpoint", "version": 1, "x": _Exploit()}, evil, pickle_module=pickle)
    assert not (tmp_path / "pwned").exists()  # saving ran nothing
    with pytest.raises(InputError, match="cannot read checkpoint"):
        load_checkpoint(evil)
    assert not (tmp_path / "pwned").exists()


def test_rng_states_round_trip(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = capture_rng()
    path = tmp_path / "rng.pt"
    save_checkpoint(path, {"rng": state})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(load_checkpoint(path)["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1])
    assert random.random() == expected[2]


def test_run_dir_refuses_to_overwrite(tmp_path):
    run = RunDir.create(tmp_path / "run")
    run.write_config({"task": "x"})
    with pytest.raises(InputError, match="not empty; pass --resume"):
        RunDir.create(tmp_path / "run")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        RunDir.create(tmp_path / "file")
    with pytest.raises(InputError, match="cannot write the run directory"):
        RunDir.create(tmp_path / "file" / "run")
    with pytest.raises(InputError, match="not a run directory"):
        RunDir.open(tmp_path)


def test_rewind_metrics_keeps_earlier_records(tmp_path):
    run = RunDir.create(tmp_path / "run")
    for step in (5, 10, 15):
        run.log({"step": step, "loss": step / 10})
    with open(run.metrics_path, "a") as f:
        f.write('{"step": 20, "lo')  # a torn line from a killed process
    assert [r["step"] for r in run.read_metrics()] == [5, 10, 15]
    run.rewind_metrics(10)
    assert [r["step"] for r in run.read_metrics()] == [5, 10]
