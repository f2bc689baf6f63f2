"""Depth-gated LSTM (Yao, Cohn, Vylomova, Duh & Dyer 2015).

Layer ``L+1`` is an LSTM whose memory cell also receives the cell of the layer below at the same step,
through a depth gate:

.. math::

    \\begin{array}{ll}
    d_t = \\sigma(W_{id} x_t + b_{id} + w_{cd} \\odot c_{t-1} + w_{ld} \\odot c^{L}_t) \\\\
    c_t = d_t \\odot c^{L}_t + f_t \\odot c_{t-1} + i_t \\odot g_t \\\\
    h_t = o_t \\odot \\tanh(c_t)
    \\end{array}

with ``i, f, g, o`` as in the vanilla LSTM and ``x_t = h^{L}_t``. The first layer is a vanilla LSTM.
Parameters of a depth-gated layer: ``weight_ih`` rows ``i, f, g, o, d`` ``(5H, I)``, ``weight_hh`` rows
``i, f, g, o`` ``(4H, H)``, ``weight_depth`` ``(2, H)`` rows ``(w_cd, w_ld)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import Params, State, layer_norm
from rnnlab.cells.lstm import LSTMMath
from rnnlab.cells.probe import record_gate


class DepthGatedMath(LSTMMath):
    """One step of a depth-gated layer. Input ``[h^L_t, c^L_t]`` ``(B, I + H)``; state ``(h, c)``."""

    family = "dglstm"
    variants = ("vanilla",)
    takes_lower_cell = True

    def configure(self) -> None:
        self.gates_ih, self.gates_hh = tuple("ifgod"), tuple("ifgo")

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        shapes = super().param_shapes(input_size)
        shapes["weight_depth"] = (2, self.hidden_size)
        return shapes

    def input_width(self, input_size: int) -> int:
        return input_size + self.hidden_size

    def project_input(self, x: Tensor, p: Params) -> Tensor:
        x_h, c_lower = x[..., :-self.hidden_size], x[..., -self.hidden_size:]
        return torch.cat([super().project_input(x_h, p), c_lower], dim=-1)  # (..., 5H + H)

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        h, c = state
        H = self.hidden_size
        pre = gx[:, :4 * H] + self.recurrent(h, p)  # (B, 4H)
        d_pre, c_lower = gx[:, 4 * H:5 * H], gx[:, 5 * H:]
        i, f, g, o = pre.split(H, dim=-1)
        w_cd, w_ld = p["weight_depth"].unbind(0)  # (H,) each
        d = (d_pre + w_cd * c + w_ld * c_lower).sigmoid()
        record_gate("depth", d)
        i, f, o = i.sigmoid(), f.sigmoid(), o.sigmoid()
        c_new = d * c_lower + f * c + i * g.tanh()
        c_act = layer_norm(c_new, p["ln_weight_cell"], p["ln_bias_cell"]) if self.layer_norm else c_new
        for name, gate in (("input", i), ("forget", f), ("output", o)):
            record_gate(name, gate)
        return o * c_act.tanh(), c_new

