import pytest
import torch
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

from rnnlab.tasks import get_task
from rnnlab.tasks.speech import Speech
from rnnlab.train import Trainer, build_config


def test_packed_batches_of_recordings():
    task = Speech()
    assert get_task("speech") is Speech and task.input_size == 13
    assert [task.split_size(s) for s in ("train", "valid", "test")] == [2100, 300, 600]
    batch = task.collate("test", torch.tensor([0, 5, 9]))
    assert isinstance(batch.inputs, PackedSequence)
    padded, lengths = pad_packed_sequence(batch.inputs)  # original order restored
    expected = [task.data("test")[i][0] for i in (0, 5, 9)]
    assert lengths.tolist() == [len(x) for x in expected] == batch.lengths.tolist()
    for b, x in enumerate(expected):
        assert torch.equal(padded[: len(x), b], x)
    assert batch.targets.tolist() == [task.data("test")[i][1] for i in (0, 5, 9)]


def test_head_reads_each_recordings_last_frame():
    task = Speech()
    head = task.build_head(4, 1)
    batch = task.collate("test", torch.tensor([0, 1]))
    features = batch.inputs._replace(data=batch.inputs.data[:, :4])  # the first 4 MFCCs as "outputs"
    padded, lengths = pad_packed_sequence(features)
    last = torch.stack([padded[lengths[b] - 1, b] for b in range(2)])
    assert torch.allclose(head(features), head.linear(last))


def test_evaluation_covers_every_recording_once():
    task = Speech()
    labels = torch.cat([b.targets for b in task.eval_batches("valid", 64)])
    assert len(labels) == 300 and sorted(labels.tolist()) == sorted(y for _, y in task.data("valid"))
    assert task.baseline()["accuracy"] == pytest.approx(0.1)


def test_a_short_run_learns():
    config = build_config("speech", {}, {"hidden_size": 32, "steps": 50, "eval_every": 50,
                                         "patience": None, "lr": 1e-2})
    trainer = Trainer(config)
    before = trainer.evaluate("valid")
    results = trainer.fit()
    after = trainer.evaluate("valid")
    assert after["nll_nats"] < before["nll_nats"] - 0.5
    assert results["metrics"]["test_accuracy"] > 0.4
