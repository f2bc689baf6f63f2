"""Clockwork RNN (Koutnik, Greff, Gomez & Schmidhuber 2014).

The ``H`` hidden units are split into ``g`` modules with periods ``T_1 < ... < T_g`` (default
``1, 2, 4, ...``). At step ``t`` (counted from 0) module ``i`` is active when ``t mod T_i = 0``; an active
module updates, the others keep their value. Slow modules feed fast ones, never the reverse:
``W_hh`` is block upper-triangular (module ``i`` reads module ``j`` only if ``T_j >= T_i``).

.. math::

    \\begin{array}{ll}
    \\tilde h_t = \\tanh(W_{ih} x_t + b_{ih} + (M \\odot W_{hh}) h_{t-1} + b_{hh}) \\\\
    h_t = a_t \\odot \\tilde h_t + (1 - a_t) \\odot h_{t-1}, \\quad a_{t,u} = [t \\bmod T_{m(u)} = 0]
    \\end{array}

``M`` is the fixed block-triangular mask, ``m(u)`` the module of unit ``u``. The state is ``(h, clock)``:
``clock`` ``(B, 1)`` counts the steps taken, so a stepped run carries the schedule on. It is kept in the
floating dtype of ``h`` (exact up to ``2**24`` steps in float32).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State
from rnnlab.errors import InputError


def module_sizes(hidden_size: int, num_modules: int) -> list[int]:
    """Split ``hidden_size`` units into ``num_modules`` near-equal modules (the first ones one larger)."""
    base, extra = divmod(hidden_size, num_modules)
    return [base + (1 if i < extra else 0) for i in range(num_modules)]


class ClockworkMath(CellMath):
    """One Clockwork-RNN step. State ``(h, clock)``: ``h`` ``(B, H)``, ``clock`` ``(B, 1)``."""

    family = "clockwork"
    variants = ("vanilla",)
    gates_ih = gates_hh = ("h",)
    zoneout_states = (0,)

    def __init__(self, hidden_size: int, variant: str | None = None, *, layer_norm: bool = False,
                 bias: bool = True, periods: tuple[int, ...] | None = None):
        if periods is None:
            periods = tuple(2 ** i for i in range(min(8, hidden_size)))
        periods = tuple(periods)
        if not periods or any(not isinstance(q, int) or isinstance(q, bool) or q <= 0 for q in periods):
            raise InputError(f"periods must be positive ints, got {periods!r}")
        if list(periods) != sorted(set(periods)):
            raise InputError(f"periods must be strictly increasing, got {periods!r}")
        if len(periods) > hidden_size:
            raise InputError(f"{len(periods)} periods need hidden_size >= {len(periods)}, got {hidden_size}")
        self.periods = periods
        super().__init__(hidden_size, variant, layer_norm=layer_norm, bias=bias)
        sizes = module_sizes(hidden_size, len(periods))
        self._unit_module = [m for m, n in enumerate(sizes) for _ in range(n)]

    def state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size, 1)

    def unit_periods(self, like: Tensor) -> Tensor:
        """``(H,)`` the period of each unit's module."""
        return torch.tensor([self.periods[m] for m in self._unit_module], dtype=like.dtype, device=like.device)

    def recurrent_mask(self, like: Tensor) -> Tensor:
        """``(H, H)`` block upper-triangular mask: row unit reads column unit iff its module is not faster."""
        module = torch.tensor(self._unit_module, device=like.device)
        return (module[None, :] >= module[:, None]).to(like.dtype)

    def prepare(self, p: Params) -> Params:
        w = p["weight_hh"]
        return {**p, "weight_hh": w * self.recurrent_mask(w), "unit_periods": self.unit_periods(w)}

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        h, clock = state
        candidate = (gx + self.recurrent(h, p)).tanh()  # (B, H)
        active = torch.remainder(clock, p["unit_periods"]) == 0  # (B, 1) vs (H,) -> (B, H)
        return torch.where(active, candidate, h), clock + 1
