"""minGRU and minLSTM (Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We Needed?").

The gates see the input only, never :math:`h_{t-1}`, so the recurrence is linear in ``h``:
:math:`h_t = a_t \\odot h_{t-1} + b_t` with ``a_t, b_t`` computed for all steps at once. Training runs it as a
parallel scan (:func:`rnnlab.engine.scan.linear_scan` on the coefficients :math:`a_t, b_t` themselves, formed
without logarithms; the paper's log-space scan over the log-space coefficients below computes the same recurrence,
more slowly on a CPU, and runs when traced); inference may step it like any RNN.
Both compute the same numbers.

minGRU (the paper's log-space version, its Appendix B.3, which is the one it trains):

.. math::

    \\begin{array}{ll}
    z_t = \\sigma(\\mathrm{Linear}_{d_h}(x_t)), \\quad \\tilde h_t = g(\\mathrm{Linear}_{d_h}(x_t)) \\\\
    h_t = (1 - z_t) \\odot h_{t-1} + z_t \\odot \\tilde h_t
    \\end{array}

minLSTM (with the paper's length-independent scaling of the gates):

.. math::

    \\begin{array}{ll}
    f_t = \\sigma(\\mathrm{Linear}_{d_h}(x_t)), \\quad i_t = \\sigma(\\mathrm{Linear}_{d_h}(x_t)), \\quad
    \\tilde h_t = g(\\mathrm{Linear}_{d_h}(x_t)) \\\\
    f'_t = \\frac{f_t}{f_t + i_t}, \\quad i'_t = \\frac{i_t}{f_t + i_t} \\\\
    h_t = f'_t \\odot h_{t-1} + i'_t \\odot \\tilde h_t
    \\end{array}

with :math:`g(x) = x + 0.5` for :math:`x \\ge 0` and :math:`\\sigma(x)` otherwise, which keeps
:math:`\\tilde h_t > 0` so that its logarithm exists. In log space:
:math:`\\log z = -\\mathrm{softplus}(-k)`, :math:`\\log(1 - z) = -\\mathrm{softplus}(k)`, and for the minLSTM
:math:`\\log f' = -\\mathrm{softplus}(d)`, :math:`\\log i' = -\\mathrm{softplus}(-d)` with
:math:`d = \\mathrm{softplus}(-k_f) - \\mathrm{softplus}(-k_i)`.

Where rnnlab differs from the paper's code: the initial state :math:`h_0` is used as given (any sign; the
paper's code feeds :math:`g(h_0)`), and the scan adds its contribution :math:`(\\prod_{s \\le t} a_s) h_0`
outside the log, so stepping a layer from any carried state is exact. The paper's layers have no bias-free
option; ``bias=False`` drops ``bias_ih``.

Parameters (suffix-free): ``weight_ih`` ``(G*H, I)`` and ``bias_ih`` ``(G*H,)``, rows ``z, h`` (minGRU) or
``f, i, h`` (minLSTM); torch's ``nn.Linear`` initialisation (uniform in ``±1/sqrt(I)``). No ``weight_hh``.
State ``(h,)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State
from rnnlab.cells.probe import record_gate
from rnnlab.errors import InputError


def g(x: Tensor) -> Tensor:
    """:math:`x + 0.5` for :math:`x \\ge 0`, else :math:`\\sigma(x)`: positive and continuous."""
    return torch.where(x >= 0, x.clamp(min=0) + 0.5, x.sigmoid())


def log_g(x: Tensor) -> Tensor:
    """:math:`\\log g(x)`, computed without forming ``g`` for the negative branch."""
    return torch.where(x >= 0, (x.clamp(min=0) + 0.5).log(), -F.softplus(-x))


class _Minimal(CellMath):
    """Shared layout of the input-only-gated cells: ``weight_ih`` rows per gate, no recurrent weights."""

    variants = ("vanilla",)
    gates_hh = ()
    #: this family's recurrence is ``h_t = a_t * h_{t-1} + b_t`` with positive ``a, b`` known in log space
    scan = "log"

    def __init__(self, hidden_size: int, variant: str | None = None, *, layer_norm: bool = False,
                 bias: bool = True):
        if layer_norm:
            raise InputError(f"{self.family} takes no layer_norm")
        super().__init__(hidden_size, variant, bias=bias)

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        rows = len(self.gates_ih) * self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (rows, input_size)}
        if self.bias:
            shapes["bias_ih"] = (rows,)
        return shapes

    def check_options(self, *, forget_bias, recurrent_init, chrono_init=None) -> None:
        super().check_options(forget_bias=forget_bias, recurrent_init=None, chrono_init=chrono_init)
        if recurrent_init is not None:
            raise InputError(f"recurrent_init does not apply to {self.family}: it has no recurrent weights")

    def init_bound(self, p: Params) -> float:
        """torch's ``nn.Linear`` initialisation: uniform in ``±1/sqrt(I)``."""
        return 1.0 / math.sqrt(p["weight_ih"].shape[1])

    def log_coefficients(self, gx: Tensor) -> tuple[Tensor, Tensor]:
        """``(log a_t, log b_t)`` of :math:`h_t = a_t h_{t-1} + b_t`, each ``(..., H)`` from ``gx`` ``(..., G*H)``."""
        raise NotImplementedError

    def linear_coefficients(self, gx: Tensor, p: Params) -> tuple[Tensor, Tensor]:
        """``(a_t, b_t)`` themselves, each ``(..., H)``: the exponentials of :meth:`log_coefficients`, in fewer
        element-wise passes (what the eager scan runs)."""
        raise NotImplementedError


