"""rnnlab: recurrent neural networks on PyTorch, every variant of the literature, and a workbench to compare them."""

from rnnlab.errors import InputError
from rnnlab.layers import (
    GRU,
    LSTM,
    RNN,
    ClockworkRNN,
    ConvGRU,
    ConvLSTM,
    ConvRNN,
    DepthGatedLSTM,
    GRUCell,
    LSTMCell,
    RNNCell,
    build_layer,
    quantize_dynamic,
)

__version__ = "0.1.0"

__all__ = ["GRU", "LSTM", "RNN", "ClockworkRNN", "ConvGRU", "ConvLSTM", "ConvRNN",
           "DepthGatedLSTM", "GRUCell", "InputError", "LSTMCell",
           "RNNCell", "build_layer", "quantize_dynamic"]
