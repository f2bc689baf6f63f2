"""Elman RNN, torch's ``nn.RNN``.

.. math::

    h_t = \\phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}), \\qquad \\phi = \\tanh \\text{ or ReLU}

Variants are the nonlinearity: ``tanh`` (default) and ``relu``. Gate rows: one block, ``h``.
"""

from __future__ import annotations

from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State


class RNNMath(CellMath):
    """One Elman step. State ``(h,)``, ``h`` ``(B, H)``."""

    family = "rnn"
    variants = ("tanh", "relu")
    default_variant = "tanh"
    gates_ih = gates_hh = ("h",)

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        pre = gx + self.recurrent(state[0], p)  # (B, H)
        return (pre.tanh() if self.variant == "tanh" else pre.relu(),)
