import numpy as np
import pytest

from rnnlab.data.scaling import Standardizer
from rnnlab.data.split import chronological_split, split_indices, take
from rnnlab.errors import InputError


def test_split_is_a_seeded_partition():
    a = split_indices(100, valid_fraction=0.1, test_fraction=0.2, seed=3)
    b = split_indices(100, valid_fraction=0.1, test_fraction=0.2, seed=3)
    c = split_indices(100, valid_fraction=0.1, test_fraction=0.2, seed=4)
    assert (len(a.train), len(a.valid), len(a.test)) == (70, 10, 20)
    assert np.array_equal(np.sort(np.concatenate([a.train, a.valid, a.test])), np.arange(100))
    for name in ("train", "valid", "test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.test, c.test)


def test_stratified_split_keeps_class_proportions():
    labels = np.array([0] * 80 + [1] * 20)
    parts = split_indices(100, valid_fraction=0.1, test_fraction=0.2, seed=0, stratify=labels)
    assert np.bincount(labels[parts.valid]).tolist() == [8, 2]
    assert np.bincount(labels[parts.test]).tolist() == [16, 4]
    assert np.bincount(labels[parts.train]).tolist() == [56, 14]


def test_split_errors():
    with pytest.raises(InputError, match=r"valid_fraction must be in \[0, 1\); got 1.5"):
        split_indices(10, valid_fraction=1.5, test_fraction=0.0, seed=0)
    with pytest.raises(InputError, match="valid_fraction \\+ test_fraction must be below 1"):
        split_indices(10, valid_fraction=0.5, test_fraction=0.5, seed=0)
    with pytest.raises(InputError, match="valid_fraction 0.1 of 3 rows gives an empty valid split"):
        split_indices(3, valid_fraction=0.1, test_fraction=0.0, seed=0)
    with pytest.raises(InputError, match="expected 5 labels to stratify on, got 4"):
        split_indices(5, valid_fraction=0.2, test_fraction=0.0, seed=0, stratify=[0, 1, 0, 1])


def test_chronological_split_is_contiguous_and_ordered():
    parts = chronological_split(10, valid_fraction=0.2, test_fraction=0.3)
    assert parts.train.tolist() == [0, 1, 2, 3, 4]
    assert parts.valid.tolist() == [5, 6]
    assert parts.test.tolist() == [7, 8, 9]


def test_take_lists_and_arrays():
    idx = np.array([2, 0])
    assert take(["a", "b", "c"], idx) == ["c", "a"]
    assert take(np.array([5, 6, 7]), idx).tolist() == [7, 5]


def test_standardizer_round_trip_and_state():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(50, 3))
    x[:, 2] = 7.0  # constant channel: centred, not divided by zero
    scaler = Standardizer.fit(x)
    z = scaler.transform(x)
    assert np.allclose(z[:, :2].mean(0), 0) and np.allclose(z[:, :2].std(0), 1)
    assert np.allclose(z[:, 2], 0) and scaler.scale[2] == 1.0
    assert np.allclose(scaler.inverse_transform(z), x)
    again = Standardizer.from_dict(scaler.to_dict())
    assert np.array_equal(again.mean, scaler.mean) and np.array_equal(again.scale, scaler.scale)


def test_standardizer_pools_a_list_of_sequences_and_ignores_nan():
    seqs = [np.array([[0.0], [2.0]]), np.array([[4.0], [np.nan]])]
    scaler = Standardizer.fit(seqs)
    assert scaler.mean.tolist() == [2.0]
    assert np.isclose(scaler.scale[0], np.std([0.0, 2.0, 4.0]))
    assert scaler.transform(np.array([[2.0]], dtype=np.float32)).dtype == np.float32


def test_standardizer_errors():
    scaler = Standardizer.fit(np.ones((4, 2)))
    with pytest.raises(InputError, match=r"expected 2 channels in the last axis, got shape \(4, 3\)"):
        scaler.transform(np.ones((4, 3)))
    with pytest.raises(InputError, match="channel 1 has no finite value"):
        Standardizer.fit(np.array([[1.0, np.nan], [2.0, np.nan]]))
    with pytest.raises(InputError, match="expected a scaler dict"):
        Standardizer.from_dict({"mean": [0.0]})
