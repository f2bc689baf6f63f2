"""Building a layer from a cell name and variant: what the workbench and the CLI use."""

from __future__ import annotations

from torch import nn

from rnnlab.cells import SQUARE_INPUT_VARIANTS, ClockworkMath, DepthGatedMath, GRUMath, LSTMMath, RNNMath
from rnnlab.errors import InputError
from rnnlab.layers.special import ClockworkRNN, DepthGatedLSTM
from rnnlab.layers.torch_like import GRU, LSTM, RNN

_LAYERS = {"rnn": (RNN, RNNMath), "lstm": (LSTM, LSTMMath), "gru": (GRU, GRUMath),
           "clockwork": (ClockworkRNN, ClockworkMath), "dglstm": (DepthGatedLSTM, DepthGatedMath)}
CELLS = tuple(_LAYERS)


def _check_cell(cell: str) -> None:
    if cell not in _LAYERS:
        raise InputError(f"unknown cell {cell!r}; expected one of: {', '.join(CELLS)}")


def variants_of(cell: str) -> tuple[str, ...]:
    """The variant names a cell takes (for ``rnn``: the nonlinearities)."""
    _check_cell(cell)
    return _LAYERS[cell][1].variants


def default_variant(cell: str) -> str:
    _check_cell(cell)
    return _LAYERS[cell][1].default_variant


def has_keep_gate(cell: str, variant: str | None) -> bool:
    """True when the cell's variant has a gate that keeps the previous state, which ``forget_bias`` and
    ``chrono_init`` initialise (LSTM and GRU variants but ``nfg``; not the RNN or the Clockwork RNN)."""
    _check_cell(cell)
    math_cls = _LAYERS[cell][1]
    variant = math_cls.default_variant if variant is None else variant
    return variant in math_cls.variants and math_cls(1, variant).has_keep_gate()


def needs_input_projection(cell: str, variant: str | None) -> bool:
    """True when the cell's equations need ``input_size == hidden_size`` (GRU ``mut1``, ``mut2``)."""
    return cell == "gru" and variant in SQUARE_INPUT_VARIANTS


def build_layer(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                variant: str | None = None, batch_first: bool = False, dropout: float = 0.0,
                bidirectional: bool = False, **options) -> nn.Module:
    """A recurrent layer from a cell name (``CELLS``) and a variant name (``variants_of(cell)``)."""
    _check_cell(cell)
    layer_cls, math_cls = _LAYERS[cell]
    variant = math_cls.default_variant if variant is None else variant
    if variant not in math_cls.variants:
        raise InputError(f"unknown {cell} variant {variant!r}; expected one of: {', '.join(math_cls.variants)}")
    args = dict(num_layers=num_layers, batch_first=batch_first, dropout=dropout, bidirectional=bidirectional)
    if cell == "rnn":
        args["nonlinearity"] = variant
    elif cell in ("lstm", "gru"):
        args["variant"] = variant
    return layer_cls(input_size, hidden_size, **args, **options)
