import numpy as np
import pytest
import torch

from rnnlab.errors import InputError
from rnnlab.tasks import get_task
from rnnlab.tasks.mnist import MNIST
from rnnlab.train import Trainer, build_config


def test_rows_pixels_and_permuted_layouts():
    rows = MNIST()
    assert get_task("mnist") is MNIST and rows.input_size == 28
    assert [rows.split_size(s) for s in ("train", "valid", "test")] == [3500, 500, 1000]
    batch = rows.collate("test", torch.arange(5))
    assert batch.inputs.shape == (28, 5, 28) and batch.targets.shape == (5,)
    assert 0.0 <= batch.inputs.min() and batch.inputs.max() <= 1.0

    pixels = MNIST(pixels=True)
    assert pixels.input_size == 1
    seq = pixels.collate("test", torch.arange(5)).inputs  # (784, 5, 1)
    assert seq.shape == (784, 5, 1)
    assert torch.equal(seq.view(28, 28, 5).permute(2, 0, 1), batch.inputs.permute(1, 0, 2))  # same images

    permuted = MNIST(pixels=True, permute=True)
    again = MNIST(pixels=True, permute=True)
    order = permuted.images.permutation
    assert order is not None and sorted(order.tolist()) == list(range(784))
    assert np.array_equal(order, again.images.permutation)  # one fixed permutation
    shuffled = permuted.collate("test", torch.arange(5)).inputs
    assert torch.equal(shuffled[:, :, 0], seq[torch.from_numpy(order), :, 0])


def test_permute_needs_pixels():
    with pytest.raises(InputError, match="--permute permutes the 784 pixels: it needs --pixels"):
        MNIST(permute=True)
    with pytest.raises(InputError, match="--pixels expects bool"):
        MNIST(pixels="maybe")


def test_baseline_is_the_class_prior():
    baseline = MNIST().baseline()
    assert baseline["accuracy"] == pytest.approx(0.1)  # 100 test images of each digit
    assert baseline["nll_nats"] == pytest.approx(np.log(10), rel=1e-3)


def test_a_short_run_row_by_row_learns():
    config = build_config("mnist", {}, {"hidden_size": 32, "steps": 60, "eval_every": 60,
                                        "patience": None, "lr": 1e-2, "batch_size": 32})
    trainer = Trainer(config)
    before = trainer.evaluate("valid")
    results = trainer.fit()
    after = trainer.evaluate("valid")
    assert after["nll_nats"] < before["nll_nats"] - 0.5
    assert results["metrics"]["test_accuracy"] > 0.5  # from chance (0.1) in 60 steps
