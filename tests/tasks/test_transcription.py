"""The CTC transcription tasks: strings made of real items of one split, the label error rate, learning on a
small sample."""

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pad_packed_sequence

from rnnlab.errors import InputError
from rnnlab.tasks import get_task
from rnnlab.tasks.handwriting import Handwriting, image_columns
from rnnlab.tasks.transcribe import Transcribe
from rnnlab.tasks.transcription import edit_distance, transcription_sums
from rnnlab.train import Trainer, build_config


def test_edit_distance_and_sums():
    assert edit_distance([1, 2, 3], [1, 3]) == 1
    assert edit_distance([], [4, 4]) == 2
    assert edit_distance([1, 2], [2, 1]) == 2
    assert edit_distance("kitten", "sitting") == 3
    sums = transcription_sums([[1, 2], [3], []], [[1, 2], [4], [5, 6]])
    assert sums == {"label_error_rate": (3, 5), "string_accuracy": (1, 3)}


def test_strings_are_items_of_their_split_with_gaps():
    task = Transcribe(max_digits=3, min_gap=2, max_gap=2)
    assert get_task("transcribe") is Transcribe and task.input_size == 13
    items, digits = task.pool("test")
    strings = task.draw_strings("test", 20, torch.Generator().manual_seed(0))
    gap = torch.from_numpy(task.gap_frame())
    for frames, labels in strings:
        assert 1 <= len(labels) <= 3
        assert torch.equal(frames[:2], gap.expand(2, -1)) and torch.equal(frames[-2:], gap.expand(2, -1))
        # the frames between the gaps are whole recordings of the test split with these digits
        t = 2
        for d in labels:
            match = [i for i, x in enumerate(items) if digits[i] == d and t + len(x) <= len(frames)
                     and torch.equal(frames[t:t + len(x)], torch.from_numpy(x))]
            assert match
            t += len(items[match[0]]) + 2
        assert t == len(frames)


def test_test_strings_use_items_never_seen_in_training():
    task = Handwriting(images="digits")
    train = {tuple(x.ravel().tolist()) for x in task.pool("train")[0]}
    test_items = task.pool("test")[0]
    assert not any(tuple(x.ravel().tolist()) in train for x in test_items)
    assert len(task.fixed_strings("test")) == 1000
    assert task.fixed_strings("test")[0][0].equal(Handwriting(images="digits").fixed_strings("test")[0][0])


def test_image_columns_trim_empty_edges():
    image = torch.zeros(4, 6).numpy()
    image[1, 2] = image[3, 4] = 1.0
    columns = image_columns(image)
    assert columns.shape == (3, 4) and columns[0, 1] == 1.0 and columns[2, 3] == 1.0
    assert image_columns(torch.zeros(4, 6).numpy()).shape == (1, 4)


def test_training_images_are_stretched_and_shifted_copies_and_evaluation_images_are_not():
    task = Handwriting()
    image = task.pool("train")[0][0]  # (C, 28) columns of a real MNIST digit
    C = image.shape[0]
    widths, shifts = set(), set()
    for seed in range(40):
        out = task.augment(image, torch.Generator().manual_seed(seed))
        assert out.shape[1] == 28 and round(0.8 * C) <= out.shape[0] <= round(1.25 * C)
        assert np.array_equal(out, task.augment(image, torch.Generator().manual_seed(seed)))  # seeded
        # every output column is an input column moved by one shift |s| <= 2 (zeros filling in)
        fits = [s for s in range(-2, 3) if all(any(np.array_equal(col, shifted(image[c], s)) for c in range(C))
                                               for col in out)]
        assert fits
        widths.add(out.shape[0])
        shifts.add(fits[0] if len(fits) == 1 else None)
    assert min(widths) < C < max(widths) and {-2, 2} <= shifts
    # training batches are augmented, the fixed evaluation strings are the pool's images as they are
    augmented = next(task.train_batches(8, seed=0)).inputs.data
    evaluated = task.fixed_strings("test")[:50]
    task.settings["augment"] = False
    assert task.augment(image, torch.Generator()) is image
    plain = next(task.train_batches(8, seed=0)).inputs.data
    assert augmented.shape != plain.shape or not torch.equal(augmented, plain)
    task._fixed.clear()
    pairs = zip(evaluated, task.fixed_strings("test")[:50], strict=True)
    assert all(torch.equal(x, y) and dx == dy for (x, dx), (y, dy) in pairs)


def shifted(column, s):
    out = np.roll(column, s)
    if s > 0:
        out[:s] = 0
    elif s < 0:
        out[s:] = 0
    return out


def test_batches_and_metrics_of_a_perfect_transcription():
    task = Handwriting(images="digits", max_digits=4)
    batch = next(task.eval_batches("valid", 16))
    padded, lengths = pad_packed_sequence(batch.inputs)
    assert torch.equal(lengths, batch.lengths)
    assert batch.targets.tolist() == [d + 1 for ds in batch.extra["digits"] for d in ds]
    # outputs whose best path spells the truth: each digit's label on the first frame, blank elsewhere
    outputs = torch.full((padded.shape[0], 16, 11), -20.0)
    outputs[..., 0] = 0.0
    for b, ds in enumerate(batch.extra["digits"]):
        for t, d in enumerate(ds):
            outputs[2 * t, b, 0], outputs[2 * t, b, d + 1] = -20.0, 0.0
    sums = task.metric_sums(outputs.log_softmax(-1), batch)
    assert sums["label_error_rate"][0] == 0 and sums["string_accuracy"] == (16, 16)
    baseline = task.baseline()
    assert baseline["label_error_rate"] > 0.7 and baseline["string_accuracy"] < 0.1


def test_bad_options():
    with pytest.raises(InputError, match="--min-digits .5. must not exceed --max-digits .3."):
        Transcribe(min_digits=5, max_digits=3)
    with pytest.raises(InputError, match="--images expects one of mnist, digits"):
        Handwriting(images="letters")


@pytest.mark.parametrize("task,options,hidden,steps,at_most", [
    ("handwriting", {"images": "digits", "max_digits": 3}, 64, 400, 0.75),
    ("transcribe", {"max_digits": 3}, 64, 150, 0.5)])
def test_a_short_run_learns_to_transcribe(task, options, hidden, steps, at_most, monkeypatch):
    monkeypatch.setattr(get_task(task), "eval_sizes", {"train": 100, "valid": 100, "test": 200})
    config = build_config(task, options, {"hidden_size": hidden, "steps": steps, "eval_every": steps,
                                          "batch_size": 16, "lr": 1e-2, "schedule": "constant"})
    results = Trainer(config).fit()
    metrics, baseline = results["metrics"], results["baseline"]
    assert metrics["test_label_error_rate"] < at_most < 0.9 < baseline["test_label_error_rate"]
    assert metrics["test_string_accuracy"] > baseline["test_string_accuracy"] + 0.1
