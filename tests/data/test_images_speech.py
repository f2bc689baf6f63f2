import numpy as np
import pytest

from rnnlab.data.images import load_mnist
from rnnlab.data.scaling import Standardizer
from rnnlab.data.speech import load_spoken_digits, read_spoken_digits
from rnnlab.data.split import take
from rnnlab.errors import InputError


def test_mnist_rows_layout_split_and_scale():
    data = load_mnist(layout="rows", valid_fraction=0.1, test_fraction=0.2, seed=0)
    assert data.name == "mnist" and data.classes == [str(d) for d in range(10)]
    assert data.train.inputs.shape == (3500, 28, 28) and data.train.inputs.dtype == np.float32
    assert data.valid.inputs.shape == (500, 28, 28) and data.test.inputs.shape == (1000, 28, 28)
    assert data.train.inputs.min() == 0.0 and data.train.inputs.max() == 1.0
    assert np.bincount(data.test.labels).tolist() == [100] * 10
    again = load_mnist(seed=0)
    assert np.array_equal(again.test.inputs, data.test.inputs)
    assert not np.array_equal(load_mnist(seed=1).test.inputs, data.test.inputs)


def test_mnist_pixels_and_fixed_permutation():
    rows = load_mnist(layout="rows")
    pixels = load_mnist(layout="pixels")
    assert pixels.name == "smnist" and pixels.train.inputs.shape == (3500, 784, 1)
    assert np.array_equal(pixels.train.inputs[:, :, 0], rows.train.inputs.reshape(3500, 784))
    permuted = load_mnist(layout="pixels", permute=True, permutation_seed=7)
    assert permuted.name == "pmnist" and sorted(permuted.permutation.tolist()) == list(range(784))
    assert np.array_equal(permuted.train.inputs[:, :, 0], pixels.train.inputs[:, permuted.permutation, 0])
    assert np.array_equal(load_mnist(layout="pixels", permute=True, permutation_seed=7).permutation,
                          permuted.permutation)


def test_mnist_errors():
    with pytest.raises(InputError, match="layout must be one of rows, pixels; got 'columns'"):
        load_mnist(layout="columns")
    with pytest.raises(InputError, match="permute=True applies to layout 'pixels'"):
        load_mnist(layout="rows", permute=True)


def test_spoken_digits_file():
    sequences, labels = read_spoken_digits()
    assert len(sequences) == 3000 and np.bincount(labels).tolist() == [300] * 10
    assert all(s.ndim == 2 and s.shape[1] == 13 for s in sequences)
    assert min(len(s) for s in sequences) == 6 and max(len(s) for s in sequences) == 92


def test_spoken_digits_split_and_train_only_standardisation():
    data = load_spoken_digits(valid_fraction=0.1, test_fraction=0.2, seed=0)
    assert (len(data.train), len(data.valid), len(data.test)) == (2100, 300, 600)
    assert np.bincount(data.test.labels).tolist() == [60] * 10
    train_frames = np.concatenate(data.train.inputs)
    assert np.allclose(train_frames.mean(0), 0, atol=1e-4) and np.allclose(train_frames.std(0), 1, atol=1e-3)
    again = load_spoken_digits(valid_fraction=0.1, test_fraction=0.2, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(again.test.inputs, data.test.inputs, strict=True))


def test_spoken_digits_scaler_is_fitted_on_train_only():
    from rnnlab.data.split import split_indices

    raw, labels = read_spoken_digits()
    parts = split_indices(len(labels), valid_fraction=0.1, test_fraction=0.2, seed=0, stratify=labels)
    expected = Standardizer.fit(take(raw, parts.train))
    data = load_spoken_digits(valid_fraction=0.1, test_fraction=0.2, seed=0)
    assert np.allclose(data.scaler.mean, expected.mean) and np.allclose(data.scaler.scale, expected.scale)
    assert not np.allclose(Standardizer.fit(raw).mean, expected.mean)
