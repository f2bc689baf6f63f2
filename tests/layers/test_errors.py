"""Bad arguments and shapes raise ValueError/TypeError at once, naming what was expected and what came."""

import pytest
import torch

import rnnlab


@pytest.mark.parametrize("make,message", [
    (lambda: rnnlab.LSTM(3, 4, variant="bogus"), "unknown lstm variant 'bogus'; expected one of: vanilla"),
    (lambda: rnnlab.GRU(3, 4, variant="peephole"), "unknown gru variant 'peephole'"),
    (lambda: rnnlab.RNN(3, 4, nonlinearity="sigmoid"), "nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"),
    (lambda: rnnlab.LSTM(0, 4), "input_size must be positive, got 0"),
    (lambda: rnnlab.LSTM(3, -2), "hidden_size must be positive, got -2"),
    (lambda: rnnlab.LSTM(3, 4, num_layers=0), "num_layers must be positive, got 0"),
    (lambda: rnnlab.LSTM(3, 4.5), "hidden_size must be an int, got float"),
    (lambda: rnnlab.LSTM(3, 4, proj_size=4), r"proj_size must be smaller than hidden_size \(4\), got 4"),
    (lambda: rnnlab.LSTM(3, 4, proj_size=-1), "proj_size must be a non-negative int, got -1"),
    (lambda: rnnlab.GRU(3, 4, dropout=-0.1), r"dropout must be in \[0, 1\], got -0.1"),
    (lambda: rnnlab.LSTM(3, 4, variant="nfg", forget_bias=1.0), "forget_bias does not apply to lstm variant 'nfg'"),
    (lambda: rnnlab.RNN(3, 4, forget_bias=1.0), "forget_bias does not apply to rnn"),
    (lambda: rnnlab.LSTM(3, 4, bias=False, forget_bias=1.0), "forget_bias needs bias=True"),
    (lambda: rnnlab.LSTM(3, 4, variant="nfg", chrono_init=10), "chrono_init does not apply to lstm variant 'nfg'"),
    (lambda: rnnlab.RNN(3, 4, chrono_init=10), "chrono_init does not apply to rnn"),
    (lambda: rnnlab.LSTM(3, 4, chrono_init=2), "chrono_init must be an int T_max >= 3"),
    (lambda: rnnlab.LSTM(3, 4, chrono_init=10.0), "chrono_init must be an int T_max >= 3"),
    (lambda: rnnlab.GRU(3, 4, chrono_init=10, forget_bias=1.0), "give forget_bias or chrono_init, not both"),
    (lambda: rnnlab.LSTMCell(3, 4, chrono_init=1), "chrono_init must be an int T_max >= 3"),
    (lambda: rnnlab.LSTM(3, 4, recurrent_init="xavier"), "recurrent_init must be None, 'orthogonal' or 'identity'"),
    (lambda: rnnlab.GRU(3, 4, variant="mut1"), "needs input_size == hidden_size; got input_size=3, hidden_size=4"),
    (lambda: rnnlab.GRU(4, 4, 2, bidirectional=True, variant="mut2"), "got input_size=8, hidden_size=4"),
    (lambda: rnnlab.DepthGatedLSTM(3, 4, bidirectional=True), "DepthGatedLSTM is unidirectional"),
    (lambda: rnnlab.ClockworkRNN(3, 4, periods=(1, 1)), "periods must be strictly increasing"),
    (lambda: rnnlab.LSTM(3, 4, backend="cuda-magic"), "backend must be one of"),
    (lambda: rnnlab.LSTM(3, 4, batch_first="yes"), "batch_first must be a bool, got str"),
    (lambda: rnnlab.build_layer("transformer", 3, 4), "unknown cell 'transformer'; expected one of: rnn, lstm"),
])
def test_bad_construction(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_proj_size_for_gru_or_rnn_is_torchs_value_error():
    for family in (rnnlab.GRU, rnnlab.RNN):
        with pytest.raises(ValueError, match="proj_size argument is only supported for LSTM, not RNN or GRU"):
            family(3, 4, proj_size=2)


@pytest.mark.parametrize("call,message", [
    (lambda m: m(torch.randn(5, 2, 7)), "expected input with input_size 3 features, got 7"),
    (lambda m: m(torch.randn(5)), r"expected input of 2 \(unbatched\) or 3 \(batched\) dimensions, got 1"),
    (lambda m: m(torch.randn(0, 2, 3)), "expected a sequence of at least 1 step, got 0"),
    (lambda m: m(torch.randn(5, 2, 3), torch.zeros(2, 2, 4)), "expected hx to be a tuple of 2 Tensors, got Tensor"),
    (lambda m: m(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4))),
     r"expected h0 of shape \(2, 2, 4\), got \(1, 2, 4\)"),
    (lambda m: m(torch.randn(5, 2, 3), (torch.zeros(2, 2, 4), torch.zeros(2, 3, 4))),
     r"expected c0 of shape \(2, 2, 4\), got \(2, 3, 4\)"),
    (lambda m: m(torch.randn(5, 3), (torch.zeros(2, 2, 4), torch.zeros(2, 2, 4))),
     r"expected h0 of shape \(2, 4\), got \(2, 2, 4\)"),
    (lambda m: m([1, 2, 3]), "input must be a Tensor or PackedSequence, got list"),
])
def test_bad_call(call, message):
    lstm = rnnlab.LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match=message):
        call(lstm)


def test_bad_cell_call():
    cell = rnnlab.LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"expected state of shape \(2, 4\), got \(2, 5\)"):
        cell(torch.randn(2, 3), (torch.zeros(2, 5), torch.zeros(2, 4)))
    with pytest.raises(ValueError, match="expected input with input_size 3 features, got 2"):
        cell(torch.randn(2, 2))
