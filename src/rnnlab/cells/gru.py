"""GRU (Cho et al. 2014) and its variants: torch/cuDNN's form, Cho's original reset placement, the three
mutated architectures of Jozefowicz et al. 2015 and the minimal gated unit of Zhou et al. 2016.

``vanilla`` (torch's and cuDNN's: the reset gate multiplies the recurrent product):

.. math::

    \\begin{array}{ll}
    r_t = \\sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\\\
    z_t = \\sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\\\
    n_t = \\tanh(W_{in} x_t + b_{in} + r_t \\odot (W_{hn} h_{t-1} + b_{hn})) \\\\
    h_t = (1 - z_t) \\odot n_t + z_t \\odot h_{t-1}
    \\end{array}

``reset_before`` (Cho et al. 2014): :math:`n_t = \\tanh(W_{in} x_t + b_{in} + W_{hn} (r_t \\odot h_{t-1}) + b_{hn})`.

``mut1`` (rows ``weight_ih``: r, z; ``weight_hh``: r, n; needs ``input_size == hidden_size``):

.. math::

    \\begin{array}{ll}
    z_t = \\sigma(W_{iz} x_t + b_{iz}) \\\\
    r_t = \\sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\\\
    h_t = \\tanh(W_{hn} (r_t \\odot h_{t-1}) + b_{hn} + \\tanh(x_t)) \\odot z_t + h_{t-1} \\odot (1 - z_t)
    \\end{array}

``mut2`` (rows ``weight_ih``: z, n; ``weight_hh``: r, z, n; needs ``input_size == hidden_size``):

.. math::

    \\begin{array}{ll}
    z_t = \\sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\\\
    r_t = \\sigma(x_t + W_{hr} h_{t-1} + b_{hr}) \\\\
    h_t = \\tanh(W_{hn} (r_t \\odot h_{t-1}) + b_{hn} + W_{in} x_t + b_{in}) \\odot z_t + h_{t-1} \\odot (1 - z_t)
    \\end{array}

``mut3`` (rows r, z, n in both):

.. math::

    \\begin{array}{ll}
    z_t = \\sigma(W_{iz} x_t + b_{iz} + W_{hz} \\tanh(h_{t-1}) + b_{hz}) \\\\
    r_t = \\sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\\\
    h_t = \\tanh(W_{hn} (r_t \\odot h_{t-1}) + b_{hn} + W_{in} x_t + b_{in}) \\odot z_t + h_{t-1} \\odot (1 - z_t)
    \\end{array}

``mgu`` (rows f, n in both):

.. math::

    \\begin{array}{ll}
    f_t = \\sigma(W_{if} x_t + b_{if} + W_{hf} h_{t-1} + b_{hf}) \\\\
    n_t = \\tanh(W_{in} x_t + b_{in} + W_{hn} (f_t \\odot h_{t-1}) + b_{hn}) \\\\
    h_t = (1 - f_t) \\odot h_{t-1} + f_t \\odot n_t
    \\end{array}

``layer_norm=True`` normalises each gate block of the input and recurrent products separately (gains
``ln_weight_ih``, ``ln_weight_hh``), before the biases are added.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State
from rnnlab.cells.probe import record_gate
from rnnlab.errors import InputError

_LAYOUT = {  # variant: (gates_ih, gates_hh)
    "vanilla": ("rzn", "rzn"),
    "reset_before": ("rzn", "rzn"),
    "mut1": ("rz", "rn"),
    "mut2": ("zn", "rzn"),
    "mut3": ("rzn", "rzn"),
    "mgu": ("fn", "fn"),
}
#: variants whose equations add the raw input ``x_t`` to a hidden-sized vector
SQUARE_INPUT_VARIANTS = ("mut1", "mut2")


class GRUMath(CellMath):
    """One GRU step. State ``(h,)``, ``h`` ``(B, H)``.

    ``project_input`` returns ``(..., 3H)`` laid out ``r, z, n`` for every variant but ``mgu`` (``f, n``):
    the MUT variants' raw-input terms (``tanh(x_t)``, ``x_t``) take the place of missing weight rows.
    """

    family = "gru"
    variants = tuple(_LAYOUT)

    def configure(self) -> None:
        ih, hh = _LAYOUT[self.variant]
        self.gates_ih, self.gates_hh = tuple(ih), tuple(hh)
        # the gate that keeps h_{t-1}: z in torch's form; 1 - z in the MUTs; 1 - f in the MGU
        self.forget_gate = {"mgu": ("f", -1.0), "mut1": ("z", -1.0), "mut2": ("z", -1.0),
                            "mut3": ("z", -1.0)}.get(self.variant, ("z", 1.0))

    def check_input_size(self, input_size: int) -> None:
        if self.variant in SQUARE_INPUT_VARIANTS and input_size != self.hidden_size:
            raise InputError(
                f"GRU variant {self.variant!r} adds the raw input x_t to a hidden-sized vector (Jozefowicz "
                f"et al. 2015), so it needs input_size == hidden_size; got input_size={input_size}, "
                f"hidden_size={self.hidden_size} (put a Linear({input_size}, {self.hidden_size}) in front)")

    def project_input(self, x: Tensor, p: Params) -> Tensor:
        gx = super().project_input(x, p)
        if self.variant == "mut1":  # (r, z) + tanh(x) in the n slot
            return torch.cat([gx, x.tanh()], dim=-1)
        if self.variant == "mut2":  # x in the r slot + (z, n)
            return torch.cat([x, gx], dim=-1)
        return gx

    def input_is_affine(self) -> bool:
        return self.variant not in SQUARE_INPUT_VARIANTS and not self.layer_norm

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        (h,) = state
        H = self.hidden_size
        v = self.variant
        if v == "vanilla":
            gh = self.recurrent(h, p)  # (B, 3H)
            rz = (gx[:, :2 * H] + gh[:, :2 * H]).sigmoid()
            r, z = rz[:, :H], rz[:, H:]
            n = (gx[:, 2 * H:] + r * gh[:, 2 * H:]).tanh()
            record_gate("reset", r)
            record_gate("update", z)
            return ((1.0 - z) * n + z * h,)
        if v == "mgu":
            f = (gx[:, :H] + self.recurrent(h, p, self.rows(self.gates_hh, "f"))).sigmoid()
            n = (gx[:, H:] + self.recurrent(f * h, p, self.rows(self.gates_hh, "n"))).tanh()
            record_gate("forget", f)
            return ((1.0 - f) * h + f * n,)
        # reset applied before the recurrent product of the candidate: reset_before and the MUTs
        gx_r, gx_z, gx_n = gx.split(H, dim=-1)
        if v in ("reset_before", "mut2"):  # r and z both see W_h h: one product
            rz = (gx[:, :2 * H] + self.recurrent(h, p, self.rows(self.gates_hh, "r", "z"))).sigmoid()
            r, z = rz[:, :H], rz[:, H:]
        else:
            r = (gx_r + self.recurrent(h, p, self.rows(self.gates_hh, "r"))).sigmoid()
            if v == "mut1":
                z = gx_z.sigmoid()
            else:  # mut3: z sees tanh(h)
                z = (gx_z + self.recurrent(h.tanh(), p, self.rows(self.gates_hh, "z"))).sigmoid()
        n = (gx_n + self.recurrent(r * h, p, self.rows(self.gates_hh, "n"))).tanh()
        record_gate("reset", r)
        record_gate("update", z)
        if v == "reset_before":
            return ((1.0 - z) * n + z * h,)
        return (n * z + h * (1.0 - z),)
