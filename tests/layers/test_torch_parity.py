"""rnnlab's vanilla layers load torch.nn's state_dict and give the same outputs, states and gradients."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab

TOL = 1e-10
FAMILIES = {"rnn": (torch.nn.RNN, rnnlab.RNN), "lstm": (torch.nn.LSTM, rnnlab.LSTM),
            "gru": (torch.nn.GRU, rnnlab.GRU)}


def pair(family, I, H, **kw):
    tcls, rcls = FAMILIES[family]
    ref = tcls(I, H, **kw).double()
    ours = rcls(I, H, **kw).double()
    assert ours.load_state_dict(ref.state_dict()) is not None
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in ref.named_parameters()]
    return ref, ours


def initial_state(family, L, D, B, H, P=0):
    h = torch.randn(L * D, B, P or H, dtype=torch.double, requires_grad=True)
    if family == "lstm":
        return (h, torch.randn(L * D, B, H, dtype=torch.double, requires_grad=True))
    return h


def leaves(hx):
    if hx is None:
        return []
    return [hx] if isinstance(hx, torch.Tensor) else list(hx)


def flat(out):
    if hasattr(out, "data") and not isinstance(out, torch.Tensor):
        return [out.data]
    return [out] if isinstance(out, torch.Tensor) else list(out)


def compare(ref, ours, x_ref, x_ours, hx_ref, hx_ours, x_leaf=None):
    out_r, st_r = ref(x_ref, hx_ref)
    out_o, st_o = ours(x_ours, hx_ours)
    outs_r, outs_o = flat(out_r) + flat(st_r), flat(out_o) + flat(st_o)
    for a, b in zip(outs_r, outs_o, strict=True):
        assert a.shape == b.shape
        assert (a - b).abs().max().item() < TOL
    weights = [torch.randn_like(a) for a in outs_r]
    loss_r = sum((w * a).sum() for w, a in zip(weights, outs_r, strict=True))
    loss_o = sum((w * a).sum() for w, a in zip(weights, outs_o, strict=True))
    x_leaf = x_ref if x_leaf is None else x_leaf  # the tensor a PackedSequence was made from
    inputs_r = list(ref.parameters()) + [x_leaf] + leaves(hx_ref)
    inputs_o = list(ours.parameters()) + [x_leaf] + leaves(hx_ours)
    grads_r = torch.autograd.grad(loss_r, inputs_r)
    grads_o = torch.autograd.grad(loss_o, inputs_o)
    for a, b in zip(grads_r, grads_o, strict=True):
        assert (a - b).abs().max().item() < TOL


GRID = list(itertools.product(FAMILIES, (1, 2, 3), (False, True), (False, True)))


@pytest.mark.parametrize("family,layers,bidirectional,batch_first", GRID)
def test_dense_parity(family, layers, bidirectional, batch_first):
    T, B, I, H = 5, 3, 4, 6
    ref, ours = pair(family, I, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)
    shape = (B, T, I) if batch_first else (T, B, I)
    x = torch.randn(*shape, dtype=torch.double, requires_grad=True)
    hx = initial_state(family, layers, 2 if bidirectional else 1, B, H)
    compare(ref, ours, x, x, hx, hx)


@pytest.mark.parametrize("family,layers,bidirectional", [(f, n, b) for f in FAMILIES for n in (1, 2)
                                                          for b in (False, True)])
def test_packed_parity_unequal_lengths(family, layers, bidirectional):
    I, H = 3, 5
    lengths = torch.tensor([4, 7, 2, 7, 5])
    ref, ours = pair(family, I, H, num_layers=layers, bidirectional=bidirectional)
    x = torch.randn(7, 5, I, dtype=torch.double, requires_grad=True)
    def packed():
        return pack_padded_sequence(x, lengths, enforce_sorted=False)

    hx = initial_state(family, layers, 2 if bidirectional else 1, 5, H)
    compare(ref, ours, packed(), packed(), hx, hx, x_leaf=x)
    out_o, _ = ours(packed(), hx)
    assert torch.equal(out_o.batch_sizes, packed().batch_sizes)
    assert torch.equal(out_o.sorted_indices, packed().sorted_indices)


def test_packed_sorted_without_initial_state():
    ref, ours = pair("lstm", 3, 4)
    x = torch.randn(6, 3, 3, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([6, 4, 1])
    compare(ref, ours, pack_padded_sequence(x, lengths), pack_padded_sequence(x, lengths), None, None, x_leaf=x)


@pytest.mark.parametrize("layers,bidirectional", [(1, False), (2, True), (3, False)])
def test_lstm_proj_size_parity(layers, bidirectional):
    ref, ours = pair("lstm", 4, 7, num_layers=layers, bidirectional=bidirectional, proj_size=3)
    x = torch.randn(5, 2, 4, dtype=torch.double, requires_grad=True)
    hx = initial_state("lstm", layers, 2 if bidirectional else 1, 2, 7, P=3)
    compare(ref, ours, x, x, hx, hx)


def test_lstm_proj_size_packed_parity():
    ref, ours = pair("lstm", 4, 7, num_layers=2, bidirectional=True, proj_size=3)
    x = torch.randn(6, 3, 4, dtype=torch.double, requires_grad=True)
    lengths = torch.tensor([3, 6, 5])
    compare(ref, ours, pack_padded_sequence(x, lengths, enforce_sorted=False),
            pack_padded_sequence(x, lengths, enforce_sorted=False), None, None, x_leaf=x)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_unbatched_parity(family):
    ref, ours = pair(family, 3, 4, num_layers=2, bidirectional=True)
    x = torch.randn(5, 3, dtype=torch.double, requires_grad=True)
    h = torch.randn(4, 4, dtype=torch.double, requires_grad=True)
    hx = (h, torch.randn(4, 4, dtype=torch.double, requires_grad=True)) if family == "lstm" else h
    compare(ref, ours, x, x, hx, hx)


def test_relu_no_bias_and_dropout_eval_parity():
    ref, ours = pair("rnn", 3, 5, num_layers=2, nonlinearity="relu", bias=False, dropout=0.5)
    ref.eval()
    ours.eval()
    x = torch.randn(4, 2, 3, dtype=torch.double, requires_grad=True)
    compare(ref, ours, x, x, None, None)


def test_inter_layer_dropout_matches_torch_under_the_same_seed():
    ref, ours = pair("gru", 3, 5, num_layers=3, dropout=0.3)
    x = torch.randn(4, 2, 3, dtype=torch.double)
    torch.manual_seed(7)
    a = ref(x)[0]
    torch.manual_seed(7)
    b = ours(x)[0]
    assert (a - b).abs().max().item() < TOL
    assert not torch.allclose(ours(x)[0], b)  # a fresh mask each call


def test_default_init_matches_torch_distribution():
    torch.manual_seed(3)
    ref = torch.nn.LSTM(4, 16)
    torch.manual_seed(3)
    ours = rnnlab.LSTM(4, 16)
    for (n1, p1), (n2, p2) in zip(ref.named_parameters(), ours.named_parameters(), strict=True):
        assert n1 == n2
        assert torch.equal(p1, p2)
