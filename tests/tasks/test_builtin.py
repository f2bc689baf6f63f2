"""The built-in tasks: data shapes and contents, determinism of the streams, baselines, heads, the model."""

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_sequence

from rnnlab.tasks import get_task
from rnnlab.tasks.heads import EveryStep, LastStep, last_step
from rnnlab.tasks.model import build_model


def test_adding_batch_shapes_and_targets():
    task = get_task("adding")(seq_len=40)
    batch = next(task.train_batches(8, seed=0))
    assert batch.inputs.shape == (40, 8, 2) and batch.targets.shape == (8, 1)
    markers = batch.inputs[:, :, 1]  # (T, B)
    assert torch.equal(markers.sum(0), torch.full((8,), 2.0))
    assert torch.equal(markers[:20].sum(0), torch.ones(8))  # one marker in each half
    expected = (batch.inputs[:, :, 0] * markers).sum(0, keepdim=True).t()  # (B, 1)
    torch.testing.assert_close(batch.targets, expected)


def test_adding_baseline_is_predict_one():
    baseline = get_task("adding")(seq_len=50).baseline()
    assert set(baseline) == {"mse"}
    assert abs(baseline["mse"] - 1 / 6) < 0.015


def test_copy_batch_layout():
    task = get_task("copy")(seq_len=7, copy_len=3)
    batch = next(task.train_batches(5, seed=1))
    steps = 7 + 2 * 3
    assert batch.inputs.shape == (steps, 5, 10) and batch.targets.shape == (steps, 5)
    ids = batch.inputs.argmax(-1)  # (T+2K, B)
    assert ((ids[:3] >= 1) & (ids[:3] <= 8)).all()
    assert (ids[7 + 3 - 1] == 9).all()  # the delimiter
    assert (ids[3 : 7 + 3 - 1] == 0).all() and (ids[7 + 3 :] == 0).all()
    assert (batch.targets[: 7 + 3] == 0).all()
    assert torch.equal(batch.targets[-3:], ids[:3])


def test_copy_baseline_is_chance():
    T = 100
    baseline = get_task("copy")(seq_len=T).baseline()
    assert baseline["nll_nats"] == pytest.approx(10 * math.log(8) / (T + 20), rel=1e-6)
    assert abs(baseline["accuracy"] - 1 / 8) < 0.02


def test_digits_splits_and_batches():
    task = get_task("digits")()
    sizes = {s: task.split_size(s) for s in ("train", "valid", "test")}
    assert sizes == {"train": 1257, "valid": 180, "test": 360}
    batch = next(task.eval_batches("test", 32))
    assert batch.inputs.shape == (8, 32, 8) and batch.targets.shape == (32,)
    assert 0 <= batch.inputs.min() and batch.inputs.max() <= 1
    # the splits are disjoint: no test image appears in train
    train = task.data("train").tensors[0].flatten(1)
    test = task.data("test").tensors[0].flatten(1)
    assert torch.cdist(test, train).min(dim=1).values.gt(0).float().mean() > 0.95


def test_digits_baseline_is_majority_class():
    task = get_task("digits")()
    baseline = task.baseline()
    train_labels = task.data("train").tensors[1]
    test_labels = task.data("test").tensors[1]
    majority = torch.bincount(train_labels).argmax()
    assert baseline["accuracy"] == pytest.approx((test_labels == majority).float().mean().item())
    assert baseline["nll_nats"] > 2.0


def test_indexed_stream_epochs_and_resume():
    task = get_task("digits")()
    per_epoch = task.steps_per_epoch(100)
    assert per_epoch == 13
    stream = task.train_batches(100, seed=3)
    first_epoch = [next(stream).targets for _ in range(per_epoch)]
    assert sum(len(t) for t in first_epoch) == 1257  # every example once
    later = [next(stream).targets for _ in range(3)]
    resumed = task.train_batches(100, seed=3, start_step=per_epoch)
    for expected in later:
        assert torch.equal(next(resumed).targets, expected)
    other_seed = next(task.train_batches(100, seed=4)).targets
    assert not torch.equal(other_seed, first_epoch[0])


def test_synthetic_stream_is_a_function_of_seed_and_step():
    task = get_task("adding")(seq_len=10)
    a = task.train_batches(4, seed=0)
    batches = [next(a).inputs for _ in range(3)]
    assert torch.equal(next(task.train_batches(4, seed=0, start_step=2)).inputs, batches[2])
    assert not torch.equal(batches[0], batches[1])
    assert not torch.equal(next(task.train_batches(4, seed=1)).inputs, batches[0])
    # the fixed test set does not depend on any run's seed
    assert torch.equal(next(task.eval_batches("test", 4)).inputs, next(task.eval_batches("test", 4)).inputs)


def test_last_step_reads_each_length_and_both_directions():
    seqs = [torch.arange(1.0, 4.0).repeat(2, 1).t(), torch.arange(1.0, 6.0).repeat(2, 1).t()]  # (3, 2), (5, 2)
    packed = pack_sequence(seqs, enforce_sorted=False)
    out = last_step(packed, num_directions=1)
    assert torch.equal(out, torch.tensor([[3.0, 3.0], [5.0, 5.0]]))
    out = last_step(packed, num_directions=2)  # forward half at the end, backward half at step 0
    assert torch.equal(out, torch.tensor([[3.0, 1.0], [5.0, 1.0]]))
    assert LastStep(2, 4)(packed).shape == (2, 4)
    assert EveryStep(2, 4)(packed).shape == (5, 2, 4)


@pytest.mark.parametrize(
    ("task_name", "cell", "variant", "out_shape"),
    [("adding", "lstm", None, (4, 1)), ("copy", "gru", "mut1", (8, 4, 10)), ("digits", "rnn", "relu", (4, 10))],
)
def test_model_outputs_follow_the_head(task_name, cell, variant, out_shape):
    options = {"adding": {"seq_len": 6}, "copy": {"seq_len": 2, "copy_len": 3}, "digits": {}}[task_name]
    task = get_task(task_name)(**options)
    model = build_model(task, cell, 16, variant=variant)
    batch = next(task.train_batches(4, seed=0))
    outputs, state = model(batch.inputs)
    assert outputs.shape == out_shape
    assert task.loss(outputs, batch).dim() == 0
    assert isinstance(model.projection, torch.nn.Linear) == (variant == "mut1")


def test_bidirectional_model_on_whole_sequences():
    task = get_task("digits")()
    model = build_model(task, "gru", 8, bidirectional=True)
    outputs, _ = model(next(task.eval_batches("test", 4)).inputs)
    assert outputs.shape == (4, 10)
