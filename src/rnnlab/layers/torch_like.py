"""``RNN``, ``LSTM`` and ``GRU``: drop-in replacements for their ``torch.nn`` namesakes with every variant.

Same positional arguments, same inputs and outputs, same parameter names and shapes as torch; everything
new is keyword-only. The vanilla variant loads a ``torch.nn`` module's ``state_dict`` unchanged.
"""

from __future__ import annotations

from rnnlab.cells import GRUMath, LSTMMath, RNNMath
from rnnlab.cells.base import CellMath, check_positive_int
from rnnlab.errors import InputError
from rnnlab.layers.recurrent import Recurrent

_COMMON_DOC = """
    Args (torch's, in torch's order): ``input_size``, ``hidden_size``, ``num_layers=1``, ``bias=True``,
    ``batch_first=False``, ``dropout=0.0`` (between layers, training only), ``bidirectional=False``,
    ``device``, ``dtype``.

    Keyword-only: ``variant`` (see the cell math), ``layer_norm=False``, ``forget_bias=None`` (initial bias
    of the gate that keeps the state), ``chrono_init=None`` (``T_max``: the chrono initialisation of that bias,
    Tallec & Ollivier 2018), ``recurrent_init=None|"orthogonal"|"identity"``, ``zoneout=0.0``,
    ``weight_drop=0.0``, ``variational_dropout=0.0`` (see :mod:`rnnlab.layers.regularisers`),
    ``backend="reference"``.

    Shapes: input ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``, ``(T, I)`` unbatched, or a
    ``PackedSequence``); output ``(T, B, D*{out})``; states ``(L*D, B, n)``.
"""


def _no_proj_size(options: dict) -> None:
    """torch's RNN and GRU take ``proj_size`` only to refuse it with a ValueError; so do ours."""
    if "proj_size" in options:
        raise InputError("proj_size argument is only supported for LSTM, not RNN or GRU")


class RNN(Recurrent):
    """Elman RNN, ``torch.nn.RNN`` with the same arguments (``nonlinearity`` 4th).

    .. math:: h_t = \\phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),\\ \\phi \\in \\{\\tanh, \\mathrm{ReLU}\\}

    Parameters per layer ``k`` (``_reverse`` for the backward direction): ``weight_ih_l{k}`` ``(H, I_k)``,
    ``weight_hh_l{k}`` ``(H, H)``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(H,)``. State: ``h_n``.
    """ + _COMMON_DOC.format(out="H")

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, device=None, dtype=None, *,
                 layer_norm=False, **options):
        _no_proj_size(options)
        if nonlinearity not in RNNMath.variants:
            raise InputError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity, self.layer_norm = nonlinearity, layer_norm
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)

    def make_cell(self, layer: int) -> CellMath:
        return RNNMath(self.hidden_size, self.nonlinearity, layer_norm=self.layer_norm, bias=self.bias)


class LSTM(Recurrent):
    """LSTM, ``torch.nn.LSTM`` with the same arguments (including ``proj_size``), and its variants.

    .. math::

        \\begin{array}{ll}
        i_t = \\sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi}) \\\\
        f_t = \\sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\\\
        g_t = \\tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\\\
        o_t = \\sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho}) \\\\
        c_t = f_t \\odot c_{t-1} + i_t \\odot g_t \\\\
        h_t = o_t \\odot \\tanh(c_t)
        \\end{array}

    ``variant``: ``vanilla`` (above), ``peephole``, ``cifg``, ``nig``, ``nfg``, ``nog``, ``niaf``,
    ``noaf``; their equations are in :mod:`rnnlab.cells.lstm`.

    Parameters per layer ``k``: ``weight_ih_l{k}`` ``(G*H, I_k)``, ``weight_hh_l{k}`` ``(G*H, P)``,
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(G*H,)`` with gate rows ``i, f, g, o`` (a variant without a
    gate omits its rows, ``G = 3``); ``weight_peephole_l{k}`` ``(3, H)`` rows ``(i, f, o)``;
    ``weight_hr_l{k}`` ``(P, H)`` with ``proj_size``; with ``layer_norm``: ``ln_weight_ih_l{k}``,
    ``ln_weight_hh_l{k}``, ``ln_weight_cell_l{k}``, ``ln_bias_cell_l{k}``. State: ``(h_n, c_n)``,
    ``h_n`` ``(L*D, B, P)``, ``c_n`` ``(L*D, B, H)``.
    """ + _COMMON_DOC.format(out="P")

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, proj_size=0, device=None, dtype=None, *, variant="vanilla",
                 layer_norm=False, **options):
        if not isinstance(proj_size, int) or isinstance(proj_size, bool) or proj_size < 0:
            raise InputError(f"proj_size must be a non-negative int, got {proj_size!r}")
        check_positive_int("hidden_size", hidden_size)
        if proj_size >= hidden_size:
            raise InputError(f"proj_size must be smaller than hidden_size ({hidden_size}), got {proj_size}")
        self.proj_size, self.variant, self.layer_norm = proj_size, variant, layer_norm
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)

    def make_cell(self, layer: int) -> CellMath:
        return LSTMMath(self.hidden_size, self.variant, layer_norm=self.layer_norm, bias=self.bias,
                        proj_size=self.proj_size)


class GRU(Recurrent):
    """GRU, ``torch.nn.GRU`` with the same arguments, and its variants.

    .. math::

        \\begin{array}{ll}
        r_t = \\sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\\\
        z_t = \\sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\\\
        n_t = \\tanh(W_{in} x_t + b_{in} + r_t \\odot (W_{hn} h_{t-1} + b_{hn})) \\\\
        h_t = (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}
        \\end{array}

    ``variant``: ``vanilla`` (above), ``reset_before``, ``mut1``, ``mut2``, ``mut3``, ``mgu``; their
    equations and gate rows are in :mod:`rnnlab.cells.gru`. ``mut1`` and ``mut2`` add the raw input to a
    hidden-sized vector and need every layer's input size to equal ``hidden_size``.

    Parameters per layer ``k``: ``weight_ih_l{k}`` ``(G_ih*H, I_k)``, ``weight_hh_l{k}`` ``(G_hh*H, H)``,
    ``bias_ih_l{k}`` ``(G_ih*H,)``, ``bias_hh_l{k}`` ``(G_hh*H,)``, gate rows ``r, z, n`` in torch's order;
    with ``layer_norm``: ``ln_weight_ih_l{k}``, ``ln_weight_hh_l{k}``. State: ``h_n``.
    """ + _COMMON_DOC.format(out="H")

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, variant="vanilla", layer_norm=False,
                 **options):
        _no_proj_size(options)
        self.variant, self.layer_norm = variant, layer_norm
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)

    def make_cell(self, layer: int) -> CellMath:
        return GRUMath(self.hidden_size, self.variant, layer_norm=self.layer_norm, bias=self.bias)
