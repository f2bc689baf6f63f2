"""torch.autograd.gradcheck in float64 for every family and variant (inputs, initial state, parameters)."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from .catalog import CONFIGS, IDS


def check(layer, x, hx_shapes):
    params = list(layer.parameters())
    names = [n for n, _ in layer.named_parameters()]
    hx = [torch.randn(*s, dtype=torch.double, requires_grad=True) for s in hx_shapes]

    def fn(x, *rest):
        state, weights = rest[:len(hx)], rest[len(hx):]
        out, final = torch.func.functional_call(layer, dict(zip(names, weights, strict=True)),
                                                (x, state[0] if len(state) == 1 else tuple(state)))
        finals = (final,) if isinstance(final, torch.Tensor) else final
        return (out, *finals)

    assert torch.autograd.gradcheck(fn, (x, *hx, *params), eps=1e-6, atol=1e-6)


#: configurations whose gradcheck over the catalog's sizes takes most of a minute (many state inputs, each
#: perturbation a whole parallel form): slow here, a small gradcheck of their own in test_modern.py
SLOW = ("mlstm",)


@pytest.mark.parametrize("name,make,input_size",
                         [pytest.param(*c, marks=pytest.mark.slow) if c[0] in SLOW else c for c in CONFIGS], ids=IDS)
def test_gradcheck(name, make, input_size):
    layer = make(input_size).double()
    x = torch.randn(4, 2, input_size, dtype=torch.double, requires_grad=True)
    LD = layer.num_layers * layer.num_directions
    hx_shapes = [(LD, 2, n) for n in layer.state_layout()]
    if name == "clockwork":  # the clock is an integer count, not differentiable
        hx_shapes = hx_shapes[:1]
    check(layer, x, hx_shapes)


def test_gradcheck_bidirectional_packed_lstm():
    import rnnlab

    layer = rnnlab.LSTM(3, 3, num_layers=2, bidirectional=True).double()
    x = torch.randn(4, 3, 3, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([4, 2, 3])
    names = [n for n, _ in layer.named_parameters()]

    def fn(x, *weights):
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, (h, c) = torch.func.functional_call(layer, dict(zip(names, weights, strict=True)), (packed,))
        return out.data, h, c

    assert torch.autograd.gradcheck(fn, (x, *layer.parameters()), eps=1e-6, atol=1e-6)
