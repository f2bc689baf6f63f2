"""rnnlab: recurrent neural networks on PyTorch, every variant of the literature, and a workbench to compare them."""

from rnnlab.errors import InputError
from rnnlab.layers import (
    GRU,
    LRU,
    LSTM,
    MLSTM,
    RGLRU,
    RNN,
    SLSTM,
    AdditiveAttention,
    ClockworkRNN,
    ConvGRU,
    ConvLSTM,
    ConvRNN,
    CTCHead,
    DepthGatedLSTM,
    GRUCell,
    IndRNN,
    LSTMCell,
    MinGRU,
    MinLSTM,
    MultiplicativeAttention,
    RNNCell,
    Seq2Seq,
    Stack,
    build_layer,
    quantize_dynamic,
)

__version__ = "0.1.0"

__all__ = ["AdditiveAttention", "CTCHead", "MultiplicativeAttention", "Seq2Seq", "ConvGRU", "ConvLSTM", "ConvRNN",
           "GRU", "LRU", "LSTM", "RGLRU", "RNN", "SLSTM", "ClockworkRNN", "DepthGatedLSTM", "GRUCell", "IndRNN",
           "InputError", "LSTMCell", "MLSTM", "MinGRU", "MinLSTM", "RNNCell", "Stack", "build_layer",
           "quantize_dynamic"]
