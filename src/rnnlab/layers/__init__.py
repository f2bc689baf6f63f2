"""Recurrent layers and cells with torch's interface, and the factory the workbench builds them with."""

from rnnlab.layers.attention import AdditiveAttention, Attention, MultiplicativeAttention
from rnnlab.layers.cell_modules import GRUCell, LSTMCell, RNNCell
from rnnlab.layers.conv import ConvGRU, ConvLSTM, ConvRNN
from rnnlab.layers.ctc import CTCHead, ctc_greedy_decode, ctc_prefix_beam_search
from rnnlab.layers.factory import (
    CELLS,
    build_layer,
    check_cell,
    default_variant,
    has_keep_gate,
    length_options,
    mixed_families,
    needs_input_projection,
    variants_of,
)
from rnnlab.layers.modern import LRU, MLSTM, RGLRU, SLSTM, IndRNN, MinGRU, MinLSTM
from rnnlab.layers.quantize import quantize_dynamic
from rnnlab.layers.recurrent import Recurrent
from rnnlab.layers.seq2seq import Seq2Seq
from rnnlab.layers.special import ClockworkRNN, DepthGatedLSTM
from rnnlab.layers.stack import Stack
from rnnlab.layers.torch_like import GRU, LSTM, RNN

__all__ = ["AdditiveAttention", "Attention", "CTCHead", "MultiplicativeAttention", "Seq2Seq",
           "ctc_greedy_decode", "ctc_prefix_beam_search",
           "CELLS", "GRU", "GRUCell", "LRU", "LSTM", "LSTMCell", "MLSTM", "RGLRU", "RNN", "RNNCell", "SLSTM",
           "ClockworkRNN",
           "ConvGRU", "ConvLSTM", "ConvRNN", "DepthGatedLSTM", "IndRNN", "MinGRU", "MinLSTM", "Recurrent", "Stack",
           "build_layer", "check_cell", "default_variant", "has_keep_gate", "length_options", "mixed_families",
           "needs_input_projection", "quantize_dynamic", "variants_of"]
