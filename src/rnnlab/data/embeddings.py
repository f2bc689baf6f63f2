"""Word vectors from a corpus alone: a truncated SVD of its positive pointwise mutual information (PPMI).

With no pretrained vectors to download, this is how a text classifier trained on a few thousand texts starts
from embeddings that already place words used alike near each other (Levy, Goldberg & Dagan 2015: PPMI with
context-distribution smoothing and an SVD is on a par with word2vec on small corpora). Only the training split
may be used, as with the vocabulary.

``ppmi_svd_vectors`` counts co-occurrences within a symmetric window, weighs them by PPMI with the context
counts raised to ``alpha`` (0.75), and keeps the ``dim`` leading singular directions, ``U * sqrt(S)``, scaled to
unit standard deviation (the scale of ``nn.Embedding``'s default initialisation). Deterministic: the SVD starts
from a fixed vector.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rnnlab.errors import InputError

__all__ = ["ppmi_svd_vectors"]


def ppmi_svd_vectors(
    sequences: Sequence[np.ndarray],
    vocab_size: int,
    dim: int,
    *,
    window: int = 5,
    alpha: float = 0.75,
    skip: Sequence[int] = (),
) -> np.ndarray:
    """``(vocab_size, dim) float32`` word vectors from id sequences (the training texts).

    Args:
        sequences: one ``(L,) int`` array of token ids per text; ids in ``[0, vocab_size)``.
        vocab_size: number of ids.
        dim: vector size; must be below ``vocab_size``.
        window: co-occurrence window, in tokens on each side.
        alpha: context-distribution smoothing exponent.
        skip: ids whose vectors are zero and that count as no context (``<pad>``).

    Ids that never co-occur with anything get zero vectors.
    """
    import scipy.sparse as sparse  # imported here: only this initialisation needs scipy
    from scipy.sparse.linalg import svds

    if not 1 <= dim < vocab_size:
        raise InputError(f"embedding size must be in [1, {vocab_size - 1}] for {vocab_size} words, got {dim}")
    left, right = [], []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        for distance in range(1, min(window, len(seq) - 1) + 1):
            left.append(seq[:-distance])
            right.append(seq[distance:])
    if not left:
        raise InputError("the training texts are too short to count co-occurrences (one token each)")
    rows, cols = np.concatenate(left), np.concatenate(right)
    if skip:
        keep = ~(np.isin(rows, skip) | np.isin(cols, skip))
        rows, cols = rows[keep], cols[keep]
    counts = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(vocab_size, vocab_size)).tocsr()
    counts = (counts + counts.T).tocoo()  # symmetric window
    total = counts.data.sum()
    word = np.asarray(counts.sum(axis=1)).ravel() / total  # P(w)
    context = np.asarray(counts.sum(axis=0)).ravel() ** alpha
    context = context / context.sum()  # smoothed P(c)
    pmi = np.log(counts.data / total / word[counts.row] / context[counts.col])
    positive = pmi > 0
    ppmi = sparse.csr_matrix(
        (pmi[positive], (counts.row[positive], counts.col[positive])), shape=(vocab_size, vocab_size)
    )
    start = np.random.default_rng(0).standard_normal(vocab_size)
    u, s, _ = svds(ppmi, k=dim, v0=start)
    vectors = u * np.sqrt(s)  # (V, dim)
    vectors /= vectors.std() + 1e-12
    vectors[list(skip)] = 0.0
    return vectors.astype(np.float32)
