import json
import math

import numpy as np
import pytest
import torch

from rnnlab.data.music import N_KEYS
from rnnlab.errors import InputError
from rnnlab.tasks import get_task
from rnnlab.tasks.music import Music, key_frequencies
from rnnlab.train import Trainer, build_config

from .conftest import SHARED_DATA

JSB = SHARED_DATA / "polyphonic" / "jsb_chorales.json"
needs_jsb = pytest.mark.skipif(not JSB.is_file(), reason="reference data ../shared/data absent (a user's clone)")

# Two test pieces of 3 and 2 steps: 2 + 1 = 3 predicted steps, with 2, 0 and 3 sounding notes.
TINY = {
    "train": [[[60, 64], [60], [62, 65, 69], []], [[60], [67]]],
    "valid": [[[60], [62]]],
    "test": [[[60], [60, 64], []], [[60, 64, 67], [62, 64, 67]]],
}


@pytest.fixture
def tiny(write):
    return write("tiny.json", json.dumps(TINY))


def test_registered_with_its_metric():
    assert get_task("music") is Music
    assert Music.monitor == "nll_nats" and not Music.higher_is_better and not Music.allows_bidirectional


def test_batches_predict_the_next_step_and_mask_the_padding(tiny):
    task = Music(data=str(tiny))
    batch = task.collate("test", torch.tensor([0, 1]))
    assert batch.inputs.shape == (2, 2, N_KEYS) and batch.targets.shape == (2, 2, N_KEYS)
    assert batch.lengths.tolist() == [2, 1]
    assert batch.mask.tolist() == [[True, True], [True, False]]
    key = {n: n - 21 for n in (60, 62, 64, 67)}
    assert torch.nonzero(batch.inputs[0, 0]).flatten().tolist() == [key[60]]  # step 0 of piece 0
    assert torch.nonzero(batch.targets[0, 0]).flatten().tolist() == [key[60], key[64]]  # its step 1
    assert batch.targets[1, 0].sum() == 0  # its step 2 is a rest
    assert torch.nonzero(batch.targets[0, 1]).flatten().tolist() == [key[62], key[64], key[67]]
    assert batch.inputs[1, 1].sum() == 0 and batch.targets[1, 1].sum() == 0  # padding


def test_nll_per_step_against_a_hand_computed_value(tiny):
    """Constant p = 1/4 for every key: a step with n sounding notes costs -n log p - (88 - n) log(1 - p) nats.
    The metric is the mean over the 3 predicted steps of both pieces (not the mean of per-piece means)."""
    task = Music(data=str(tiny))

    def step(n):
        return -n * math.log(0.25) - (88 - n) * math.log(0.75)

    expected = (step(2) + step(0) + step(3)) / 3
    assert abs(expected - (step(2) + step(0)) / 4 - step(3) / 2) > 0.3  # the two normalisations differ here
    logit = math.log(0.25 / 0.75)
    for batch_size in (1, 2):
        got = task.evaluate_predictor(lambda b: torch.full_like(b.targets, logit), "test", batch_size)
        assert got["nll_nats"] == pytest.approx(expected, rel=1e-6)


def test_loss_is_the_metric_of_the_batch(tiny):
    task = Music(data=str(tiny))
    batch = task.collate("test", torch.tensor([0, 1]))
    logits = torch.randn(batch.targets.shape)
    total, count = task.metric_sums(logits, batch)["nll_nats"]
    assert count == 3
    assert task.loss(logits, batch).item() == pytest.approx(total / count, rel=1e-6)


def test_baseline_is_independent_bernoulli_with_smoothed_training_frequencies(tiny):
    task = Music(data=str(tiny))
    frames = 6  # the training pieces have 4 + 2 steps
    p = key_frequencies(task.music.train).double()
    assert p[60 - 21].item() == pytest.approx((3 + 1) / (frames + 2))  # C4 sounds in 3 training frames
    assert p[21 - 21].item() == pytest.approx(1 / (frames + 2))  # A0 never: still a finite likelihood
    targets = [{60, 64}, set(), {62, 64, 67}]  # the test pieces' predicted steps
    by_hand = 0.0
    for notes in targets:
        for k in range(N_KEYS):
            prob = p[k].item()
            by_hand -= math.log(prob) if (k + 21) in notes else math.log(1 - prob)
    assert task.baseline()["nll_nats"] == pytest.approx(by_hand / 3, rel=1e-5)


def test_head_starts_from_the_baseline(tiny):
    task = Music(data=str(tiny))
    head = task.build_head(8, 1)
    expected = torch.logit(key_frequencies(task.music.train))
    assert torch.allclose(head.linear.bias, expected)


