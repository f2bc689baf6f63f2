"""Attention over a source sequence: additive (Bahdanau et al. 2015) and multiplicative (Luong et al. 2015).

A query ``q`` (a decoder state) scores every source position ``s`` against its key ``k_s``; the scores of the
valid positions go through a softmax; the context is the weighted sum of the values (here the keys themselves,
the encoder's outputs):

.. math::

    e_s = \\mathrm{score}(q, k_s), \\qquad
    \\alpha_s = \\frac{[m_s] \\exp e_s}{\\sum_{s'} [m_{s'}] \\exp e_{s'}}, \\qquad
    c = \\sum_s \\alpha_s v_s

with ``m`` the source mask (true at real tokens, false at padding), so padded positions get weight exactly 0 and
the weights of each query sum to 1. The scores:

- additive (Bahdanau): :math:`e_s = v^\\top \\tanh(W_q q + W_k k_s + b)`, ``W_q`` ``(A, Q)``, ``W_k`` ``(A, K)``,
  ``b`` and ``v`` ``(A,)``;
- multiplicative (Luong's *general*): :math:`e_s = q^\\top W k_s`, ``W`` ``(Q, K)``; with ``scaled=True``
  divided by :math:`\\sqrt{Q}`.

The part of a score that depends on the keys alone (``W_k k_s``, ``W k_s``) is computed once per source by
:meth:`Attention.project_keys` and reused at every decoding step.

Shape legend: ``B`` batch, ``S`` source steps, ``T`` query steps, ``Q`` query size, ``K`` key (= value) size,
``A`` attention size. Tensors are batch-first here: keys ``(B, S, K)``, mask ``(B, S)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from rnnlab.cells.base import check_positive_int
from rnnlab.errors import InputError

__all__ = ["ATTENTIONS", "AdditiveAttention", "Attention", "MultiplicativeAttention", "build_attention",
           "lengths_to_mask", "masked_softmax"]


def lengths_to_mask(lengths: Tensor, max_len: int | None = None) -> Tensor:
    """``(B,)`` lengths -> ``(B, S)`` bool mask, true at positions ``s < lengths[b]`` (``S`` = ``max_len`` or the
    longest length)."""
    S = int(lengths.max()) if max_len is None else max_len
    return torch.arange(S, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)  # (B, S)


def masked_softmax(scores: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax over the last axis of ``scores`` ``(B, T, S)`` with the positions where ``mask`` ``(B, S)`` is
    false given weight 0. Every row of the mask must hold a true position."""
    if mask is None:
        return scores.softmax(-1)
    return scores.masked_fill(~mask.unsqueeze(1), float("-inf")).softmax(-1)  # (B, T, S)


