"""The CTC transcription tasks: strings made of real items of one split, the label error rate, learning on a
small sample."""

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
