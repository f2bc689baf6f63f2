"""PPMI-SVD word vectors: words used alike get similar vectors; deterministic; skipped ids; bad input."""

import numpy as np
import pytest

from rnnlab.data.embeddings import ppmi_svd_vectors
from rnnlab.errors import InputError


def _corpus(n_texts=300, seed=0):
    """Ids 1..4 are 'food' words, 5..8 'weather' words; each text mixes words of one topic with fillers 9..11."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n_texts):
        topic = rng.integers(2)
        words = rng.integers(1, 5, 12) + 4 * topic
        fillers = rng.integers(9, 12, 12)
        texts.append(np.stack([words, fillers], axis=1).ravel())
    return texts


def _cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_words_of_one_topic_are_closer_than_words_of_two():
    vectors = ppmi_svd_vectors(_corpus(), vocab_size=12, dim=4, skip=(0,))
    assert vectors.shape == (12, 4) and vectors.dtype == np.float32
    same = np.mean([_cosine(vectors[i], vectors[j]) for i in range(1, 5) for j in range(1, 5) if i != j])
    other = np.mean([_cosine(vectors[i], vectors[j]) for i in range(1, 5) for j in range(5, 9)])
    assert same > 0.5 > other


def test_deterministic_unit_scale_and_skipped_ids_are_zero():
    a = ppmi_svd_vectors(_corpus(), vocab_size=12, dim=4, skip=(0,))
    b = ppmi_svd_vectors(_corpus(), vocab_size=12, dim=4, skip=(0,))
    assert np.array_equal(a, b)
    assert np.all(a[0] == 0.0)
    assert a.std() == pytest.approx(1.0, rel=0.1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sequences": _corpus(5), "vocab_size": 12, "dim": 12},
         "embedding size must be in [1, 11] for 12 words, got 12"),
        ({"sequences": [np.array([3])], "vocab_size": 12, "dim": 4}, "too short to count co-occurrences"),
    ],
)
def test_bad_input(kwargs, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        ppmi_svd_vectors(**kwargs)
