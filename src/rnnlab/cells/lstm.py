"""LSTM (Hochreiter & Schmidhuber 1997, with the forget gate of Gers et al. 2000) and the variants of
Greff et al. 2015, "LSTM: A Search Space Odyssey".

.. math::

    \\begin{array}{ll}
    i_t = \\sigma(W_{ii} x_t + b_{ii} + W_{hi} h_{t-1} + b_{hi} + p_i \\odot c_{t-1}) \\\\
    f_t = \\sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf} + p_f \\odot c_{t-1}) \\\\
    g_t = \\tanh(W_{ig} x_t + b_{ig} + W_{hg} h_{t-1} + b_{hg}) \\\\
    c_t = f_t \\odot c_{t-1} + i_t \\odot g_t \\\\
    o_t = \\sigma(W_{io} x_t + b_{io} + W_{ho} h_{t-1} + b_{ho} + p_o \\odot c_t) \\\\
    h_t = o_t \\odot \\tanh(c_t) \\qquad (h_t = W_{hr} h_t \\text{ with } proj\\_size > 0)
    \\end{array}

Variants (``variant=``); the peephole terms ``p`` exist only in ``peephole``:

==========  =======================================================  ==============================
name        change                                                   gate rows of ``weight_ih/hh``
==========  =======================================================  ==============================
vanilla     torch's LSTM, no peepholes                               i, f, g, o
peephole    + ``p_i, p_f, p_o`` (Gers & Schmidhuber 2000)            i, f, g, o
cifg        coupled input and forget gate: ``i_t = 1 - f_t``         f, g, o
nig         no input gate: ``i_t = 1``                               f, g, o
nfg         no forget gate: ``f_t = 1``                              i, g, o
nog         no output gate: ``o_t = 1``                              i, f, g
niaf        no input activation: ``g_t = W_{ig} x_t + ... + b_{hg}``  i, f, g, o
noaf        no output activation: ``h_t = o_t \\odot c_t``            i, f, g, o
==========  =======================================================  ==============================

``layer_norm=True`` (Ba et al. 2016) normalises each gate block of ``W_i x_t`` and of ``W_h h_{t-1}``
separately (gains ``ln_weight_ih``, ``ln_weight_hh``; the biases act as shifts) and the cell before its
activation: ``h_t = o_t \\odot \\tanh(LN(c_t))`` with ``ln_weight_cell``, ``ln_bias_cell``.
"""

from __future__ import annotations

from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State, layer_norm, linear
from rnnlab.cells.probe import record_gate

_GATES_WITHOUT = {"cifg": "i", "nig": "i", "nfg": "f", "nog": "o"}


class LSTMMath(CellMath):
    """One LSTM step. State ``(h, c)``: ``h`` ``(B, P)``, ``c`` ``(B, H)``."""

    family = "lstm"
    variants = ("vanilla", "peephole", "cifg", "nig", "nfg", "nog", "niaf", "noaf")
    zoneout_states = (0, 1)
    forget_gate = ("f", 1.0)
    chrono_input_gate = ("i", 1.0)

    def __init__(self, hidden_size: int, variant: str | None = None, *, layer_norm: bool = False,
                 bias: bool = True, proj_size: int = 0):
        self.proj_size = proj_size
        super().__init__(hidden_size, variant, layer_norm=layer_norm, bias=bias)

    def configure(self) -> None:
        missing = _GATES_WITHOUT.get(self.variant)
        self.gates_ih = self.gates_hh = tuple(g for g in "ifgo" if g != missing)

    @property
    def output_size(self) -> int:
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    def state_sizes(self) -> tuple[int, ...]:
        return (self.output_size, self.hidden_size)

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        shapes = super().param_shapes(input_size)
        if self.variant == "peephole":
            shapes["weight_peephole"] = (3, self.hidden_size)
        if self.layer_norm:
            shapes["ln_weight_cell"] = (self.hidden_size,)
            shapes["ln_bias_cell"] = (self.hidden_size,)
        if self.proj_size > 0:
            shapes["weight_hr"] = (self.proj_size, self.hidden_size)
        return shapes

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        h, c = state
        pre = gx + self.recurrent(h, p)  # (B, G*H)
        blocks = dict(zip(self.gates_hh, pre.split(self.hidden_size, dim=-1), strict=True))
        peep = p.get("weight_peephole")
        if peep is not None:
            blocks["i"] = blocks["i"] + peep[0] * c
            blocks["f"] = blocks["f"] + peep[1] * c
        f = blocks["f"].sigmoid() if "f" in blocks else None
        if "i" in blocks:
            i = blocks["i"].sigmoid()
        elif self.variant == "cifg":
            i = 1.0 - f
        else:  # nig
            i = None
        g = blocks["g"] if self.variant == "niaf" else blocks["g"].tanh()
        ig = g if i is None else i * g
        c_new = ig + (c if f is None else f * c)
        c_act = layer_norm(c_new, p["ln_weight_cell"], p["ln_bias_cell"]) if self.layer_norm else c_new
        if self.variant != "noaf":
            c_act = c_act.tanh()
        if "o" in blocks:
            o_pre = blocks["o"] if peep is None else blocks["o"] + peep[2] * c_new
            o = o_pre.sigmoid()
            h_new = o * c_act
            record_gate("output", o)
        else:  # nog
            h_new = c_act
        if f is not None:
            record_gate("forget", f)
        if i is not None:
            record_gate("input", i)
        if self.proj_size > 0:
            h_new = linear(h_new, p["weight_hr"], None)
        return h_new, c_new
