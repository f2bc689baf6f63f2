"""Batching token streams for language models, and padding variable-length sequences.

Truncated BPTT (char-rnn, AWD-LSTM): :func:`batchify` lays a stream of ``N`` ids out as ``B`` contiguous
columns, ``(n_steps, B)``, so column ``b`` continues from one chunk to the next and a hidden state can be carried
across chunks; :func:`bptt_chunks` then walks it in chunks of ``T`` steps with targets shifted by one.
:func:`lm_chunks` cuts a stream into independent ``(N, T)`` input/target rows for shuffled mini-batches.

The functions slice whatever they are given (numpy arrays or torch tensors) and return the same kind.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

import numpy as np

from rnnlab.errors import InputError

A = TypeVar("A")  # np.ndarray or torch.Tensor


def batchify(ids: A, batch_size: int) -> A:
    """``(N,)`` ids -> ``(n_steps, B)`` with ``n_steps = N // B``; column ``b`` is ``ids[b*n_steps:(b+1)*n_steps]``.

    The ``N % B`` ids at the end are dropped. Raises InputError if a column would have fewer than 2 ids
    (no input/target pair).
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be at least 1, got {batch_size}")
    n = len(ids)  # type: ignore[arg-type]
    n_steps = n // batch_size
    if n_steps < 2:
        raise InputError(
            f"a stream of {n} tokens is too short for batch_size {batch_size}: need at least {2 * batch_size}"
        )
    columns = ids[: n_steps * batch_size].reshape(batch_size, n_steps).T  # type: ignore[index]  # (n_steps, B)
    return columns.contiguous() if hasattr(columns, "contiguous") else np.ascontiguousarray(columns)


def bptt_chunks(batched: A, seq_len: int) -> Iterator[tuple[A, A]]:
    """Walk ``(n_steps, B)`` in chunks: yields ``(inputs (T, B), targets (T, B))`` with ``targets[t] = inputs[t+1]``.

    Chunks start at ``0, T, 2T, ...``; the last one is shorter when ``n_steps - 1`` is not a multiple of ``T``.
    """
    if seq_len < 1:
        raise InputError(f"seq_len must be at least 1, got {seq_len}")
    n_steps = len(batched)  # type: ignore[arg-type]
    for start in range(0, n_steps - 1, seq_len):
        length = min(seq_len, n_steps - 1 - start)
        yield batched[start : start + length], batched[start + 1 : start + 1 + length]  # type: ignore[index]


def lm_chunks(ids: A, seq_len: int) -> tuple[A, A]:
    """``(N,)`` ids -> ``(inputs (M, T), targets (M, T))``: non-overlapping rows, targets shifted by one.

    ``M = (N - 1) // T``; the tail that does not fill a row is dropped. Raises InputError if ``M == 0``.
    """
    if seq_len < 1:
        raise InputError(f"seq_len must be at least 1, got {seq_len}")
    n = len(ids)  # type: ignore[arg-type]
    rows = (n - 1) // seq_len
    if rows < 1:
        raise InputError(f"a stream of {n} tokens is too short for seq_len {seq_len}: need at least {seq_len + 1}")
    span = rows * seq_len
    return ids[:span].reshape(rows, seq_len), ids[1 : span + 1].reshape(rows, seq_len)  # type: ignore[index]


#: what :func:`pad_sequences` drops from a sequence longer than ``max_len``: its end, its start, its middle
TRUNCATIONS = ("post", "pre", "head_tail")


def pad_sequences(
    sequences: Sequence[np.ndarray | Sequence[int]],
    *,
    pad_id: int,
    max_len: int | None = None,
    truncate: str = "post",
) -> tuple[np.ndarray, np.ndarray]:
    """Variable-length id sequences -> ``(ids (N, L) int64, lengths (N,) int64)``, right-padded with ``pad_id``.

    ``L`` is the longest length, capped at ``max_len``; longer sequences lose their end (``truncate="post"``),
    their beginning (``"pre"``) or their middle (``"head_tail"``: the first ``L // 4`` and the last ``L - L // 4``
    ids are kept, the split that Sun et al. 2019 found best for long texts). Empty sequences keep length 0 (the
    caller decides what they mean).
    """
    if truncate not in TRUNCATIONS:
        raise InputError(f"truncate must be one of {', '.join(TRUNCATIONS)}, got {truncate!r}")
    if max_len is not None and max_len < 1:
        raise InputError(f"max_len must be at least 1, got {max_len}")
    arrays = [np.asarray(s, dtype=np.int64).reshape(-1) for s in sequences]
    longest = max((len(a) for a in arrays), default=0)
    width = longest if max_len is None else min(longest, max_len)
    out = np.full((len(arrays), max(width, 1)), pad_id, dtype=np.int64)
    lengths = np.zeros(len(arrays), dtype=np.int64)
    for row, a in enumerate(arrays):
        if len(a) > width:
            head = width // 4 if truncate == "head_tail" else width if truncate == "post" else 0
            a = np.concatenate([a[:head], a[len(a) - (width - head) :]])
        out[row, : len(a)] = a
        lengths[row] = len(a)
    return out, lengths
