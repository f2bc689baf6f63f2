"""Layers on the fused backend equal the same layers on the reference backend: outputs, final states and
every parameter's gradient, for what the layer adds around the engine (bidirectional, packed sequences,
stacking, dropout, weight drop, zoneout, proj_size, depth-gated and clockwork stacks)."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab

DT = torch.float64


def run(layer, backend, x, hx=None, seed=0):
    layer.backend = backend
    layer.zero_grad()
    torch.manual_seed(seed)  # the same dropout, weight-drop and zoneout masks on both backends
    out, state = layer(x, hx)
    data = out.data if hasattr(out, "batch_sizes") else out
    states = (state,) if isinstance(state, torch.Tensor) else tuple(state)
    g = torch.Generator().manual_seed(1)
    loss = (data * torch.randn(data.shape, dtype=DT, generator=g)).sum()
    loss = loss + sum((s * torch.randn(s.shape, dtype=DT, generator=g)).sum() for s in states if s.requires_grad)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in layer.named_parameters()}
    return [data.detach(), *(s.detach() for s in states)], grads


def assert_backends_agree(layer, x, hx=None):
    out_ref, grads_ref = run(layer, "reference", x, hx)
    out, grads = run(layer, "fused", x, hx)
    for a, b in zip(out, out_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)
    assert grads.keys() == grads_ref.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], grads_ref[name], rtol=1e-9, atol=1e-11, msg=name)


LAYERS = {
    "lstm:bidirectional:2layers": lambda: rnnlab.LSTM(3, 5, num_layers=2, bidirectional=True),
    "lstm:proj:bidirectional": lambda: rnnlab.LSTM(3, 5, proj_size=2, bidirectional=True),
    "lstm:peephole:ln:dropout": lambda: rnnlab.LSTM(3, 5, num_layers=2, dropout=0.3, variant="peephole",
                                                    layer_norm=True),
    "lstm:cifg:zoneout+weight_drop": lambda: rnnlab.LSTM(3, 5, variant="cifg", zoneout=0.2, weight_drop=0.3),
    "lstm:variational_dropout": lambda: rnnlab.LSTM(3, 5, num_layers=2, variational_dropout=0.25),
    "gru:bidirectional:zoneout": lambda: rnnlab.GRU(3, 5, bidirectional=True, zoneout=0.25),
    "gru:mut2:weight_drop": lambda: rnnlab.GRU(5, 5, variant="mut2", weight_drop=0.4),
    "rnn:relu:bidirectional:2layers": lambda: rnnlab.RNN(3, 5, 2, "relu", bidirectional=True),
    "clockwork:2layers:zoneout": lambda: rnnlab.ClockworkRNN(3, 6, num_layers=2, periods=(1, 2, 4), zoneout=0.2),
    "dglstm:3layers:ln": lambda: rnnlab.DepthGatedLSTM(3, 5, num_layers=3, layer_norm=True),
}


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_layer_backends_agree(name, training):
    layer = LAYERS[name]().double().train(training)
    x = torch.randn(7, 4, layer.input_size, dtype=DT, requires_grad=True)
    assert_backends_agree(layer, x)


@pytest.mark.parametrize("name", ["lstm:bidirectional:2layers", "gru:bidirectional:zoneout",
                                  "rnn:relu:bidirectional:2layers", "dglstm:3layers:ln"])
def test_packed_unequal_lengths(name):
    layer = LAYERS[name]().double()
    x = torch.randn(7, 4, layer.input_size, dtype=DT)
    packed = pack_padded_sequence(x, torch.tensor([3, 7, 1, 5]), enforce_sorted=False)
    assert_backends_agree(layer, packed)


def test_initial_state_gradients():
    layer = rnnlab.LSTM(3, 5, num_layers=2, proj_size=3, bidirectional=True).double()
    x = torch.randn(6, 2, 3, dtype=DT)
    h0 = torch.randn(4, 2, 3, dtype=DT, requires_grad=True)
    c0 = torch.randn(4, 2, 5, dtype=DT, requires_grad=True)
    grads = []
    for backend in ("reference", "fused"):
        h0.grad = c0.grad = None
        layer.backend = backend
        out, (h, c) = layer(x, (h0, c0))
        (out.sum() + h.square().sum() + c.sum()).backward()
        grads.append((h0.grad.clone(), c0.grad.clone()))
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


def test_default_backend_is_fused():
    assert rnnlab.LSTM(2, 3).backend == "fused"
    assert rnnlab.GRU(2, 3, backend="reference").backend == "reference"
