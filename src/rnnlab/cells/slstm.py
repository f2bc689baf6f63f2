"""sLSTM: the scalar-memory LSTM of xLSTM (Beck, Pöppel, Spanring, Auer, Prudnikova, Kopp, Klambauer,
Brandstetter & Hochreiter 2024), with exponential gating, a normaliser state and a stabiliser state.

.. math::

    \\begin{array}{ll}
    \\tilde\\imath_t, \\tilde f_t, \\tilde z_t, \\tilde o_t = W x_t + R h_{t-1} + b
        \\quad (R \\text{ block-diagonal: one } d \\times d \\text{ block per head and gate}) \\\\
    m_t = \\max(\\log f_t + m_{t-1},\\ \\tilde\\imath_t), \\quad \\log f_t = \\log\\sigma(\\tilde f_t)
        \\ (\\texttt{vanilla}) \\text{ or } \\tilde f_t\\ (\\texttt{exp\\_forget}) \\\\
    i'_t = \\exp(\\tilde\\imath_t - m_t), \\quad f'_t = \\exp(\\log f_t + m_{t-1} - m_t) \\\\
    c_t = f'_t \\odot c_{t-1} + i'_t \\odot \\tanh(\\tilde z_t), \\quad n_t = f'_t \\odot n_{t-1} + i'_t \\\\
    h_t = \\sigma(\\tilde o_t) \\odot c_t / n_t
    \\end{array}

The input gate is exponential, :math:`i_t = \\exp(\\tilde\\imath_t)`; the stabiliser ``m`` rescales ``c`` and
``n`` alike, so :math:`h_t` is the same as without it while no exponential overflows. ``num_heads`` heads of
``d = H / num_heads`` units each mix memory only within the head (the block-diagonal ``R``).

Checked against NX-AI/xlstm's vanilla sLSTM pointwise function: same gate order (i, f, z, o), log-sigmoid
forget gate by default, one bias. Where rnnlab differs: the authors' code sets :math:`m_t = \\tilde\\imath_t`
at a step where every normaliser is exactly 0 (a data-dependent branch for the first step); here
:math:`m_0` is part of the state (0 by default) and the rule above applies at every step (``h`` is the same:
``m`` cancels in ``c / n``). The forget gate's bias starts at ``linspace(3, 6)`` over each head's units (the
xLSTM code's forget-gate bias range), the others at 0; weights uniform in ``±1/sqrt(d)`` (torch's default
scaled to a head). The xLSTM block around the cell (causal convolution, group norm, up-projection) is not part
of the layer.

Parameters (suffix-free): ``weight_ih`` ``(4H, I)``, rows ``i, f, z, o``; ``weight_hh`` ``(4H, d)``: rows
``g*H + k*d ... g*H + (k+1)*d`` are the ``(d, d)`` block of gate ``g`` and head ``k``; ``bias_ih`` ``(4H,)``.
State ``(h, c, n, m)``, each ``(B, H)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State, check_positive_int
from rnnlab.cells.probe import record_gate
from rnnlab.errors import InputError


class SLSTMMath(CellMath):
    """One sLSTM step. ``gx`` ``(B, 4H)`` rows ``i, f, z, o``; state ``(h, c, n, m)``, each ``(B, H)``."""

    family = "slstm"
    variants = ("vanilla", "exp_forget")
    gates_ih = ("i", "f", "z", "o")
    gates_hh = ("i", "f", "z", "o")
    zoneout_states = (0, 1)
    forget_gate = ("f", 1.0)
    chrono_input_gate = None

    def __init__(self, hidden_size: int, variant: str | None = None, *, layer_norm: bool = False,
                 bias: bool = True, num_heads: int = 1):
        if layer_norm:
            raise InputError("sLSTM takes no layer_norm")
        check_positive_int("num_heads", num_heads)
        if hidden_size % num_heads:
            raise InputError(f"sLSTM num_heads must divide hidden_size: got hidden_size={hidden_size}, "
                             f"num_heads={num_heads}")
        self.num_heads, self.head_size = num_heads, hidden_size // num_heads
        super().__init__(hidden_size, variant, bias=bias)

    def state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size,) * 4

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        H = self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (4 * H, input_size), "weight_hh": (4 * H, self.head_size)}
        if self.bias:
            shapes["bias_ih"] = (4 * H,)
        return shapes

    def check_options(self, *, forget_bias, recurrent_init, chrono_init=None) -> None:
        super().check_options(forget_bias=forget_bias, recurrent_init=None, chrono_init=chrono_init)
        if recurrent_init is not None:
            raise InputError("recurrent_init does not apply to slstm: its recurrent weights are per-head blocks")

    def init_bound(self, p: Params) -> float:
        return 1.0 / math.sqrt(self.head_size)

    @torch.no_grad()
    def reset_parameters(self, p: Params, *, forget_bias=None, recurrent_init=None, chrono_init=None) -> None:
        """Uniform ``±1/sqrt(d)``; biases 0 but the forget gate's: ``forget_bias``, ``chrono_init``, or by default
        ``linspace(3, 6)`` over each head's units."""
        bound = self.init_bound(p)
        for tensor in p.values():
            tensor.uniform_(-bound, bound)
        if "bias_ih" in p:
            p["bias_ih"].zero_()
            keep = self.keep_gate_bias(forget_bias, chrono_init)
            if keep is None:
                keep = torch.linspace(3.0, 6.0, self.head_size).repeat(self.num_heads)  # (H,)
            self._set_gate_bias(p, self.forget_gate, keep)

    def recurrent(self, h: Tensor, p: Params, rows: slice | None = None) -> Tensor:
        """``R h`` ``(B, 4H)`` with the block-diagonal ``R``: each head's ``(d, d)`` block per gate."""
        B, H, K, d = h.shape[0], self.hidden_size, self.num_heads, self.head_size
        r = p["weight_hh"].view(4, K, d, d)  # (gate, head, out, in)
        out = torch.einsum("bki,gkoi->bgko", h.view(B, K, d), r)  # (B, 4, K, d)
        return out.reshape(B, 4 * H)

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        h, c, n, m = state
        raw = gx + self.recurrent(h, p)  # (B, 4H)
        i_raw, f_raw, z_raw, o_raw = raw.chunk(4, dim=-1)  # (B, H) each
        log_f = F.logsigmoid(f_raw) if self.variant == "vanilla" else f_raw
        log_f_plus_m = log_f + m
        m_new = torch.maximum(log_f_plus_m, i_raw)
        i_gate = torch.exp(i_raw - m_new)
        f_gate = torch.exp(log_f_plus_m - m_new)
        record_gate("forget", f_gate)
        c_new = f_gate * c + i_gate * z_raw.tanh()
        n_new = f_gate * n + i_gate
        h_new = o_raw.sigmoid() * c_new / n_new
        return h_new, c_new, n_new, m_new

    def describe(self) -> str:
        return f"slstm:{self.variant}, heads={self.num_heads}"


class PackedSLSTMMath(SLSTMMath):
    """The sLSTM step on the compiled kernel's state layout: ``(h, s)`` with ``s = [c | n | m]`` ``(B, 3H)``
    (the registered op carries the cell state this way; its reference recomputation steps this)."""

    zoneout_states = ()

    def state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size, 3 * self.hidden_size)

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        h, c, n, m = super().step(gx, (state[0], *state[1].chunk(3, dim=-1)), p)
        return h, torch.cat([c, n, m], dim=-1)
