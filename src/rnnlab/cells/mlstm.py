"""mLSTM: the matrix-memory LSTM of xLSTM (Beck, Pöppel, Spanring, Auer, Prudnikova, Kopp, Klambauer, Brandstetter &
Hochreiter 2024), with exponential gating and a stabiliser state, per head of ``d = H / num_heads`` units.

.. math::

    \\begin{array}{ll}
    q_t, k_t, v_t, \\tilde\\imath_t, \\tilde f_t, \\tilde o_t = W x_t + b
        \\quad (q, k, v, o \\text{ of } H \\text{ units}; \\tilde\\imath, \\tilde f \\text{ one per head}) \\\\
    m_t = \\max(\\log\\sigma(\\tilde f_t) + m_{t-1},\\ \\tilde\\imath_t), \\quad
        i'_t = \\exp(\\tilde\\imath_t - m_t), \\quad f'_t = \\exp(\\log\\sigma(\\tilde f_t) + m_{t-1} - m_t) \\\\
    C_t = f'_t C_{t-1} + i'_t\\, \\bar k_t v_t^\\top, \\quad n_t = f'_t n_{t-1} + i'_t\\, \\bar k_t, \\quad
        \\bar k_t = k_t / \\sqrt d \\\\
    \\tilde h_t = \\frac{C_t^\\top q_t}{\\max(|n_t^\\top q_t|, \\exp(-m_t)) + \\epsilon}, \\quad
        h_t = \\sigma(\\tilde o_t) \\odot \\tilde h_t
    \\end{array}

``C_t`` is each head's ``d x d`` memory (keys by values), ``n_t`` its normaliser, ``m_t`` the stabiliser that keeps
every exponential bounded (it cancels in :math:`\\tilde h_t` except where the :math:`\\exp(-m_t)` floor applies);
:math:`\\epsilon = 10^{-6}`. The gates read the input only, so the whole sequence has a parallel form
(:func:`rnnlab.engine.scan.mlstm_parallel`): with :math:`F_t = \\sum_{r \\le t} \\log\\sigma(\\tilde f_r)`,
:math:`\\log D_{ts} = \\tilde\\imath_s + F_t - F_s` (``s <= t``) and the initial state weighted by
:math:`m_0 + F_t`, :math:`m_t` is the largest of these log-weights and :math:`\\tilde h_t` an attention-like
weighted sum of the values, equal to stepping (float64 tests, gradients included).

Checked against NX-AI/xlstm's ``recurrent_step_stabilized_simple`` and ``parallel_stabilized_simple``
(``blocks/mlstm/backends.py``): the same update, key scaling :math:`1/\\sqrt d`, stabiliser, the
:math:`\\max(|n^\\top q|, e^{-m}) + \\epsilon` denominator, log-sigmoid forget gate and exponential input gate. Where
rnnlab differs: the authors' parallel form has no initial state (its stabiliser is the row maximum of ``log D``
alone, which equals stepping only from :math:`m_0 = -\\infty`); here the initial state :math:`(C_0, n_0, m_0)`
(zeros by default, so :math:`m_0 = 0`) enters both forms, which therefore agree from any carried state. The
output gate is the paper's :math:`\\sigma(\\tilde o_t)` on the cell output; the authors' block around the cell
(up-projection, causal convolution, head-wise layer norm, learnable skip) is not part of the layer.

Parameters (suffix-free): ``weight_ih`` ``(4H + 2K, I)``, ``bias_ih`` ``(4H + 2K,)``, rows ``q, k, v`` (``H``
each), ``i, f`` (``K = num_heads`` each), ``o`` (``H``); uniform in ``±1/sqrt(I)`` (torch's ``nn.Linear``), the
forget gate's bias ``linspace(3, 6)`` over the heads and the input gate's ``N(0, 0.1)`` (the authors' gate
initialisation). State ``(h, C, n, m)``: ``h`` ``(B, H)``, ``C`` ``(B, K*d*d)`` (head ``k``'s memory at
``k*d*d``, row-major keys by values), ``n`` ``(B, H)``, ``m`` ``(B, K)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State, check_positive_int
from rnnlab.cells.probe import record_gate
from rnnlab.errors import InputError

EPS = 1e-6  # the authors' epsilon in the denominator


class MLSTMMath(CellMath):
    """One mLSTM step. ``gx`` ``(B, 4H + 2K)`` rows ``q, k, v, i, f, o``; state ``(h, C, n, m)``."""

    family = "mlstm"
    variants = ("vanilla",)
    gates_ih = ()
    gates_hh = ()
    zoneout_states = (0,)
    flow_states = (1, 2, 3)  # C, n, m: h_t is not fed back
    #: the recurrence has a parallel (attention-like) form: engine.scan.mlstm_parallel
    scan = "mlstm"

    def __init__(self, hidden_size: int, variant: str | None = None, *, layer_norm: bool = False,
                 bias: bool = True, num_heads: int = 1):
        if layer_norm:
            raise InputError("mLSTM takes no layer_norm")
        check_positive_int("num_heads", num_heads)
        if isinstance(hidden_size, int) and hidden_size % num_heads:
            raise InputError(f"mLSTM num_heads must divide hidden_size: got hidden_size={hidden_size}, "
                             f"num_heads={num_heads}")
        self.num_heads = num_heads
        super().__init__(hidden_size, variant, bias=bias)
        self.head_size = hidden_size // num_heads

    def state_sizes(self) -> tuple[int, ...]:
        H, K, d = self.hidden_size, self.num_heads, self.head_size
        return (H, K * d * d, H, K)

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        rows = 4 * self.hidden_size + 2 * self.num_heads
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (rows, input_size)}
        if self.bias:
            shapes["bias_ih"] = (rows,)
        return shapes

    def check_options(self, *, forget_bias, recurrent_init, chrono_init=None) -> None:
        for name, value in (("forget_bias", forget_bias), ("chrono_init", chrono_init),
                            ("recurrent_init", recurrent_init)):
            if value is not None:
                raise InputError(f"{name} does not apply to mlstm: its gates are per head, initialised as the "
                                 "authors' (module docstring)")

    @torch.no_grad()
    def reset_parameters(self, p: Params, **_options) -> None:
        """``nn.Linear``'s uniform ``±1/sqrt(I)``; gate biases as the authors' (module docstring)."""
        bound = 1.0 / math.sqrt(p["weight_ih"].shape[1])
        p["weight_ih"].uniform_(-bound, bound)
        if "bias_ih" in p:
            H, K = self.hidden_size, self.num_heads
            b = p["bias_ih"]
            b.zero_()
            b[3 * H:3 * H + K].normal_(0.0, 0.1)  # input gate
            b[3 * H + K:3 * H + 2 * K] = torch.linspace(3.0, 6.0, K) if K > 1 else 3.0  # forget gate

    def split(self, gx: Tensor) -> tuple[Tensor, ...]:
        """``(q, k, v, i, f, o)`` from ``gx`` ``(..., 4H + 2K)``: ``q, k, v`` ``(..., K, d)`` (``k`` scaled by
        ``1/sqrt(d)``), ``i, f`` ``(..., K)`` pre-activations, ``o`` ``(..., H)`` pre-activation."""
        H, K, d = self.hidden_size, self.num_heads, self.head_size
        q, k, v, i, f, o = gx.split((H, H, H, K, K, H), dim=-1)
        return (q.unflatten(-1, (K, d)), k.unflatten(-1, (K, d)) / math.sqrt(d), v.unflatten(-1, (K, d)), i, f, o)

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        K, d = self.num_heads, self.head_size
        _, C, n, m = state
        q, k, v, i_raw, f_raw, o_raw = self.split(gx)  # (B, K, d) x3, (B, K) x2, (B, H)
        log_f_plus_m = F.logsigmoid(f_raw) + m
        m_new = torch.maximum(log_f_plus_m, i_raw)  # (B, K)
        i_gate = torch.exp(i_raw - m_new).unsqueeze(-1)  # (B, K, 1)
        f_gate = torch.exp(log_f_plus_m - m_new).unsqueeze(-1)
        record_gate("forget", f_gate.squeeze(-1))
        C_new = f_gate.unsqueeze(-1) * C.unflatten(-1, (K, d, d)) + i_gate.unsqueeze(-1) * k.unsqueeze(-1) * \
            v.unsqueeze(-2)  # (B, K, d, d)
        n_new = f_gate * n.unflatten(-1, (K, d)) + i_gate * k  # (B, K, d)
        num = torch.einsum("bkij,bki->bkj", C_new, q)  # (B, K, d): C^T q
        den = torch.maximum((n_new * q).sum(-1).abs(), torch.exp(-m_new)) + EPS  # (B, K)
        h = o_raw.sigmoid() * (num / den.unsqueeze(-1)).flatten(-2)  # (B, H)
        return h, C_new.flatten(-3), n_new.flatten(-2), m_new

    def describe(self) -> str:
        return f"mlstm:heads={self.num_heads}"