class MinGRUMath(_Minimal):
    """One minGRU step. ``gx`` ``(B, 2H)`` rows ``z, h``; state ``(h,)``."""

    family = "mingru"
    gates_ih = ("z", "h")
    forget_gate = ("z", -1.0)  # 1 - z keeps h_{t-1}

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        k_z, k_h = gx.chunk(2, dim=-1)  # (B, H) each
        z = k_z.sigmoid()
        record_gate("update", z)
        return ((1.0 - z) * state[0] + z * g(k_h),)

    def log_coefficients(self, gx: Tensor) -> tuple[Tensor, Tensor]:
        k_z, k_h = gx.chunk(2, dim=-1)
        return -F.softplus(k_z), -F.softplus(-k_z) + log_g(k_h)

    def linear_coefficients(self, gx: Tensor, p: Params) -> tuple[Tensor, Tensor]:
        k_z, k_h = gx.chunk(2, dim=-1)  # a = 1 - z = sigmoid(-k_z), exact however close z is to 1
        return (-k_z).sigmoid(), k_z.sigmoid() * g(k_h)


class MinLSTMMath(_Minimal):
    """One minLSTM step. ``gx`` ``(B, 3H)`` rows ``f, i, h``; state ``(h,)``."""

    family = "minlstm"
    gates_ih = ("f", "i", "h")
    forget_gate = ("f", 1.0)
    chrono_input_gate = ("i", 1.0)

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        k_f, k_i, k_h = gx.chunk(3, dim=-1)  # (B, H) each
        f, i = k_f.sigmoid(), k_i.sigmoid()
        f_scaled, i_scaled = f / (f + i), i / (f + i)
        record_gate("forget", f_scaled)
        return (f_scaled * state[0] + i_scaled * g(k_h),)

    def log_coefficients(self, gx: Tensor) -> tuple[Tensor, Tensor]:
        k_f, k_i, k_h = gx.chunk(3, dim=-1)
        d = F.softplus(-k_f) - F.softplus(-k_i)  # log(i / f)
        return -F.softplus(d), -F.softplus(-d) + log_g(k_h)

    def linear_coefficients(self, gx: Tensor, p: Params) -> tuple[Tensor, Tensor]:
        k_f, k_i, k_h = gx.chunk(3, dim=-1)
        d = F.softplus(-k_f) - F.softplus(-k_i)  # log(i / f): f' = sigmoid(-d), i' = sigmoid(d)
        return (-d).sigmoid(), d.sigmoid() * g(k_h)
