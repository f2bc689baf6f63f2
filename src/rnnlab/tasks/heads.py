"""Heads: the modules a task puts on top of the recurrent layer's output.

The layer's output is ``(T, B, D*H)`` (``D`` directions) or a ``PackedSequence`` of it. :class:`LastStep`
summarises each whole sequence by the forward direction's output at its last valid step and the backward
direction's output at its first step; :class:`EveryStep` predicts at every step.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pad_packed_sequence

__all__ = ["EveryStep", "LastStep", "last_step", "unpack"]


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
