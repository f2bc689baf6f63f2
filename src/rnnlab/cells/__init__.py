"""The math of one time step per cell family (see :mod:`rnnlab.cells.base` for the contract)."""

from rnnlab.cells.base import CellMath, gate_layer_norm, layer_norm
from rnnlab.cells.clockwork import ClockworkMath
from rnnlab.cells.depth_gated import DepthGatedMath
from rnnlab.cells.gru import SQUARE_INPUT_VARIANTS, GRUMath
from rnnlab.cells.lstm import LSTMMath
from rnnlab.cells.rnn import RNNMath

__all__ = ["CellMath", "ClockworkMath", "DepthGatedMath", "GRUMath", "LSTMMath", "RNNMath",
           "SQUARE_INPUT_VARIANTS", "gate_layer_norm", "layer_norm"]
