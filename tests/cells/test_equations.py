"""Each variant's step against an independent one-step formula written here from its docstring's equations."""

import pytest
import torch

import rnnlab
from rnnlab.cells.base import LAYER_NORM_EPS

B, I, H = 3, 4, 5
sig, tanh = torch.sigmoid, torch.tanh


def lin(x, w, b):
    return x @ w.T + b


def gates(t, names):
    return dict(zip(names, t.split(H, dim=-1), strict=True))


def ln_blocks(z, gain):
    z = z.reshape(*z.shape[:-1], -1, H)
    z = (z - z.mean(-1, keepdim=True)) / torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + LAYER_NORM_EPS)
    return z.reshape(*z.shape[:-2], -1) * gain


def lstm_formula(variant, m, x, h, c, layer_norm=False):
    if layer_norm:
        pre = ln_blocks(x @ m.weight_ih.T, m.ln_weight_ih) + m.bias_ih + ln_blocks(h @ m.weight_hh.T,
                                                                                   m.ln_weight_hh) + m.bias_hh
    else:
        pre = lin(x, m.weight_ih, m.bias_ih) + lin(h, m.weight_hh, m.bias_hh)
    names = {"cifg": "fgo", "nig": "fgo", "nfg": "igo", "nog": "ifg"}.get(variant, "ifgo")
    a = gates(pre, names)
    if variant == "peephole":
        p_i, p_f, p_o = m.weight_peephole
        i, f = sig(a["i"] + p_i * c), sig(a["f"] + p_f * c)
    else:
        i = sig(a["i"]) if "i" in a else None
        f = sig(a["f"]) if "f" in a else torch.ones_like(c)
    if variant == "cifg":
        i = 1 - f
    if variant == "nig":
        i = torch.ones_like(c)
    g = a["g"] if variant == "niaf" else tanh(a["g"])
    c_new = f * c + i * g
    if variant == "peephole":
        o = sig(a["o"] + p_o * c_new)
    else:
        o = sig(a["o"]) if "o" in a else torch.ones_like(c)
    cc = c_new
    if layer_norm:
        cc = (cc - cc.mean(-1, keepdim=True)) / torch.sqrt(cc.var(-1, unbiased=False, keepdim=True) + LAYER_NORM_EPS)
        cc = cc * m.ln_weight_cell + m.ln_bias_cell
    h_new = o * cc if variant == "noaf" else o * tanh(cc)
    return h_new, c_new


def gru_formula(variant, m, x, h):
    Wi, Wh, bi, bh = m.weight_ih, m.weight_hh, m.bias_ih, m.bias_hh
    if variant == "vanilla":
        gi, gh = gates(lin(x, Wi, bi), "rzn"), gates(lin(h, Wh, bh), "rzn")
        r, z = sig(gi["r"] + gh["r"]), sig(gi["z"] + gh["z"])
        n = tanh(gi["n"] + r * gh["n"])
        return (1 - z) * n + z * h
    if variant == "reset_before":
        Wr, Wz, Wn = Wh.split(H)
        br, bz, bn = bh.split(H)
        gi = gates(lin(x, Wi, bi), "rzn")
        r, z = sig(gi["r"] + lin(h, Wr, br)), sig(gi["z"] + lin(h, Wz, bz))
        n = tanh(gi["n"] + lin(r * h, Wn, bn))
        return (1 - z) * n + z * h
    if variant == "mut1":
        (Wxr, Wxz), (bxr, bxz) = Wi.split(H), bi.split(H)
        (Whr, Whn), (bhr, bhn) = Wh.split(H), bh.split(H)
        z = sig(lin(x, Wxz, bxz))
        r = sig(lin(x, Wxr, bxr) + lin(h, Whr, bhr))
        return tanh(lin(r * h, Whn, bhn) + tanh(x)) * z + h * (1 - z)
    if variant == "mut2":
        (Wxz, Wxn), (bxz, bxn) = Wi.split(H), bi.split(H)
        (Whr, Whz, Whn), (bhr, bhz, bhn) = Wh.split(H), bh.split(H)
        z = sig(lin(x, Wxz, bxz) + lin(h, Whz, bhz))
        r = sig(x + lin(h, Whr, bhr))
        return tanh(lin(r * h, Whn, bhn) + lin(x, Wxn, bxn)) * z + h * (1 - z)
    if variant == "mut3":
        (Wxr, Wxz, Wxn), (bxr, bxz, bxn) = Wi.split(H), bi.split(H)
        (Whr, Whz, Whn), (bhr, bhz, bhn) = Wh.split(H), bh.split(H)
        z = sig(lin(x, Wxz, bxz) + lin(tanh(h), Whz, bhz))
        r = sig(lin(x, Wxr, bxr) + lin(h, Whr, bhr))
        return tanh(lin(r * h, Whn, bhn) + lin(x, Wxn, bxn)) * z + h * (1 - z)
    if variant == "mgu":
        (Wxf, Wxn), (bxf, bxn) = Wi.split(H), bi.split(H)
        (Whf, Whn), (bhf, bhn) = Wh.split(H), bh.split(H)
        f = sig(lin(x, Wxf, bxf) + lin(h, Whf, bhf))
        n = tanh(lin(x, Wxn, bxn) + lin(f * h, Whn, bhn))
        return (1 - f) * h + f * n
    raise AssertionError(variant)


def randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)


@pytest.mark.parametrize("variant", rnnlab.LSTMCell(1, 1).cell.variants)
@pytest.mark.parametrize("layer_norm", [False, True])
def test_lstm_variant_equations(variant, layer_norm):
    m = rnnlab.LSTMCell(I, H, variant=variant, layer_norm=layer_norm).double()
    randomise(m)
    x, h, c = (torch.randn(B, n, dtype=torch.double) for n in (I, H, H))
    got_h, got_c = m(x, (h, c))
    want_h, want_c = lstm_formula(variant, m, x, h, c, layer_norm)
    torch.testing.assert_close(got_h, want_h, rtol=0, atol=1e-12)
    torch.testing.assert_close(got_c, want_c, rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", rnnlab.GRUCell(1, 1).cell.variants)
def test_gru_variant_equations(variant):
    m = rnnlab.GRUCell(H if variant in ("mut1", "mut2") else I, H, variant=variant).double()
    randomise(m)
    x, h = torch.randn(B, m.input_size, dtype=torch.double), torch.randn(B, H, dtype=torch.double)
    torch.testing.assert_close(m(x, h), gru_formula(variant, m, x, h), rtol=0, atol=1e-12)


def test_gru_layer_norm_equation():
    m = rnnlab.GRUCell(I, H, layer_norm=True).double()
    randomise(m)
    x, h = torch.randn(B, I, dtype=torch.double), torch.randn(B, H, dtype=torch.double)
    gi = gates(ln_blocks(x @ m.weight_ih.T, m.ln_weight_ih) + m.bias_ih, "rzn")
    gh = gates(ln_blocks(h @ m.weight_hh.T, m.ln_weight_hh) + m.bias_hh, "rzn")
    r, z = sig(gi["r"] + gh["r"]), sig(gi["z"] + gh["z"])
    want = (1 - z) * tanh(gi["n"] + r * gh["n"]) + z * h
    torch.testing.assert_close(m(x, h), want, rtol=0, atol=1e-12)


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_equation(nonlinearity):
    m = rnnlab.RNNCell(I, H, nonlinearity=nonlinearity).double()
    x, h = torch.randn(B, I, dtype=torch.double), torch.randn(B, H, dtype=torch.double)
    pre = lin(x, m.weight_ih, m.bias_ih) + lin(h, m.weight_hh, m.bias_hh)
    torch.testing.assert_close(m(x, h), tanh(pre) if nonlinearity == "tanh" else pre.relu(), rtol=0, atol=1e-12)


def test_clockwork_equations_over_steps():
    periods = (1, 2, 4)
    layer = rnnlab.ClockworkRNN(I, 6, periods=periods).double()
    x = torch.randn(9, B, I, dtype=torch.double)
    out, (h_n, clock_n) = layer(x)
    module_of_unit = torch.tensor([0, 0, 1, 1, 2, 2])
    mask = (module_of_unit[None, :] >= module_of_unit[:, None]).double()  # slow modules feed fast ones
    h = torch.zeros(B, 6, dtype=torch.double)
    for t in range(9):
        cand = tanh(lin(x[t], layer.weight_ih_l0, layer.bias_ih_l0) + lin(h, layer.weight_hh_l0 * mask,
                                                                           layer.bias_hh_l0))
        active = torch.tensor([t % periods[m] == 0 for m in module_of_unit.tolist()])
        h = torch.where(active, cand, h)
        torch.testing.assert_close(out[t], h, rtol=0, atol=1e-12)
    assert torch.equal(clock_n, torch.full((1, B, 1), 9.0, dtype=torch.double))
    # module 2 (period 4) ignores modules 0 and 1: its rows of the masked matrix are zero there
    assert mask[4:, :4].abs().sum() == 0 and mask[:4, 4:].abs().sum() > 0


def test_depth_gated_equations():
    layer = rnnlab.DepthGatedLSTM(I, H, num_layers=2).double()
    randomise(layer)
    x = torch.randn(4, B, I, dtype=torch.double)
    out, (h_n, c_n) = layer(x)
    h0 = c0 = h1 = c1 = torch.zeros(B, H, dtype=torch.double)
    for t in range(4):
        a = gates(lin(x[t], layer.weight_ih_l0, layer.bias_ih_l0) + lin(h0, layer.weight_hh_l0, layer.bias_hh_l0),
                  "ifgo")
        c0 = sig(a["f"]) * c0 + sig(a["i"]) * tanh(a["g"])
        h0 = sig(a["o"]) * tanh(c0)
        gi = gates(lin(h0, layer.weight_ih_l1, layer.bias_ih_l1), "ifgod")
        gh = gates(lin(h1, layer.weight_hh_l1, layer.bias_hh_l1), "ifgo")
        w_cd, w_ld = layer.weight_depth_l1
        d = sig(gi["d"] + w_cd * c1 + w_ld * c0)
        c1 = d * c0 + sig(gi["f"] + gh["f"]) * c1 + sig(gi["i"] + gh["i"]) * tanh(gi["g"] + gh["g"])
        h1 = sig(gi["o"] + gh["o"]) * tanh(c1)
        torch.testing.assert_close(out[t], h1, rtol=0, atol=1e-12)
    torch.testing.assert_close(c_n, torch.stack([c0, c1]), rtol=0, atol=1e-12)
