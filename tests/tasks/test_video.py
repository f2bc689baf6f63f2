"""The video task: deterministic Moving MNIST from the split's own digits, what the model sees, the copy baseline,
the predictions strip, and a short learning run."""

import numpy as np
import pytest
import torch

from rnnlab.data.video import mnist_digits, moving_mnist
from rnnlab.errors import InputError
from rnnlab.tasks.video import FRAMES_IN, Video
from rnnlab.train import Trainer, build_config
from rnnlab.train.rundir import RunDir


def test_moving_mnist_is_deterministic_and_bounces_inside_the_frame():
    digits = mnist_digits("test")[:5]
    a = moving_mnist(digits, 3, torch.Generator().manual_seed(1), frames=30)
    b = moving_mnist(digits, 3, torch.Generator().manual_seed(1), frames=30)
    assert a.shape == (3, 30, 64, 64) and a.dtype == np.uint8 and np.array_equal(a, b)
    assert not np.array_equal(a, moving_mnist(digits, 3, torch.Generator().manual_seed(2), frames=30))
    ink = a.reshape(3, 30, -1).astype(np.int64).sum(-1)  # (3, 30): digits never leave the frame
    assert (ink > 0.5 * ink.max(axis=1, keepdims=True)).all()
    one = moving_mnist(digits[:1], 1, torch.Generator().manual_seed(0), frames=2, n_digits=1)
    assert one[0, 0].sum() == digits[0].astype(np.int64).sum()  # a digit pasted whole


def test_splits_use_their_own_digits_and_the_model_never_sees_the_future():
    task = Video()
    train, test = mnist_digits("train"), mnist_digits("test")
    assert not {d.tobytes() for d in test} & {d.tobytes() for d in train}  # disjoint digit images
    test_set = task.data("test").tensors[0]
    assert torch.equal(test_set, Video().data("test").tensors[0])  # fixed, whatever the run
    batch = task.collate("test", torch.arange(2))
    assert batch.inputs.shape == (20, 2, 1, 64, 64) and batch.targets.shape == (10, 2, 64, 64)
    assert batch.inputs[FRAMES_IN:].abs().sum() == 0  # the frames to predict are blank
    torch.testing.assert_close(batch.targets, test_set[:2, FRAMES_IN:].transpose(0, 1).float() / 255)
    with pytest.raises(InputError, match="vanilla lstm only"):
        Trainer(build_config("video", {}, {"variant": "peephole"}))
    with pytest.raises(InputError, match="do not take zoneout"):
        Trainer(build_config("video", {}, {"layer_options": {"zoneout": 0.1}}))


def test_a_short_run_learns_and_writes_the_strip(tmp_path, monkeypatch):
    monkeypatch.setattr(Video, "eval_sizes", {"train": 8, "valid": 16, "test": 16})
    config = build_config("video", {}, {"hidden_size": 8, "steps": 20, "batch_size": 8, "eval_every": 20,
                                        "lr": 1e-2})
    trainer = Trainer(config, RunDir.create(tmp_path / "run"))
    before = trainer.evaluate("test")["bce_per_frame_nats"]
    results = trainer.fit()
    after = results["metrics"]["test_bce_per_frame_nats"]
    assert after < before - 500  # from the 0.69 nats/pixel of an untrained model towards the digits' sparsity
    assert {"test_bce_per_frame_nats", "test_mse_per_frame", "test_mean_frame_bce_per_frame_nats",
            "test_copy_blend"} <= set(results["baseline"])
    from PIL import Image

    with Image.open(tmp_path / "run" / "predictions.png") as strip:
        assert strip.size == (640, 9 * 64)


def test_each_cell_family_gets_its_convolutional_layer():
    import rnnlab
    from rnnlab.tasks.model import build_model

    task = Video()
    for cell, kind in (("lstm", rnnlab.ConvLSTM), ("gru", rnnlab.ConvGRU), ("rnn", rnnlab.ConvRNN)):
        model = build_model(task, cell, 4)
        assert type(model.layer) is kind and model.layer.kernel_size == 3
        frames = torch.zeros(20, 2, 1, 64, 64)
        assert model(frames)[0].shape == (10, 2, 64, 64)
    with pytest.raises(InputError, match="convolutional layers of the cells lstm, gru, rnn"):
        build_model(task, "clockwork", 4)
