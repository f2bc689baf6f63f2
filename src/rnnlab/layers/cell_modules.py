"""``RNNCell``, ``LSTMCell``, ``GRUCell``: one time step as a module, drop-in for ``torch.nn``'s cells.

They share the cell math with the layers, so stepping a cell by hand equals running the layer. Parameter
names are torch's cell names: ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` (plus the variant's
own, e.g. ``weight_peephole``). Input ``(B, I)`` or ``(I,)``; state ``h`` or ``(h, c)`` of ``(B, H)``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rnnlab.cells import GRUMath, LSTMMath, RNNMath
from rnnlab.cells.base import CellMath, check_positive_int
from rnnlab.errors import InputError, ShapeError, StateCountError


class CellModule(nn.Module):
    """A cell math with its parameters. Subclasses build ``self.cell`` before calling ``_setup``."""

    cell: CellMath

    def _setup(self, input_size: int, device, dtype, forget_bias, recurrent_init, chrono_init=None) -> None:
        check_positive_int("input_size", input_size)
        self.cell.check_input_size(input_size)
        self.cell.check_options(forget_bias=forget_bias, recurrent_init=recurrent_init, chrono_init=chrono_init)
        self.input_size, self.hidden_size = input_size, self.cell.hidden_size
        self.forget_bias, self.recurrent_init, self.chrono_init = forget_bias, recurrent_init, chrono_init
        for name, shape in self.cell.param_shapes(input_size).items():
            self.register_parameter(name, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
        self.reset_parameters()

    def params(self) -> dict[str, Tensor]:
        return dict(self.named_parameters())

    def reset_parameters(self) -> None:
        self.cell.reset_parameters(self.params(), forget_bias=self.forget_bias,
                                   recurrent_init=self.recurrent_init, chrono_init=self.chrono_init)

    def forward(self, input: Tensor, hx=None):
        if input.dim() not in (1, 2):
            raise InputError(f"expected input of 1 (unbatched) or 2 (batched) dimensions, got {input.dim()}")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"expected input with input_size {self.input_size} features, got {input.shape[-1]}")
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        sizes = self.cell.state_sizes()
        if hx is None:
            state = self.cell.initial_state(x.shape[0], dtype=x.dtype, device=x.device)
        else:
            state = (hx,) if isinstance(hx, Tensor) else tuple(hx)
            if len(state) != len(sizes):
                raise StateCountError(f"expected {len(sizes)} state tensor(s), got {len(state)}")
            for s, n in zip(state, sizes, strict=True):
                expected = (x.shape[0], n) if batched else (n,)
                if tuple(s.shape) != expected:
                    raise ShapeError(f"expected state of shape {expected}, got {tuple(s.shape)}")
            state = state if batched else tuple(s.unsqueeze(0) for s in state)
        p = self.cell.prepare(self.params())
        new = self.cell.step(self.cell.project_input(x, p), state, p)
        new = new if batched else tuple(s.squeeze(0) for s in new)
        return new[0] if len(new) == 1 else new


class RNNCell(CellModule):
    """``torch.nn.RNNCell``: :math:`h' = \\phi(W_{ih} x + b_{ih} + W_{hh} h + b_{hh})`."""

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", device=None, dtype=None, *,
                 layer_norm=False, recurrent_init=None):
        super().__init__()
        self.cell = RNNMath(hidden_size, nonlinearity, layer_norm=layer_norm, bias=bias)
        self._setup(input_size, device, dtype, None, recurrent_init)


class LSTMCell(CellModule):
    """``torch.nn.LSTMCell`` with ``variant=`` (equations in :mod:`rnnlab.cells.lstm`); returns ``(h', c')``."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, variant="vanilla",
                 layer_norm=False, forget_bias=None, recurrent_init=None, chrono_init=None):
        super().__init__()
        self.cell = LSTMMath(hidden_size, variant, layer_norm=layer_norm, bias=bias)
        self._setup(input_size, device, dtype, forget_bias, recurrent_init, chrono_init)


class GRUCell(CellModule):
    """``torch.nn.GRUCell`` with ``variant=`` (equations in :mod:`rnnlab.cells.gru`); returns ``h'``."""

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, *, variant="vanilla",
                 layer_norm=False, forget_bias=None, recurrent_init=None, chrono_init=None):
        super().__init__()
        self.cell = GRUMath(hidden_size, variant, layer_norm=layer_norm, bias=bias)
        self._setup(input_size, device, dtype, forget_bias, recurrent_init, chrono_init)
