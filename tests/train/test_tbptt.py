"""Truncated BPTT: the trainer carries the state, detached, across batches that continue each other."""

import pytest
import torch
import torch.nn.functional as F

from rnnlab.tasks import Batch, Task
from rnnlab.tasks import base as task_base
from rnnlab.tasks.heads import EveryStep
from rnnlab.train import RunDir, Trainer
from rnnlab.train.config import build_config

CHUNK, CHUNKS, DELAY, SYMBOLS = 5, 4, 3, 4


class Echo(Task):
    """Streams of random symbols cut in chunks; the target at step t is the symbol of step t - DELAY,
    which for the first steps of a chunk lies in the previous chunk: only a carried state can know it."""

    name = "echo_probe"
    summary = "test task"
    monitor = "nll_nats"
    input_size = SYMBOLS

    def _stream(self, seed, n):  # (CHUNK*CHUNKS, n) symbols
        return torch.randint(0, SYMBOLS, (CHUNK * CHUNKS, n), generator=torch.Generator().manual_seed(seed))

    def _chunk(self, stream, c):
        ids = stream[c * CHUNK : (c + 1) * CHUNK]  # (CHUNK, B)
        full = torch.cat([torch.zeros(DELAY, stream.shape[1], dtype=torch.long), stream])
        targets = full[c * CHUNK : (c + 1) * CHUNK]  # the symbols DELAY steps back
        return Batch(inputs=F.one_hot(ids, SYMBOLS).float(), targets=targets, reset_state=c == 0)

    def train_batches(self, batch_size, seed, start_step=0):
        step = start_step
        while True:
            epoch, c = divmod(step, CHUNKS)
            yield self._chunk(self._stream(1000 * seed + epoch, batch_size), c)
            step += 1

    def eval_batches(self, split, batch_size):
        stream = self._stream({"train": -1, "valid": -2, "test": -3}[split] % 997, 64)
        for c in range(CHUNKS):
            yield self._chunk(stream, c)

    def steps_per_epoch(self, batch_size):
        return CHUNKS

    def build_head(self, features, num_directions):
        return EveryStep(features, SYMBOLS)

    def loss(self, outputs, batch):
        return F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten())

    def metric_sums(self, outputs, batch):
        nll = F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten(), reduction="sum")
        return {"nll_nats": (nll.item(), batch.targets.numel())}

    def baseline(self):
        return self.evaluate_predictor(lambda b: torch.zeros(*b.targets.shape, SYMBOLS))


@pytest.fixture
def echo(monkeypatch):
    monkeypatch.setitem(task_base._REGISTRY, Echo.name, Echo)
    return build_config(Echo.name, {}, {"cell": "gru", "hidden_size": 16, "steps": 12, "batch_size": 8,
                                        "eval_every": 6, "log_every": 2, "lr": 0.01})


def test_state_is_carried_and_detached(echo):
    trainer = Trainer(echo)
    received, returned = [], []
    layer_forward = trainer.model.layer.forward

    def spy(x, hx=None):
        output, state = layer_forward(x, hx)
        if trainer.model.layer.training:  # training steps only: not the warm-up or validation passes
            received.append(hx)
            returned.append(state)
        return output, state

    trainer.model.layer.forward = spy
    trainer.fit(until=CHUNKS + 1)
    training = received
    assert len(training) == CHUNKS + 1
    assert training[0] is None and training[CHUNKS] is None  # a new stream starts from zeros
    for k in range(1, CHUNKS):
        assert not training[k].requires_grad  # detached: backprop stops at the chunk boundary
        torch.testing.assert_close(training[k], returned[k - 1].detach())


def test_resume_mid_stream_restores_the_carried_state(echo, tmp_path):
    config = echo

    def train(path, **fit):
        run = RunDir.create(path)
        run.write_config(config.to_dict())
        return Trainer(config, run).fit(**fit)

    whole = train(tmp_path / "whole")
    train(tmp_path / "cut", until=7)  # mid-stream: the checkpoint must hold the carried state
    resumed = Trainer(config, RunDir.open(tmp_path / "cut")).fit(resume=True)
    assert resumed["metrics"] == whole["metrics"]
