"""Layers beyond torch's three: ``ClockworkRNN`` (Koutnik et al. 2014) and ``DepthGatedLSTM`` (Yao et al.
2015). They take torch's layer arguments and return torch-style ``(output, state)``.
"""

from __future__ import annotations

from rnnlab.cells import ClockworkMath, DepthGatedMath, LSTMMath
from rnnlab.cells.base import CellMath
from rnnlab.errors import InputError
from rnnlab.layers.recurrent import Recurrent


class ClockworkRNN(Recurrent):
    """Clockwork RNN: hidden modules with periods; slow modules feed fast ones.

    .. math::

        \\begin{array}{ll}
        \\tilde h_t = \\tanh(W_{ih} x_t + b_{ih} + (M \\odot W_{hh}) h_{t-1} + b_{hh}) \\\\
        h_t = a_t \\odot \\tilde h_t + (1 - a_t) \\odot h_{t-1}, \\quad a_{t,u} = [t \\bmod T_{m(u)} = 0]
        \\end{array}

    ``periods`` (keyword, default ``1, 2, 4, ...`` for up to 8 modules) sets the modules; ``hidden_size``
    units are split among them near-equally. ``M`` is the block upper-triangular mask (module ``i`` reads
    module ``j`` iff ``T_j >= T_i``); the stored ``weight_hh_l{k}`` ``(H, H)`` is full, the masked entries
    are unused. Parameters per layer: ``weight_ih_l{k}`` ``(H, I_k)``, ``weight_hh_l{k}`` ``(H, H)``,
    ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``(H,)``.

    State: ``(h_n, clock_n)``, ``h_n`` ``(L*D, B, H)`` and ``clock_n`` ``(L*D, B, 1)`` the number of steps
    taken (so that stepping carries the schedule). ``hx`` may be ``h_0`` alone (the clock starts at 0).
    """

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, periods=None, layer_norm=False, **options):
        self.periods, self.layer_norm = periods, layer_norm
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)
        self.periods = self.cells[0].periods

    def make_cell(self, layer: int) -> CellMath:
        return ClockworkMath(self.hidden_size, layer_norm=self.layer_norm, bias=self.bias, periods=self.periods)

    def _initial_states(self, hx, batch_size, batched, x):
        if hx is None or not hasattr(hx, "dim"):
            return super()._initial_states(hx, batch_size, batched, x)
        clock = hx.new_zeros(*hx.shape[:-1], 1)  # h_0 alone: every clock at step 0
        return super()._initial_states((hx, clock), batch_size, batched, x)


class DepthGatedLSTM(Recurrent):
    """Depth-gated LSTM: a stack of LSTMs whose cells are linked across layers by a depth gate.

    .. math::

        \\begin{array}{ll}
        d^{L+1}_t = \\sigma(W_{id} h^{L}_t + b_{id} + w_{cd} \\odot c^{L+1}_{t-1} + w_{ld} \\odot c^{L}_t) \\\\
        c^{L+1}_t = d^{L+1}_t \\odot c^{L}_t + f_t \\odot c^{L+1}_{t-1} + i_t \\odot g_t
        \\end{array}

    Other gates as the vanilla LSTM; layer 0 is a vanilla LSTM. Parameters of layer ``k >= 1``:
    ``weight_ih_l{k}`` ``(5H, H)`` rows ``i, f, g, o, d``; ``weight_hh_l{k}`` ``(4H, H)``; ``bias_ih_l{k}``
    ``(5H,)``; ``bias_hh_l{k}`` ``(4H,)``; ``weight_depth_l{k}`` ``(2, H)`` rows ``(w_cd, w_ld)``.
    State ``(h_n, c_n)``, each ``(L, B, H)``. Unidirectional (the depth gate links cells of one direction).
    """

    def __init__(self, input_size, hidden_size, num_layers=2, bias=True, batch_first=False, dropout=0.0,
                 bidirectional=False, device=None, dtype=None, *, layer_norm=False, **options):
        if bidirectional:
            raise InputError("DepthGatedLSTM is unidirectional: got bidirectional=True")
        self.layer_norm = layer_norm
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, **options)

    def make_cell(self, layer: int) -> CellMath:
        kind = LSTMMath if layer == 0 else DepthGatedMath
        return kind(self.hidden_size, layer_norm=self.layer_norm, bias=self.bias)
