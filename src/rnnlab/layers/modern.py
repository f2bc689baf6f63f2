"""The recurrent families beyond the classic cells, behind the same layer contract as ``rnnlab.LSTM``:
``IndRNN`` (Li et al. 2018), ``MinGRU`` and ``MinLSTM`` (Feng et al. 2024), ``LRU`` (Orvieto et al. 2023),
``RGLRU`` (Hawk/Griffin's RG-LRU, De et al. 2024), ``SLSTM`` and ``MLSTM`` (xLSTM's sLSTM and mLSTM, Beck et al.
2024).

Each takes torch's layer arguments (``input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
dropout=0.0, bidirectional=False, device, dtype``), batched, unbatched and packed inputs and an optional initial
state, and returns ``(output, h_n)`` or ``(output, (h_n, ...))`` as torch's layers do (every state tensor
``(L*D, B, n)``). Stepping a layer with its carried state equals the full run. Their equations, parameter names
and where they differ from the papers' code are in the cell modules (:mod:`rnnlab.cells.indrnn`,
:mod:`rnnlab.cells.minimal`, :mod:`rnnlab.cells.lru`, :mod:`rnnlab.cells.rglru`, :mod:`rnnlab.cells.slstm`,
:mod:`rnnlab.cells.mlstm`).

Engines: minGRU, minLSTM, the LRU, the RG-LRU and the mLSTM run as parallel scans (:mod:`rnnlab.engine.scan`) on
the default backend; ``backend="reference"`` steps them. IndRNN and the sLSTM run their compiled kernels
(registered ops).
"""

from __future__ import annotations

import math

from rnnlab.cells.base import CellMath
from rnnlab.cells.indrnn import IndRNNMath
from rnnlab.cells.lru import LRUMath
from rnnlab.cells.minimal import MinGRUMath, MinLSTMMath
from rnnlab.cells.mlstm import MLSTMMath
from rnnlab.cells.rglru import GATE_SCALE, RGLRUMath
from rnnlab.cells.slstm import SLSTMMath
from rnnlab.layers.recurrent import Recurrent


class IndRNN(Recurrent):
    """Independently recurrent network: :math:`h_t = \\mathrm{ReLU}(W x_t + u \\odot h_{t-1} + b)`, ``|u| <= γ``.

    Keyword-only: ``max_len=1000`` (the sequence length ``T`` the paper's bound :math:`\\gamma = 2^{1/T}` and
    initialisation are set for), ``recurrent_max=None`` (``γ`` itself, overriding ``max_len``'s). Layers but the
    last start with :math:`u \\sim U(0, \\gamma)`, the last with :math:`u \\sim U(2^{-1/T}, \\gamma)`.

    Parameters per layer ``k``: ``weight_ih_l{k}`` ``(H, I_k)``, ``weight_hh_l{k}`` ``(H,)`` (``u``),
    ``bias_ih_l{k}`` ``(H,)``. State ``h_n`` ``(L*D, B, H)``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, max_len=1000, recurrent_max=None, **options):
        self.max_len, self.recurrent_max = max_len, recurrent_max
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)
        self.recurrent_max = self.cells[0].recurrent_max

    def make_cell(self, layer: int) -> CellMath:
        return IndRNNMath(self.hidden_size, bias=self.bias, max_len=self.max_len, recurrent_max=self.recurrent_max,
                          last_layer=layer == self.num_layers - 1)


class MinGRU(Recurrent):
    """minGRU: :math:`h_t = (1 - z_t) \\odot h_{t-1} + z_t \\odot g(\\tilde h_t)`, gates from ``x_t`` only.

    Trained as a parallel scan, stepped for inference; the two agree. Parameters per layer ``k``:
    ``weight_ih_l{k}`` ``(2H, I_k)``, ``bias_ih_l{k}`` ``(2H,)``, rows ``z, h``. State ``h_n`` ``(L*D, B, H)``.
    ``forget_bias``/``chrono_init`` set the bias of ``z`` (minus the value: ``1 - z`` keeps the state).
    """

    def make_cell(self, layer: int) -> CellMath:
        return MinGRUMath(self.hidden_size, bias=self.bias)


class MinLSTM(Recurrent):
    """minLSTM: :math:`h_t = f'_t \\odot h_{t-1} + i'_t \\odot g(\\tilde h_t)`, ``f', i'`` the normalised gates.

    Trained as a parallel scan, stepped for inference; the two agree. Parameters per layer ``k``:
    ``weight_ih_l{k}`` ``(3H, I_k)``, ``bias_ih_l{k}`` ``(3H,)``, rows ``f, i, h``. State ``h_n``
    ``(L*D, B, H)``.
    """

    def make_cell(self, layer: int) -> CellMath:
        return MinLSTMMath(self.hidden_size, bias=self.bias)


class LRU(Recurrent):
    """Linear recurrent unit: :math:`x_t = \\lambda \\odot x_{t-1} + \\gamma \\odot B u_t`,
    :math:`y_t = \\Re(C x_t) + D u_t`, :math:`\\lambda = \\exp(-e^{\\nu} + i e^{\\theta})`.

    Keyword-only: ``state_size=None`` (``N`` complex units, default ``hidden_size``), ``r_min=0.9``,
    ``r_max=0.999`` (the ring of initial eigenvalue moduli, ``0 <= r_min < r_max <= 1``), ``max_phase=2π``.
    Runs as a chunked parallel scan. Parameters per layer ``k``: ``nu_log_l{k}``, ``theta_log_l{k}``,
    ``gamma_log_l{k}`` ``(N,)``, ``weight_in_re_l{k}``, ``weight_in_im_l{k}`` ``(N, I_k)``,
    ``weight_out_re_l{k}``, ``weight_out_im_l{k}`` ``(H, N)``, ``weight_skip_l{k}`` ``(H, I_k)``.
    State ``(y_n, x_re_n, x_im_n)``: ``(L*D, B, H)``, ``(L*D, B, N)``, ``(L*D, B, N)``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, state_size=None, r_min=0.9, r_max=0.999,
                 max_phase=2 * math.pi, **options):
        self.state_size, self.r_min, self.r_max, self.max_phase = state_size, r_min, r_max, max_phase
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)
        self.state_size = self.cells[0].state_size

    def make_cell(self, layer: int) -> CellMath:
        return LRUMath(self.hidden_size, state_size=self.state_size, r_min=self.r_min, r_max=self.r_max,
                       max_phase=self.max_phase)