def test_bad_files_fail_at_construction_with_one_line(write):
    with pytest.raises(InputError, match="expected a JSON object"):
        Music(data=str(write("list.json", "[[60], [62]]")))
    with pytest.raises(InputError, match=r"missing valid, test"):
        Music(data=str(write("keys.json", json.dumps({"train": TINY["train"]}))))
    with pytest.raises(InputError, match="not valid JSON"):
        Music(data=str(write("broken.json", '{"train": [')))
    empty = dict(TINY, test=[[[60], [62]], []])
    with pytest.raises(InputError, match=r"test\[1\] is empty"):
        Music(data=str(write("empty.json", json.dumps(empty))))
    short = dict(TINY, valid=[[[60]]])
    with pytest.raises(InputError, match=r"valid\[0\] has 1 time step; next-step prediction needs at least 2"):
        Music(data=str(write("short.json", json.dumps(short))))
    with pytest.raises(InputError, match="file not found"):
        Music(data=str(SHARED_DATA / "no-such-file.json"))
    with pytest.raises(InputError, match=r"--output-dropout expects a value in \[0, 1\)"):
        Music(data=str(write("ok.json", json.dumps(TINY))), output_dropout=1.0)


def _trainer(steps, **options):
    overrides = {"hidden_size": 24, "steps": steps, "batch_size": 16, "eval_every": steps,
                 "patience": None, "lr": 1e-2}
    return Trainer(build_config("music", {"data": str(JSB), **options}, overrides))


@needs_jsb
def test_a_short_run_on_jsb_chorales_lowers_the_nll():
    trainer = _trainer(12, input_dropout=0.0, output_dropout=0.0)
    before = trainer.evaluate("valid")["nll_nats"]
    results = trainer.fit()
    after = trainer.evaluate("valid")["nll_nats"]
    assert after < before - 0.3, (before, after)
    assert results["metrics"]["test_nll_nats"] < results["baseline"]["test_nll_nats"]
    assert 10.0 < results["baseline"]["test_nll_nats"] < 12.0  # independent keys on JSB: about 11.1 nats


@needs_jsb
def test_training_batches_are_bucketed_by_length_and_cover_the_epoch():
    task = Music(data=str(JSB))
    per_epoch = task.steps_per_epoch(16)
    stream = task.train_batches(16, seed=3)
    seen = []
    padded = real = 0
    for _ in range(per_epoch):
        batch = next(stream)
        seen.append(batch.size)
        padded += batch.mask.numel()
        real += int(batch.mask.sum())
    assert sum(seen) == task.split_size("train")
    assert real / padded > 0.9  # similar lengths share a batch
    again = task.train_batches(16, seed=3, start_step=per_epoch - 1)
    last = next(task.train_batches(16, seed=3, start_step=per_epoch - 1))
    assert torch.equal(next(again).inputs, last.inputs)  # batch s depends on (seed, s) only


def test_generate_samples_a_piano_roll_and_writes_midi(tiny, tmp_path):
    task = Music(data=str(tiny))
    trainer = Trainer(build_config("music", {"data": str(tiny)}, {"hidden_size": 8, "steps": 1}))
    model = trainer.model
    roll = task.generate(model, length=20, seed=1)
    assert roll.shape == (20, N_KEYS) and set(np.unique(roll)) <= {0.0, 1.0}
    firsts = {tuple(np.flatnonzero(r[0])) for r in task.music.train}
    assert tuple(np.flatnonzero(roll[0])) in firsts  # starts from a training chord
    assert np.array_equal(roll, task.generate(model, length=20, seed=1))
    assert model.training  # the model's mode is restored
    path = task.write_generated(roll, tmp_path / "out.mid")
    assert path.read_bytes()[:4] == b"MThd"
    with pytest.raises(InputError, match="--length expects a positive number"):
        task.generate(model, length=0)
    with pytest.raises(InputError, match="does not take prompt"):
        task.generate(model, length=5, prompt="x")


def test_generation_steps_equal_the_full_run(tiny):
    """Sampling carries the layer's state one step at a time; the same steps run at once give the same logits."""
    trainer = Trainer(build_config("music", {"data": str(tiny)}, {"hidden_size": 8, "steps": 1}))
    model = trainer.model.eval()
    task = trainer.task
    roll = torch.from_numpy(task.generate(model, length=6, seed=2))
    with torch.no_grad():
        full, _ = model(roll[:-1].unsqueeze(1), None)  # (5, 1, 88)
        state, stepped = None, []
        for t in range(5):
            out, state = model(roll[t].view(1, 1, N_KEYS), state)
            stepped.append(out[0])
    assert torch.allclose(full[:, 0], torch.cat(stepped), atol=1e-5)


@pytest.mark.slow
def test_builtin_bach_chorales():
    task = Music()
    assert task.music.name == "bach_chorales" and len(task.music.train) > 150
    assert 8.0 < task.baseline()["nll_nats"] < 16.0
