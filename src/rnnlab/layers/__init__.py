"""Recurrent layers and cells with torch's interface, and the factory the workbench builds them with."""

from rnnlab.layers.cell_modules import GRUCell, LSTMCell, RNNCell
from rnnlab.layers.conv import ConvGRU, ConvLSTM, ConvRNN
from rnnlab.layers.factory import (
    CELLS,
    build_layer,
    default_variant,
    has_keep_gate,
    needs_input_projection,
    variants_of,
)
from rnnlab.layers.quantize import quantize_dynamic
from rnnlab.layers.recurrent import Recurrent
from rnnlab.layers.special import ClockworkRNN, DepthGatedLSTM
from rnnlab.layers.torch_like import GRU, LSTM, RNN

__all__ = ["CELLS", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell", "ClockworkRNN", "ConvGRU", "ConvLSTM",
           "ConvRNN", "DepthGatedLSTM",
           "Recurrent", "build_layer", "default_variant", "has_keep_gate", "needs_input_projection", "quantize_dynamic",
           "variants_of"]
