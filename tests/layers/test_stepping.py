"""A layer equals stepping its cell by hand, and stepping the layer itself with carried state."""

import pytest
import torch

import rnnlab
from rnnlab.layers import variants_of

from .catalog import CONFIGS, IDS

T, B = 6, 2


def as_tuple(state):
    return (state,) if isinstance(state, torch.Tensor) else tuple(state)


@pytest.mark.parametrize("name,make,input_size", CONFIGS, ids=IDS)
def test_stepping_the_layer_equals_the_full_sequence(name, make, input_size):
    layer = make(input_size).double()
    x = torch.randn(T, B, input_size, dtype=torch.double)
    full, final = layer(x)
    state = None
    for t in range(T):
        y, state = layer(x[t:t + 1], state)
        torch.testing.assert_close(y[0], full[t], rtol=0, atol=1e-12)
    for a, b in zip(as_tuple(state), as_tuple(final), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)


CELL_MODULES = {"rnn": rnnlab.RNNCell, "lstm": rnnlab.LSTMCell, "gru": rnnlab.GRUCell}


@pytest.mark.parametrize("cell,variant", [(c, v) for c in CELL_MODULES for v in variants_of(c)])
def test_layer_equals_stepping_its_cell_by_hand(cell, variant):
    I = 4 if variant in ("mut1", "mut2") else 3
    layer = rnnlab.build_layer(cell, I, 4, variant=variant, layer_norm=True).double()
    kw = {"nonlinearity": variant} if cell == "rnn" else {"variant": variant}
    module = CELL_MODULES[cell](I, 4, layer_norm=True, **kw).double()
    module.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})  # strip "_l0"
    x = torch.randn(T, B, I, dtype=torch.double)
    out, _ = layer(x)
    state = None
    for t in range(T):
        state = module(x[t], state)
        h = state if isinstance(state, torch.Tensor) else state[0]
        torch.testing.assert_close(out[t], h, rtol=0, atol=1e-12)


def test_two_layer_lstm_generation_loop_matches_full_run():
    lstm = rnnlab.LSTM(3, 5, num_layers=2, batch_first=True).double().eval()
    x = torch.randn(1, 8, 3, dtype=torch.double)
    full, _ = lstm(x)
    state, outs = None, []
    for t in range(8):
        y, state = lstm(x[:, t:t + 1], state)
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs, 1), full, rtol=0, atol=1e-12)


def test_zoneout_in_eval_mode_streams_exactly():
    lstm = rnnlab.LSTM(3, 4, zoneout=0.3).double().eval()
    x = torch.randn(5, 2, 3, dtype=torch.double)
    full, _ = lstm(x)
    state = None
    for t in range(5):
        y, state = lstm(x[t:t + 1], state)
        torch.testing.assert_close(y[0], full[t], rtol=0, atol=1e-12)
