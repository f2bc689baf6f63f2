"""Heads: the modules a task puts on top of the recurrent layer's output.

The layer's output is ``(T, B, D*H)`` (``D`` directions) or a ``PackedSequence`` of it. :class:`LastStep`
summarises each whole sequence by the forward direction's output at its last valid step and the backward
direction's output at its first step; :class:`EveryStep` predicts at every step; :class:`PooledReadout`
summarises each sequence by its last step, the mean or the maximum of its outputs over the valid steps, or an
attention-weighted mean (:class:`AttentionPooling`, whose weights over the steps can be shown to people).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

__all__ = [
    "READOUTS",
    "AttentionPooling",
    "EveryStep",
    "LastStep",
    "PooledReadout",
    "last_step",
    "unpack",
    "valid_steps",
]


def unpack(output: torch.Tensor | PackedSequence) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(padded (T, B, F), lengths (B,) or None)`` from a tensor or a ``PackedSequence`` (original order)."""
    if isinstance(output, PackedSequence):
        padded, lengths = pad_packed_sequence(output)  # (T_max, B, F), (B,)
        return padded, lengths
    return output, None


def last_step(output: torch.Tensor | PackedSequence, num_directions: int = 1) -> torch.Tensor:
    """The summary of every sequence, ``(B, F)``: forward half at the last valid step, backward half (if any)
    at step 0, where the backward direction has read the whole sequence."""
    padded, lengths = unpack(output)  # (T, B, F)
    T, B, F = padded.shape
    if lengths is None:
        last = padded[T - 1]  # (B, F)
    else:
        index = (lengths.to(padded.device) - 1).view(1, B, 1).expand(1, B, F)
        last = padded.gather(0, index).squeeze(0)  # (B, F)
    if num_directions == 1:
        return last
    half = F // num_directions
    return torch.cat([last[:, :half], padded[0, :, half:]], dim=1)  # (B, F)


class LastStep(nn.Module):
    """Whole-sequence head: ``Linear(last_step(output))``, ``(B, out_features)``."""

    def __init__(self, features: int, out_features: int, num_directions: int = 1) -> None:
        super().__init__()
        self.num_directions = num_directions
        self.linear = nn.Linear(features, out_features)

    def forward(self, output: torch.Tensor | PackedSequence) -> torch.Tensor:
        return self.linear(last_step(output, self.num_directions))  # (B, out_features)


class EveryStep(nn.Module):
    """Per-step head: ``Linear`` at every step, ``(T, B, out_features)`` (zeros-padded past each length)."""

    def __init__(self, features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(features, out_features)

    def forward(self, output: torch.Tensor | PackedSequence) -> torch.Tensor:
        padded, _ = unpack(output)  # (T, B, F)
        return self.linear(padded)  # (T, B, out_features)


def valid_steps(padded: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
    """``(T, B)`` bool: step ``t`` of sequence ``b`` is real (``t < lengths[b]``); all true without lengths."""
    T, B = padded.shape[:2]
    if lengths is None:
        return torch.ones(T, B, dtype=torch.bool, device=padded.device)
    return torch.arange(T, device=padded.device).unsqueeze(1) < lengths.to(padded.device).unsqueeze(0)


class AttentionPooling(nn.Module):
    """Additive attention pooling over time (Bahdanau et al. 2015; Yang et al. 2016's word attention).

    For outputs ``h_t`` ``(T, B, F)`` and real steps ``t < L_b``::

        s_t = v^T tanh(W h_t + b)                          scores, (T, B)
        a_t = exp(s_t) / sum_{u < L_b} exp(s_u)            weights, 0 past L_b; sum_t a_t = 1
        pooled = sum_t a_t h_t                             (B, F)

    ``W`` is ``(attention_size, F)``, ``v`` is ``(attention_size,)``. :meth:`weights` returns ``a`` alone, so a
    prediction can show which words it attended to.
    """

    def __init__(self, features: int, attention_size: int = 64) -> None:
        super().__init__()
        self.project = nn.Linear(features, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def weights(self, padded: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        """The attention weights ``(T, B)`` of outputs ``padded`` ``(T, B, F)``: each column sums to 1 over its
        real steps and is 0 past them."""
        scores = self.score(torch.tanh(self.project(padded))).squeeze(-1)  # (T, B)
        scores = scores.masked_fill(~valid_steps(padded, lengths), float("-inf"))
        return torch.softmax(scores, dim=0)  # (T, B)

    def forward(self, padded: torch.Tensor, lengths: torch.Tensor | None) -> torch.Tensor:
        a = self.weights(padded, lengths)  # (T, B)
        return (a.unsqueeze(-1) * padded).sum(dim=0)  # (B, F)


#: the readouts of :class:`PooledReadout`; ``last_max`` concatenates the last step and the maximum
READOUTS = ("last", "mean", "max", "last_max", "attention")


class PooledReadout(nn.Module):
    """Whole-sequence head: a summary of the outputs over the valid steps, dropout, then ``Linear``, ``(B, C)``.

    ``readout``: ``last`` (:func:`last_step`: forward half at the last real step, backward half at step 0),
    ``mean`` or ``max`` over the real steps, ``last_max`` (the last step and the maximum, concatenated, ``2F``
    features) or ``attention`` (:class:`AttentionPooling`).
    """

    def __init__(
        self, features: int, out_features: int, num_directions: int = 1, *, readout: str = "last_max",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if readout not in READOUTS:
            raise ValueError(f"expected a readout among {', '.join(READOUTS)}, got {readout!r}")
        self.readout = readout
        self.num_directions = num_directions
        self.attention = AttentionPooling(features) if readout == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(2 * features if readout == "last_max" else features, out_features)

    def attention_weights(self, output: torch.Tensor | PackedSequence) -> torch.Tensor:
        """``(T, B)`` attention weights over the steps of the layer's ``output`` (``readout="attention"`` only)."""
        if self.attention is None:
            raise ValueError(f"the {self.readout!r} readout has no attention weights")
        return self.attention.weights(*unpack(output))

    def summary(self, output: torch.Tensor | PackedSequence) -> torch.Tensor:
        """The pooled features ``(B, F)`` (``(B, 2F)`` for ``last_max``) before dropout and the linear layer."""
        padded, lengths = unpack(output)  # (T, B, F), (B,) or None
        if self.readout == "attention":
            assert self.attention is not None
            return self.attention(padded, lengths)
        if self.readout == "last":
            return last_step(output, self.num_directions)
        valid = valid_steps(padded, lengths).unsqueeze(-1)  # (T, B, 1)
        if self.readout == "mean":
            return (padded * valid).sum(dim=0) / valid.sum(dim=0).clamp(min=1)  # (B, F)
        pooled = padded.masked_fill(~valid, float("-inf")).max(dim=0).values  # (B, F)
        if self.readout == "max":
            return pooled
        return torch.cat([last_step(output, self.num_directions), pooled], dim=1)  # (B, 2F)

    def forward(self, output: torch.Tensor | PackedSequence) -> torch.Tensor:
        return self.linear(self.dropout(self.summary(output)))  # (B, C)
