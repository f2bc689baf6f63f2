"""Zoneout (Krueger et al. 2016): each unit of a state keeps its previous value with probability ``rate``.

Training: ``s_t = m_t * s_{t-1} + (1 - m_t) * s~_t`` with ``m_t ~ Bernoulli(rate)`` drawn per step, batch
element and unit. Evaluation uses the expectation, ``s_t = rate * s_{t-1} + (1 - rate) * s~_t``.
The masks of a whole sequence are drawn before the loop, so every engine sees the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Zoneout:
    """Which state tensors zoneout mixes, at which rate, and (in training) the masks ``(T, B, n)``."""

    rate: float
    state_indices: tuple[int, ...]
    masks: dict[int, Tensor] | None = None  # None: evaluation (expectation)

    @classmethod
    def plan(cls, rate: float, state_indices: tuple[int, ...], state_sizes: tuple[int, ...], steps: int,
             batch_size: int, *, training: bool, like: Tensor) -> Zoneout | None:
        """The zoneout of one forward call, or ``None`` when ``rate`` is 0."""
        if rate == 0.0:
            return None
        if not training:
            return cls(rate, state_indices)
        masks = {i: (torch.rand(steps, batch_size, state_sizes[i], device=like.device) < rate).to(like.dtype)
                 for i in state_indices}
        return cls(rate, state_indices, masks)

    def keep(self, i: int, t: int) -> Tensor | float:
        """The keep factor of state ``i`` at step ``t``: a ``(B, n)`` mask, or ``rate`` in evaluation."""
        return self.rate if self.masks is None else self.masks[i][t]

    def mix(self, t: int, old: tuple[Tensor, ...], new: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        out = list(new)
        for i in self.state_indices:
            keep = self.keep(i, t)
            out[i] = keep * old[i] + (1 - keep) * new[i]
        return tuple(out)
