"""``Stack``: recurrent layers of different families in one model, e.g. an LSTM layer under a GRU layer.

The layers run one after the other, each on the whole output sequence of the one below ("combining the power of
LSTM and GRU"). ``build_layer("lstm+gru", ...)`` builds one from a cell spec.

State layout: a tuple with one entry per layer of the stack, each that layer's own state exactly as the layer
takes and returns it (``h_n`` ``(L_k*D_k, B, H_k)`` for a GRU, ``(h_n, c_n)`` for an LSTM, ...). ``hx`` is
``None`` or such a tuple (an entry may be ``None``: zeros for that layer). Stepping the stack with its carried
state equals the full run because stepping each layer does.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from rnnlab.cells.base import check_rate
from rnnlab.errors import InputError
from rnnlab.layers.recurrent import Recurrent


class Stack(nn.Module):
    """Recurrent layers of any families, run bottom to top: ``Stack(rnnlab.LSTM(8, 32), rnnlab.GRU(32, 32))``.

    Args: the layers (rnnlab recurrent layers, each possibly multi-layer or bidirectional); keyword
    ``dropout=0.0`` between the layers of the stack (training only, as torch's ``dropout``).

    Sizes must chain: layer ``k``'s ``input_size`` equals the features per step of layer ``k-1``'s output
    (``num_directions * output size``), and every layer has the same ``batch_first``. Inputs and outputs as the
    layers' (tensor, unbatched or ``PackedSequence``); the state is a tuple of the layers' states (module doc).
    """

    def __init__(self, *layers: Recurrent, dropout: float = 0.0):
        super().__init__()
        if not layers:
            raise InputError("a Stack needs at least one layer, got none")
        for k, layer in enumerate(layers):
            if not isinstance(layer, Recurrent):
                raise TypeError(f"layer {k} of a Stack must be an rnnlab recurrent layer (rnnlab.LSTM, rnnlab.GRU, "
                                f"rnnlab.MinGRU, ...), got {type(layer).__name__}")
        for k in range(1, len(layers)):
            below, above = layers[k - 1], layers[k]
            width = below.num_directions * below.output_size
            if above.input_size != width:
                raise InputError(
                    f"the stack's sizes don't chain: layer {k} ({type(above).__name__}) expects input_size "
                    f"{width} (the {type(below).__name__} below gives {below.num_directions} x {below.output_size} "
                    f"features per step), got input_size={above.input_size}")
            if above.batch_first != below.batch_first:
                raise InputError(f"every layer of a Stack needs the same batch_first: layer {k} has "
                                 f"{above.batch_first}, layer {k - 1} {below.batch_first}")
        self.layers = nn.ModuleList(layers)
        self.dropout = check_rate("dropout", dropout, allow_one=True)
        bottom, top = layers[0], layers[-1]
        self.input_size, self.hidden_size, self.output_size = bottom.input_size, top.hidden_size, top.output_size
        self.batch_first, self.bidirectional, self.num_directions = top.batch_first, top.bidirectional, \
            top.num_directions
        self.num_layers = sum(layer.num_layers for layer in layers)

    def forward(self, input, hx=None):
        n = len(self.layers)
        if hx is None:
            hx = (None,) * n
        elif not isinstance(hx, (tuple, list)) or len(hx) != n:
            got = f"{type(hx).__name__} of {len(hx)}" if isinstance(hx, (tuple, list)) else type(hx).__name__
            raise InputError(f"expected hx to be a tuple of {n} layer states (one per layer of the stack), got {got}")
        x, states = input, []
        for k, layer in enumerate(self.layers):
            if k > 0 and self.dropout > 0 and self.training:
                x = _map(lambda t: F.dropout(t, self.dropout, True), x)
            x, state = layer(x, hx[k])  # each layer's own output layout and state
            states.append(state)
        return x, tuple(states)

    def extra_repr(self) -> str:
        return f"dropout={self.dropout}" if self.dropout else ""


def _map(fn, x: Tensor | PackedSequence):
    return x._replace(data=fn(x.data)) if isinstance(x, PackedSequence) else fn(x)
