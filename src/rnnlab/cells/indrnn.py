"""IndRNN: the independently recurrent neural network (Li, Li, Cook, Zhu & Gao 2018).

Each unit has one recurrent weight: the recurrent product is element-wise, so the units of a layer are
independent in time and interact only through the layers above.

.. math::

    h_t = \\sigma(W x_t + u \\odot h_{t-1} + b), \\qquad \\sigma = \\mathrm{ReLU}, \\quad |u_n| \\le \\gamma

The bound: a unit's gradient over ``T`` steps scales like :math:`u_n^T` while it is active, so the paper keeps
:math:`|u_n| \\le \\gamma = \\mathrm{MAG}^{1/T}` (``MAG = 2`` in the authors' code, ``T`` the sequence length)
and initialises :math:`u \\sim U(0, \\gamma)`, the last layer :math:`u \\sim U(\\mathrm{MAG}^{-1/T}, \\gamma)`
so that it keeps the long-range memory; the authors' input weights are small and the biases 0.

Where rnnlab differs from the authors' code: the bound is applied in the forward, :math:`u \\mapsto
\\mathrm{clamp}(u, -\\gamma, \\gamma)`, rather than by clipping the stored parameter after each optimiser step
(the same forward; a weight outside the bound gets no gradient). The input weights keep torch's default
uniform initialisation and the paper's batch normalisation between layers is not part of the layer.

Parameters (suffix-free): ``weight_ih`` ``(H, I)``, ``weight_hh`` ``(H,)`` (the ``u`` above), ``bias_ih``
``(H,)``. State ``(h,)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State
from rnnlab.errors import InputError

MAGNITUDE = 2.0  # the authors' MAG: the largest growth of a gradient over the whole sequence


def check_positive_number(name: str, value: object) -> float:
    """Raise ``InputError`` unless ``value`` is a finite number > 0 (bools are not numbers)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InputError(f"{name} must be a positive number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise InputError(f"{name} must be a positive number, got {value}")
    return float(value)


class IndRNNMath(CellMath):
    """One IndRNN step. State ``(h,)``, ``h`` ``(B, H)``."""

    family = "indrnn"
    variants = ("relu",)
    default_variant = "relu"
    gates_ih = ("h",)
    gates_hh = ()

    def __init__(self, hidden_size: int, variant: str | None = None, *, layer_norm: bool = False,
                 bias: bool = True, max_len: int = 1000, recurrent_max: float | None = None,
                 last_layer: bool = False):
        if layer_norm:
            raise InputError("IndRNN takes no layer_norm")
        if not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < 1:
            raise InputError(f"max_len must be a positive int (the sequence length the bound is set for), "
                             f"got {max_len!r}")
        self.max_len = max_len
        self.recurrent_max = (MAGNITUDE ** (1.0 / max_len) if recurrent_max is None
                              else check_positive_number("recurrent_max", recurrent_max))
        self.last_layer = last_layer
        super().__init__(hidden_size, variant, bias=bias)

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        H = self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (H, input_size), "weight_hh": (H,)}
        if self.bias:
            shapes["bias_ih"] = (H,)
        return shapes

    def check_options(self, *, forget_bias, recurrent_init, chrono_init=None) -> None:
        super().check_options(forget_bias=forget_bias, recurrent_init=None, chrono_init=chrono_init)
        if recurrent_init is not None:
            raise InputError("recurrent_init does not apply to indrnn: its recurrent weight is a vector, "
                             "initialised in U(0, recurrent_max)")

    @torch.no_grad()
    def reset_parameters(self, p: Params, **_options) -> None:
        """``weight_ih`` uniform in ``±1/sqrt(H)``, ``bias_ih`` 0, ``weight_hh`` as the paper (module doc)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        p["weight_ih"].uniform_(-bound, bound)
        if "bias_ih" in p:
            p["bias_ih"].zero_()
        low = (1.0 / MAGNITUDE) ** (1.0 / self.max_len) if self.last_layer else 0.0
        p["weight_hh"].uniform_(min(low, self.recurrent_max), self.recurrent_max)

    def prepare(self, p: Params) -> Params:
        return {**p, "weight_hh": p["weight_hh"].clamp(-self.recurrent_max, self.recurrent_max)}

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        return ((gx + p["weight_hh"] * state[0]).relu(),)  # (B, H)

    def describe(self) -> str:
        return f"indrnn:relu, recurrent_max={self.recurrent_max:.6g}"
