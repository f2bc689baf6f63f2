"""IndRNN's compiled kernel (engine/csrc/indrnn.cpp) equals the reference loop in float64, with gradcheck."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab
from rnnlab.engine import build
from rnnlab.engine.indrnn import IndRNNSequence

pytestmark = pytest.mark.skipif(not build.load(), reason="the fused engine did not build")


def run(layer, x, lengths, h0):
    inp = pack_padded_sequence(x, lengths, enforce_sorted=False) if lengths is not None else x
    out, h = layer(inp, h0)
    out = out.data if lengths is not None else out
    torch.manual_seed(1)
    loss = (out * torch.randn_like(out)).sum() + (h * torch.randn_like(h)).sum()
    return (out, h, *torch.autograd.grad(loss, [x, h0, *layer.parameters()]))


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_kernel_equals_reference(bidirectional, packed):
    torch.manual_seed(0)
    fused = rnnlab.IndRNN(3, 5, num_layers=2, bidirectional=bidirectional, max_len=9).double()
    ref = rnnlab.IndRNN(3, 5, num_layers=2, bidirectional=bidirectional, max_len=9, backend="reference").double()
    with torch.no_grad():
        fused.weight_hh_l0.mul_(1.5)  # some units beyond the bound: the clamp's gradient is covered too
    ref.load_state_dict(fused.state_dict())
    x = torch.randn(9, 4, 3, dtype=torch.double, requires_grad=True)
    h0 = torch.rand(4 if bidirectional else 2, 4, 5, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([9, 3, 7, 1]) if packed else None
    for a, b in zip(run(fused, x, lengths, h0), run(ref, x, lengths, h0), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    with torch.no_grad():  # the inference path (no autograd node)
        torch.testing.assert_close(fused(x)[0], ref(x)[0], rtol=1e-12, atol=1e-12)


def test_gradcheck_of_the_kernel():
    torch.manual_seed(0)
    gx = torch.randn(6, 3, 4, dtype=torch.double, requires_grad=True)
    h0 = torch.rand(3, 4, dtype=torch.double, requires_grad=True)
    u = torch.rand(4, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([6, 2, 4])
    assert torch.autograd.gradcheck(lambda g, h, w: IndRNNSequence.apply(g, h, w, lengths), (gx, h0, u))
    assert torch.autograd.gradcheck(lambda g, h, w: IndRNNSequence.apply(g, h, w, None), (gx, h0, u))


def test_float32_kernel_close_to_reference():
    torch.manual_seed(0)
    fused, ref = rnnlab.IndRNN(8, 16, max_len=200), rnnlab.IndRNN(8, 16, max_len=200, backend="reference")
    ref.load_state_dict(fused.state_dict())
    x = torch.randn(200, 4, 8)
    torch.testing.assert_close(fused(x)[0], ref(x)[0], rtol=1e-5, atol=1e-5)
