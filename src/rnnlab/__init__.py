"""rnnlab: recurrent neural networks on PyTorch, every variant of the literature, and a workbench to compare them."""

from rnnlab.errors import InputError
from rnnlab.layers import (
    GRU,
    LSTM,
    RNN,
    AdditiveAttention,
    ClockworkRNN,
    ConvGRU,
    ConvLSTM,
    ConvRNN,
    CTCHead,
    DepthGatedLSTM,
    GRUCell,
    LSTMCell,
    MultiplicativeAttention,
    RNNCell,
    Seq2Seq,
    build_layer,
)

__version__ = "0.1.0"

__all__ = ["AdditiveAttention", "CTCHead", "MultiplicativeAttention", "Seq2Seq",
           "ConvGRU", "ConvLSTM", "ConvRNN",
           "GRU", "LSTM", "RNN", "ClockworkRNN", "DepthGatedLSTM", "GRUCell", "InputError", "LSTMCell",
           "RNNCell", "build_layer"]
