"""Building a layer from a cell name and variant: what the workbench and the CLI use.

A cell name is a family (``CELLS``) or a mixed stack of families joined by ``+`` (``"lstm+gru"``: an LSTM layer
under a GRU layer, see :class:`rnnlab.layers.stack.Stack`); ``num_layers`` repeats a mixed pattern.
"""

from __future__ import annotations

from torch import nn

from rnnlab.cells import SQUARE_INPUT_VARIANTS, ClockworkMath, DepthGatedMath, GRUMath, LSTMMath, RNNMath
from rnnlab.cells.indrnn import IndRNNMath
from rnnlab.cells.lru import LRUMath
from rnnlab.cells.minimal import MinGRUMath, MinLSTMMath
from rnnlab.cells.mlstm import MLSTMMath
from rnnlab.cells.rglru import RGLRUMath
from rnnlab.cells.slstm import SLSTMMath
from rnnlab.errors import InputError
from rnnlab.layers.modern import LRU, MLSTM, RGLRU, SLSTM, IndRNN, MinGRU, MinLSTM
from rnnlab.layers.special import ClockworkRNN, DepthGatedLSTM
from rnnlab.layers.stack import Stack
from rnnlab.layers.torch_like import GRU, LSTM, RNN

_LAYERS = {"rnn": (RNN, RNNMath), "lstm": (LSTM, LSTMMath), "gru": (GRU, GRUMath),
           "clockwork": (ClockworkRNN, ClockworkMath), "dglstm": (DepthGatedLSTM, DepthGatedMath),
           "indrnn": (IndRNN, IndRNNMath), "mingru": (MinGRU, MinGRUMath), "minlstm": (MinLSTM, MinLSTMMath),
           "lru": (LRU, LRUMath), "rglru": (RGLRU, RGLRUMath), "slstm": (SLSTM, SLSTMMath),
           "mlstm": (MLSTM, MLSTMMath)}
CELLS = tuple(_LAYERS)
#: families whose layer takes ``variant=`` (the RNN takes it as ``nonlinearity=``)
_TAKES_VARIANT = ("lstm", "gru", "slstm")
MIXED_VARIANT = "vanilla"  # the one variant name of a mixed stack: each layer is its family's default


def mixed_families(cell: str) -> tuple[str, ...] | None:
    """The families of a mixed cell spec ``"lstm+gru"`` (validated), or None if ``cell`` is not one."""
    if not isinstance(cell, str) or "+" not in cell:
        return None
    families = tuple(part.strip() for part in cell.split("+"))
    for family in families:
        if family not in _LAYERS or family == "dglstm":
            known = ", ".join(c for c in CELLS if c != "dglstm")
            raise InputError(f"unknown cell {family!r} in mixed stack {cell!r}; expected families joined by '+' "
                             f"from: {known}")
    return families


def check_cell(cell: str) -> None:
    """Raise ``InputError`` unless ``cell`` is a family or a mixed stack of families."""
    if mixed_families(cell) is None and cell not in _LAYERS:
        raise InputError(f"unknown cell {cell!r}; expected one of: {', '.join(CELLS)}, or families joined by '+' "
                         "(a mixed stack, e.g. lstm+gru)")



def variants_of(cell: str) -> tuple[str, ...]:
    """The variant names a cell takes (for ``rnn``: the nonlinearities; a mixed stack: its one name)."""
    check_cell(cell)
    if mixed_families(cell):
        return (MIXED_VARIANT,)
    return _LAYERS[cell][1].variants


def default_variant(cell: str) -> str:
    check_cell(cell)
    if mixed_families(cell):
        return MIXED_VARIANT
    return _LAYERS[cell][1].default_variant


def has_keep_gate(cell: str, variant: str | None) -> bool:
    """True when the cell's variant has a gate that keeps the previous state, which ``forget_bias`` and
    ``chrono_init`` initialise (LSTM and GRU variants but ``nfg``, minGRU, minLSTM, sLSTM; not the RNN, the
    Clockwork RNN, IndRNN or the LRU). A mixed stack has one if every family in it has."""
    check_cell(cell)
    families = mixed_families(cell)
    if families:
        return all(has_keep_gate(family, None) for family in families)
    math_cls = _LAYERS[cell][1]
    variant = math_cls.default_variant if variant is None else variant
    return variant in math_cls.variants and math_cls(1, variant).has_keep_gate()


def length_options(cell: str, seq_len: int) -> dict:
    """Layer options that depend on the task's sequence length: IndRNN's ``max_len`` (its recurrent bound
    :math:`2^{1/T}` and initialisation are set for ``T`` steps); none for the other cells."""
    return {"max_len": int(seq_len)} if cell == "indrnn" else {}


def needs_input_projection(cell: str, variant: str | None) -> bool:
    """True when the cell's equations need ``input_size == hidden_size`` (GRU ``mut1``, ``mut2``)."""
    return cell == "gru" and variant in SQUARE_INPUT_VARIANTS


def build_layer(cell: str, input_size: int, hidden_size: int, num_layers: int = 1, *,
                variant: str | None = None, batch_first: bool = False, dropout: float = 0.0,
                bidirectional: bool = False, **options) -> nn.Module:
    """A recurrent layer from a cell name (``CELLS``, or a mixed ``"lstm+gru"``) and a variant name
    (``variants_of(cell)``). A mixed stack repeats its pattern ``num_layers`` times, every layer of
    ``hidden_size`` units with its family's default variant; ``dropout`` applies between all its layers."""
    check_cell(cell)
    families = mixed_families(cell)
    if families:
        if variant not in (None, MIXED_VARIANT):
            raise InputError(f"a mixed stack ({cell}) has no variants: each layer is its family's default; "
                             f"got variant {variant!r}")
        layers, width = [], input_size
        for family in families * num_layers:
            layer = build_layer(family, width, hidden_size, batch_first=batch_first, bidirectional=bidirectional,
                                **options)
            layers.append(layer)
            width = layer.num_directions * layer.output_size
        return Stack(*layers, dropout=dropout)
    layer_cls, math_cls = _LAYERS[cell]
    variant = math_cls.default_variant if variant is None else variant
    if variant not in math_cls.variants:
        raise InputError(f"unknown {cell} variant {variant!r}; expected one of: {', '.join(math_cls.variants)}")
    args = dict(num_layers=num_layers, batch_first=batch_first, dropout=dropout, bidirectional=bidirectional)
    if cell == "rnn":
        args["nonlinearity"] = variant
    elif cell in _TAKES_VARIANT:
        args["variant"] = variant
    return layer_cls(input_size, hidden_size, **args, **options)