class RGLRU(Recurrent):
    """Real-gated linear recurrent unit (Hawk/Griffin): :math:`h_t = a_t \\odot h_{t-1} + \\sqrt{1 - a_t^2}
    \\odot (i_t \\odot u_t)`, :math:`u_t = W x_t + b`, :math:`a_t = \\exp(-c\\, r_t\\, \\mathrm{softplus}(\\Lambda))`,
    the recurrence gate :math:`r_t` and input gate :math:`i_t` block-diagonal sigmoid maps of :math:`u_t`.

    Keyword-only: ``num_heads=1`` (blocks of the gates' maps; must divide ``hidden_size``), ``c=8`` (the gate
    scale), ``r_min=0.9``, ``r_max=0.999`` (the ring the decay is initialised on, ``0 < r_min < r_max < 1``).
    Runs as a chunked parallel scan. Parameters per layer ``k``: ``weight_ih_l{k}`` ``(H, I_k)``,
    ``bias_ih_l{k}`` ``(H,)``, ``weight_a_l{k}``, ``weight_x_l{k}`` ``(H, H/num_heads)`` (the heads' blocks),
    ``bias_a_l{k}``, ``bias_x_l{k}``, ``a_param_l{k}`` ``(H,)``. State ``h_n`` ``(L*D, B, H)``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, num_heads=1, c=GATE_SCALE, r_min=0.9, r_max=0.999,
                 **options):
        self.num_heads, self.c, self.r_min, self.r_max = num_heads, c, r_min, r_max
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)

    def make_cell(self, layer: int) -> CellMath:
        return RGLRUMath(self.hidden_size, bias=self.bias, num_heads=self.num_heads, c=self.c, r_min=self.r_min,
                         r_max=self.r_max)


class SLSTM(Recurrent):
    """xLSTM's sLSTM: exponential input gate, stabiliser ``m`` and normaliser ``n`` states, ``num_heads`` heads.

    Keyword-only: ``num_heads=1`` (must divide ``hidden_size``), ``variant="vanilla"`` (log-sigmoid forget gate,
    as NX-AI/xlstm) or ``"exp_forget"`` (:math:`f_t = \\exp(\\tilde f_t)`), ``forget_bias``/``chrono_init``.
    Parameters per layer ``k``: ``weight_ih_l{k}`` ``(4H, I_k)`` rows ``i, f, z, o``; ``weight_hh_l{k}``
    ``(4H, H/num_heads)``, the per-gate, per-head blocks of the block-diagonal ``R``; ``bias_ih_l{k}`` ``(4H,)``.
    State ``(h_n, c_n, n_n, m_n)``, each ``(L*D, B, H)``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, num_heads=1, variant="vanilla", **options):
        self.num_heads, self.variant = num_heads, variant
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)

    def make_cell(self, layer: int) -> CellMath:
        return SLSTMMath(self.hidden_size, self.variant, bias=self.bias, num_heads=self.num_heads)


class MLSTM(Recurrent):
    """xLSTM's mLSTM: a ``d x d`` matrix memory per head, :math:`C_t = f'_t C_{t-1} + i'_t\\, k_t v_t^\\top`,
    read by the query, exponential input gate with a stabiliser, :math:`h_t = \\sigma(\\tilde o_t) \\odot
    \\tilde h_t`.

    Keyword-only: ``num_heads=1`` (must divide ``hidden_size``; ``d = hidden_size / num_heads``). Trained as its
    parallel (attention-like, ``O(T^2)`` per head) form, stepped for inference; the two agree. Parameters per layer
    ``k``: ``weight_ih_l{k}`` ``(4H + 2K, I_k)``, ``bias_ih_l{k}`` ``(4H + 2K,)``, rows ``q, k, v, i, f, o``.
    State ``(h_n, C_n, n_n, m_n)``: ``(L*D, B, H)``, ``(L*D, B, K*d*d)``, ``(L*D, B, H)``, ``(L*D, B, K)``.
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, num_heads=1, **options):
        self.num_heads = num_heads
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)

    def make_cell(self, layer: int) -> CellMath:
        return MLSTMMath(self.hidden_size, bias=self.bias, num_heads=self.num_heads)