class Attention(nn.Module):
    """Base class: :meth:`project_keys` (once per source) and :meth:`score`; :meth:`forward` attends.

    Subclasses set ``query_size`` and ``key_size``.
    """

    query_size: int
    key_size: int

    def project_keys(self, keys: Tensor) -> Tensor:  # pragma: no cover - abstract
        """The key-only part of the score, ``(B, S, K) -> (B, S, *)``."""
        raise NotImplementedError

    def score(self, query: Tensor, projected_keys: Tensor) -> Tensor:  # pragma: no cover - abstract
        """Scores ``(B, T, S)`` of queries ``(B, T, Q)`` against projected keys."""
        raise NotImplementedError

    def forward(self, query: Tensor, keys: Tensor, mask: Tensor | None = None, *,
                projected_keys: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Attend from ``query`` ``(B, Q)`` or ``(B, T, Q)`` over ``keys`` ``(B, S, K)``.

        Args:
            mask: ``(B, S)`` bool, true at the real positions (``None``: all are real); every row needs one.
            projected_keys: :meth:`project_keys` of ``keys``, when the caller already has it (decoding steps).

        Returns:
            ``(context, weights)``: ``(B, K)`` and ``(B, S)`` for a ``(B, Q)`` query, ``(B, T, K)`` and
            ``(B, T, S)`` for ``(B, T, Q)``. Each row of weights sums to 1 and is 0 where ``mask`` is false.
        """
        if query.dim() not in (2, 3) or keys.dim() != 3:
            raise InputError(f"expected query (B, Q) or (B, T, Q) and keys (B, S, K), got {tuple(query.shape)} "
                             f"and {tuple(keys.shape)}")
        if query.shape[-1] != self.query_size or keys.shape[-1] != self.key_size:
            raise InputError(f"expected query size {self.query_size} and key size {self.key_size}, got "
                             f"{query.shape[-1]} and {keys.shape[-1]}")
        if query.shape[0] != keys.shape[0]:
            raise InputError(f"query and keys must have the same batch size, got {query.shape[0]} and {keys.shape[0]}")
        if mask is not None:
            if tuple(mask.shape) != tuple(keys.shape[:2]) or mask.dtype != torch.bool:
                raise InputError(f"expected a bool mask of shape {tuple(keys.shape[:2])}, got {mask.dtype} "
                                 f"{tuple(mask.shape)}")
            if not bool(mask.any(-1).all()):
                raise InputError("every source needs at least one unmasked position")
        single = query.dim() == 2
        q = query.unsqueeze(1) if single else query  # (B, T, Q)
        pk = self.project_keys(keys) if projected_keys is None else projected_keys
        weights = masked_softmax(self.score(q, pk), mask)  # (B, T, S)
        context = torch.bmm(weights, keys)  # (B, T, K)
        return (context.squeeze(1), weights.squeeze(1)) if single else (context, weights)


class AdditiveAttention(Attention):
    """Bahdanau et al. (2015): :math:`e_s = v^\\top \\tanh(W_q q + W_k k_s + b)`.

    Parameters: ``query.weight`` ``(A, Q)`` (no bias), ``key.weight`` ``(A, K)``, ``key.bias`` ``(A,)`` (the
    ``b``), ``v.weight`` ``(1, A)``. See the module docstring for the masked softmax and the context.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        attention_size = query_size if attention_size is None else attention_size
        for name, value in (("query_size", query_size), ("key_size", key_size), ("attention_size", attention_size)):
            check_positive_int(name, value)
        self.query_size, self.key_size, self.attention_size = query_size, key_size, attention_size
        self.query = nn.Linear(query_size, attention_size, bias=False)
        self.key = nn.Linear(key_size, attention_size)
        self.v = nn.Linear(attention_size, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.key(keys)  # (B, S, A)

    def score(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        hidden = torch.tanh(self.query(query).unsqueeze(2) + projected_keys.unsqueeze(1))  # (B, T, S, A)
        return self.v(hidden).squeeze(-1)  # (B, T, S)


class MultiplicativeAttention(Attention):
    """Luong et al. (2015), the *general* score: :math:`e_s = q^\\top W k_s` (divided by :math:`\\sqrt{Q}` with
    ``scaled=True``).

    Parameter: ``weight`` ``(Q, K)``, initialised uniform in :math:`\\pm 1/\\sqrt{K}`.
    """

    def __init__(self, query_size: int, key_size: int, *, scaled: bool = False) -> None:
        super().__init__()
        check_positive_int("query_size", query_size)
        check_positive_int("key_size", key_size)
        self.query_size, self.key_size, self.scaled = query_size, key_size, bool(scaled)
        self.weight = nn.Parameter(torch.empty(query_size, key_size))
        bound = 1.0 / math.sqrt(key_size)
        nn.init.uniform_(self.weight, -bound, bound)

    def project_keys(self, keys: Tensor) -> Tensor:
        return torch.matmul(keys, self.weight.t())  # (B, S, Q): W k_s

    def score(self, query: Tensor, projected_keys: Tensor) -> Tensor:
        scores = torch.bmm(query, projected_keys.transpose(1, 2))  # (B, T, S)
        return scores / math.sqrt(self.query_size) if self.scaled else scores


ATTENTIONS = ("additive", "multiplicative")


def build_attention(kind: str, query_size: int, key_size: int, attention_size: int | None = None) -> Attention:
    """``"additive"`` (Bahdanau) or ``"multiplicative"`` (Luong's general) attention."""
    if kind == "additive":
        return AdditiveAttention(query_size, key_size, attention_size)
    if kind == "multiplicative":
        return MultiplicativeAttention(query_size, key_size)
    raise InputError(f"unknown attention {kind!r}; expected one of: {', '.join(ATTENTIONS)}")
