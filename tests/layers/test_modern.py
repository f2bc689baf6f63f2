"""The families beyond the classic cells (issue 14): IndRNN, minGRU, minLSTM, LRU, RG-LRU, sLSTM, mLSTM and mixed
stacks.

The parallel scans equal stepping (float64); hand-computed numbers from the papers' equations; the papers'
initialisations and bounds; the errors of bad hyperparameters.
"""

import math

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

import rnnlab
from rnnlab.cells.minimal import g, log_g
from rnnlab.engine.scan import diagonal_scan, linear_scan, log_space_scan

SCANNED = {
    "mingru": lambda **kw: rnnlab.MinGRU(3, 5, **kw),
    "minlstm": lambda **kw: rnnlab.MinLSTM(3, 5, **kw),
    "lru": lambda **kw: rnnlab.LRU(3, 5, state_size=4, **kw),
    "rglru": lambda **kw: rnnlab.RGLRU(3, 6, num_heads=3, **kw),
    "mlstm": lambda **kw: rnnlab.MLSTM(3, 6, num_heads=2, **kw),
}


def outputs_and_grads(layer, x, hx, lengths=None):
    """Output, final state and the gradients of inputs, initial state and parameters of a weighted sum."""
    x = x.clone().requires_grad_()
    hx = tuple(h.clone().requires_grad_() for h in hx)
    inp = pack_padded_sequence(x, lengths, enforce_sorted=False) if lengths is not None else x
    out, final = layer(inp, hx[0] if len(hx) == 1 else hx)
    out = out.data if lengths is not None else out
    finals = (final,) if isinstance(final, torch.Tensor) else final
    torch.manual_seed(1)
    loss = sum((t * torch.randn_like(t)).sum() for t in (out, *finals))
    inputs = [x, *hx, *layer.parameters()]
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)  # the LRU's y_0 is not used
    return (out, *finals), [torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs, strict=True)]


@pytest.mark.parametrize("name", SCANNED)
@pytest.mark.parametrize("packed", [False, True], ids=["dense", "packed"])
def test_parallel_scan_equals_stepping(name, packed):
    """The default backend runs the scan, the reference backend steps: equal outputs, states and gradients."""
    torch.manual_seed(0)
    scan = SCANNED[name](num_layers=2, bidirectional=True).double()
    step = SCANNED[name](num_layers=2, bidirectional=True, backend="reference").double()
    step.load_state_dict(scan.state_dict())
    T, B = 70, 3  # 9 chunks of the linear scan (recursing over them), the last partial
    x = torch.randn(T, B, 3, dtype=torch.double)
    hx = tuple(torch.randn(4, B, n, dtype=torch.double) for n in scan.state_layout())
    lengths = torch.tensor([T, 37, 1]) if packed else None
    (a, ga), (b, gb) = outputs_and_grads(scan, x, hx, lengths), outputs_and_grads(step, x, hx, lengths)
    for u, v in zip((*a, *ga), (*b, *gb), strict=True):
        torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-10)


def test_log_space_scan_takes_initial_states_of_any_sign():
    torch.manual_seed(0)
    log_a, log_b = -torch.rand(20, 2, 3, dtype=torch.double), torch.randn(20, 2, 3, dtype=torch.double)
    h0 = torch.tensor([[-2.0, 0.0, 3.0], [1.0, -1e-3, 0.5]], dtype=torch.double)
    h, expected = h0, []
    for t in range(20):
        h = log_a[t].exp() * h + log_b[t].exp()
        expected.append(h)
    torch.testing.assert_close(log_space_scan(log_a, log_b, h0), torch.stack(expected), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("T", [1, 5, 64, 130])
def test_diagonal_scan_equals_the_loop_for_any_length(T):
    torch.manual_seed(0)
    log_lam = torch.complex(-torch.rand(4, dtype=torch.double), 3 * torch.rand(4, dtype=torch.double))
    b = torch.randn(T, 2, 4, dtype=torch.cdouble)
    x0 = torch.randn(2, 4, dtype=torch.cdouble)
    x, expected = x0, []
    for t in range(T):
        x = log_lam.exp() * x + b[t]
        expected.append(x)
    torch.testing.assert_close(diagonal_scan(log_lam, b, x0, chunk=16), torch.stack(expected), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("T", [1, 2, 15, 16, 17, 250, 1000])
def test_linear_scan_equals_the_loop_for_any_length_and_sign(T):
    """Chunks of 4 (so T = 250 and 1000 recurse over chunks of chunks); a of either sign, b of any sign."""
    torch.manual_seed(0)
    a = 2 * torch.rand(T, 2, 3, dtype=torch.double) - 1
    b = torch.randn(T, 2, 3, dtype=torch.double)
    h0 = torch.randn(2, 3, dtype=torch.double)
    h, expected = h0, []
    for t in range(T):
        h = a[t] * h + b[t]
        expected.append(h)
    torch.testing.assert_close(linear_scan(a, b, h0, chunk=4), torch.stack(expected), rtol=1e-12, atol=1e-12)


def test_gradcheck_of_the_chunked_scans():
    """gradcheck in float64 of the scans on their chunked paths: the linear scan over chunks of chunks (T = 11
    in chunks of 2), the diagonal scan over several chunks, one partial (T = 10 in chunks of 4), and the log-space
    scan (the layers' gradcheck in test_gradcheck.py runs 4 steps, within one chunk)."""
    torch.manual_seed(0)
    T, B, H = 11, 2, 3
    a = (2 * torch.rand(T, B, H, dtype=torch.double) - 1).requires_grad_()
    b, h0 = torch.randn(T, B, H, dtype=torch.double, requires_grad=True), torch.randn(B, H, dtype=torch.double,
                                                                                       requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b, h0: linear_scan(a, b, h0, chunk=2), (a, b, h0))
    log_a = (-torch.rand(T, B, H, dtype=torch.double)).requires_grad_()
    assert torch.autograd.gradcheck(log_space_scan, (log_a, b, h0))
    lam_re, lam_im = (-torch.rand(H, dtype=torch.double)).requires_grad_(), torch.rand(H, dtype=torch.double,
                                                                                        requires_grad=True)
    br, bi = torch.randn(10, B, H, dtype=torch.double, requires_grad=True), torch.randn(10, B, H, dtype=torch.double,
                                                                                        requires_grad=True)

    def diagonal(lam_re, lam_im, br, bi, h0):
        x = diagonal_scan(torch.complex(lam_re, lam_im), torch.complex(br, bi), h0.to(torch.cdouble), chunk=4)
        return x.real, x.imag

    assert torch.autograd.gradcheck(diagonal, (lam_re, lam_im, br, bi, h0))


@pytest.mark.parametrize("name", ["mingru", "minlstm", "rglru", "lru"])
def test_gradcheck_of_the_scanned_layers_beyond_one_chunk(name):
    """The layers' default (scan) engine over 12 steps (beyond the linear scan's chunk of 8), packed, from a
    random state: gradcheck of inputs, state and parameters."""
    torch.manual_seed(0)
    layer = SCANNED[name]().double()
    x = torch.randn(12, 2, 3, dtype=torch.double, requires_grad=True)
    hx = [torch.randn(1, 2, n, dtype=torch.double, requires_grad=True) for n in layer.state_layout()]
    names = [n for n, _ in layer.named_parameters()]
    lengths = torch.tensor([12, 9])

    def fn(x, *rest):
        state, weights = rest[:len(hx)], rest[len(hx):]
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, final = torch.func.functional_call(layer, dict(zip(names, weights, strict=True)),
                                                (packed, state[0] if len(state) == 1 else tuple(state)))
        return (out.data, *((final,) if isinstance(final, torch.Tensor) else final))

    assert torch.autograd.gradcheck(fn, (x, *hx, *layer.parameters()), eps=1e-6, atol=1e-6)


def test_scan_stays_finite_over_4000_steps_in_float32():
    torch.manual_seed(0)
    for layer in (rnnlab.MinGRU(2, 8), rnnlab.MinLSTM(2, 8), rnnlab.LRU(2, 8, r_min=0.0, r_max=1.0),
                  rnnlab.RGLRU(2, 8, r_min=0.001, r_max=0.999999)):
        out, _ = layer(torch.randn(4000, 2, 2))
        assert torch.isfinite(out).all()


# ---- numbers of the papers' equations, by hand -------------------------------------------------------------
def test_g_is_positive_and_continuous_and_log_g_is_its_log():
    x = torch.tensor([-30.0, -1.0, 0.0, 1e-9, 2.0], dtype=torch.double)
    torch.testing.assert_close(g(x), torch.tensor([torch.sigmoid(torch.tensor(-30.0)).item(), 0.2689414213699951,
                                                   0.5, 0.5 + 1e-9, 2.5], dtype=torch.double))
    torch.testing.assert_close(log_g(x), g(x).log())


def with_input_weights(layer, weight, bias):
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.tensor(weight, dtype=torch.double))
        layer.bias_ih_l0.copy_(torch.tensor(bias, dtype=torch.double))
    return layer


def test_mingru_numbers():
    """z = sigmoid(0) = 1/2, h~ = g(1) = 1.5, g(-1) = sigmoid(-1): h_t = h_{t-1}/2 + h~/2."""
    layer = with_input_weights(rnnlab.MinGRU(1, 1).double(), [[0.0], [1.0]], [0.0, 0.0])
    x = torch.tensor([[[1.0]], [[1.0]], [[-1.0]]], dtype=torch.double)
    h = 0.25
    expected = []
    for h_tilde in (1.5, 1.5, 1.0 / (1.0 + math.e)):
        h = 0.5 * h + 0.5 * h_tilde
        expected.append(h)
    out, _ = layer(x, torch.tensor([[[0.25]]], dtype=torch.double))
    torch.testing.assert_close(out.flatten(), torch.tensor(expected, dtype=torch.double))
    torch.testing.assert_close(out.flatten()[:2], torch.tensor([0.875, 1.1875], dtype=torch.double))


def test_minlstm_normalises_its_gates():
    """f = sigmoid(2), i = sigmoid(0): f' = f / (f + i), i' = i / (f + i); h~ = g(0.5) = 1."""
    layer = with_input_weights(rnnlab.MinLSTM(1, 1).double(), [[0.0], [0.0], [1.0]], [2.0, 0.0, 0.0])
    f, i = 1 / (1 + math.exp(-2)), 0.5
    out, _ = layer(torch.full((2, 1, 1), 0.5, dtype=torch.double))
    h1 = i / (f + i) * 1.0
    h2 = f / (f + i) * h1 + i / (f + i) * 1.0
    torch.testing.assert_close(out.flatten(), torch.tensor([h1, h2], dtype=torch.double))
    torch.testing.assert_close(out.flatten()[0], torch.tensor(0.36210968865333093, dtype=torch.double))


def test_rglru_numbers():
    """The authors' update with a_param = 0 and zero gate weights: r = i = sigmoid(0) = 1/2, log a =
    -8 * 1/2 * softplus(0) = -4 log 2, so a = 1/16 and sqrt(1 - a^2) = sqrt(255)/16; u = 2x."""
    layer = rnnlab.RGLRU(1, 1).double()
    with torch.no_grad():
        for name, value in (("weight_ih_l0", 2.0), ("bias_ih_l0", 0.0), ("weight_a_l0", 0.0), ("weight_x_l0", 0.0),
                            ("bias_a_l0", 0.0), ("bias_x_l0", 0.0), ("a_param_l0", 0.0)):
            getattr(layer, name).fill_(value)
    x = torch.tensor([[[1.0]], [[-0.5]]], dtype=torch.double)
    out, h = layer(x, torch.tensor([[[3.0]]], dtype=torch.double))
    h1 = 3.0 / 16 + math.sqrt(255) / 16 * 0.5 * 2.0
    h2 = h1 / 16 + math.sqrt(255) / 16 * 0.5 * -1.0
    torch.testing.assert_close(out.flatten(), torch.tensor([h1, h2], dtype=torch.double))
    torch.testing.assert_close(out.flatten()[0], torch.tensor(1.185544963916957, dtype=torch.double))


def test_mlstm_numbers():
    """One head, d = 1, q = k = 1, v = x, input gate pre-activation 0, forget gate f: from the zero state m_1 =
    max(log sigmoid(f), 0) = 0, so i' = 1, C_1 = v, n_1 = 1 and h~_1 = v / (max(1, e^0) + eps); then
    m_2 = max(log sigmoid(f), 0) = 0 again, f' = sigmoid(f): C_2 = sigmoid(f) v_1 + v_2, n_2 = sigmoid(f) + 1."""
    layer = rnnlab.MLSTM(1, 1).double()
    with torch.no_grad():  # rows q, k, v, i, f, o
        layer.weight_ih_l0.copy_(torch.tensor([[0.0], [0.0], [1.0], [0.0], [0.0], [0.0]], dtype=torch.double))
        layer.bias_ih_l0.copy_(torch.tensor([1.0, 1.0, 0.0, 0.0, 2.0, 1.0], dtype=torch.double))
    x = torch.tensor([[[3.0]], [[-1.0]]], dtype=torch.double)
    out, _ = layer(x)
    f, o = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(-1.0))
    h1 = o * 3.0 / (1.0 + 1e-6)
    h2 = o * (f * 3.0 - 1.0) / (f + 1.0 + 1e-6)
    torch.testing.assert_close(out.flatten(), torch.tensor([h1, h2], dtype=torch.double))


def test_mlstm_gradcheck_of_the_parallel_form():
    """gradcheck of the default (parallel) engine from a random state, packed (the catalog's larger sweep is slow)."""
    torch.manual_seed(0)
    layer = rnnlab.MLSTM(2, 2, num_heads=1).double()
    x = torch.randn(4, 2, 2, dtype=torch.double, requires_grad=True)
    hx = [torch.randn(1, 2, n, dtype=torch.double, requires_grad=True) for n in layer.state_layout()]
    names = [n for n, _ in layer.named_parameters()]
    lengths = torch.tensor([4, 2])

    def fn(x, *rest):
        state, weights = rest[:4], rest[4:]
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, final = torch.func.functional_call(layer, dict(zip(names, weights, strict=True)), (packed, state))
        return (out.data, *final)

    assert torch.autograd.gradcheck(fn, (x, *hx, *layer.parameters()), eps=1e-6, atol=1e-6)


def test_rglru_gates_are_block_diagonal_per_head():
    """Head 1's units of u do not reach head 0's gates: a change there leaves head 0's output alone."""
    torch.manual_seed(0)
    layer = rnnlab.RGLRU(4, 4, num_heads=2).double()
    with torch.no_grad():
        layer.weight_ih_l0.copy_(torch.eye(4, dtype=torch.double))
    x = torch.randn(3, 1, 4, dtype=torch.double)
    y = x.clone()
    y[..., 2:] += 1.0
    a, b = layer(x)[0], layer(y)[0]
    torch.testing.assert_close(a[..., :2], b[..., :2])
    assert not torch.allclose(a[..., 2:], b[..., 2:])


def test_slstm_stabiliser_changes_nothing_but_the_scale():
    """The stabilised step equals the paper's raw form c = f c + exp(i) z, n = f n + exp(i), h = o c / n."""
    torch.manual_seed(0)
    layer = rnnlab.SLSTM(3, 4, num_heads=2, backend="reference").double()
    x = 3 * torch.randn(12, 2, 3, dtype=torch.double)
    out, (h, c, n, m) = layer(x)
    W, R, b = layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0
    hh, cc, nn_ = (torch.zeros(2, 4, dtype=torch.double) for _ in range(3))
    for t in range(12):
        heads = hh.view(2, 2, 2)
        rec = torch.einsum("bki,gkoi->bgko", heads, R.view(4, 2, 2, 2)).reshape(2, 16)
        i_raw, f_raw, z_raw, o_raw = (x[t] @ W.T + rec + b).chunk(4, -1)
        f = torch.sigmoid(f_raw)
        cc = f * cc + i_raw.exp() * z_raw.tanh()
        nn_ = f * nn_ + i_raw.exp()
        hh = torch.sigmoid(o_raw) * cc / nn_
        torch.testing.assert_close(out[t], hh, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(c[0] / n[0], cc / nn_)  # c, n scaled by exp(-m) alike
    torch.testing.assert_close(c[0] * m[0].exp(), cc)


def test_slstm_heads_do_not_mix():
    """Block-diagonal R: a change in head 1's state does not reach head 0 in the next step."""
    layer = rnnlab.SLSTM(2, 4, num_heads=2).double()
    x = torch.randn(1, 1, 2, dtype=torch.double)
    state = [torch.zeros(1, 1, 4, dtype=torch.double) for _ in range(4)]
    state[2] = torch.ones(1, 1, 4, dtype=torch.double)
    a, _ = layer(x, tuple(state))
    state[0] = state[0].clone()
    state[0][..., 2:] = 5.0  # head 1's h
    b, _ = layer(x, tuple(state))
    torch.testing.assert_close(a[..., :2], b[..., :2])
    assert not torch.allclose(a[..., 2:], b[..., 2:])


# ---- initialisations and bounds of the papers --------------------------------------------------------------
def test_indrnn_bound_and_initialisation_follow_the_paper():
    torch.manual_seed(0)
    layer = rnnlab.IndRNN(2, 256, num_layers=2, max_len=784)
    gamma = 2 ** (1 / 784)
    assert layer.recurrent_max == pytest.approx(gamma)
    u0, u1 = layer.weight_hh_l0, layer.weight_hh_l1
    assert u0.min() >= 0 and u0.max() <= gamma and u0.min() < 0.1  # U(0, γ)
    assert u1.min() >= 0.5 ** (1 / 784) and u1.max() <= gamma  # the last layer: U(2^(-1/T), γ)
    assert (layer.bias_ih_l0 == 0).all()


def test_indrnn_uses_the_bounded_recurrent_weight():
    layer = rnnlab.IndRNN(1, 1, recurrent_max=0.5).double()
    with torch.no_grad():
        layer.weight_hh_l0.fill_(3.0)
        layer.weight_ih_l0.fill_(1.0)
    out, _ = layer(torch.tensor([[[1.0]], [[0.0]], [[0.0]]], dtype=torch.double))
    torch.testing.assert_close(out.flatten(), torch.tensor([1.0, 0.5, 0.25], dtype=torch.double))


def test_indrnn_learns_to_carry_a_sign_through_weak_noise():
    """IndRNN has no gate to shut out distractors (the recall test of tests/layers/test_learning.py); with weak
    ones its units integrate the first input over 20 steps and the loss falls."""
    torch.manual_seed(0)
    layer = rnnlab.IndRNN(2, 16, max_len=20)
    head = torch.nn.Linear(16, 1)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=0.02)
    losses = []
    for _ in range(250):
        x = torch.randn(20, 32, 2)
        x[1:] *= 0.1
        out, _ = layer(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(out[-1]), (x[0, :, :1] > 0).float())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert first > 0.6 and last < 0.5 * first, (first, last)


def test_lru_initialisation_follows_the_paper():
    torch.manual_seed(0)
    layer = rnnlab.LRU(4, 6, state_size=2000, r_min=0.4, r_max=0.9, max_phase=math.pi / 10)
    modulus = torch.exp(-layer.nu_log_l0.exp())
    phase = layer.theta_log_l0.exp()
    assert modulus.min() >= 0.4 - 1e-6 and modulus.max() <= 0.9 + 1e-6
    assert phase.min() >= 0 and phase.max() <= math.pi / 10 + 1e-6
    # uniform on the ring: |λ|^2 uniform in [r_min^2, r_max^2], mean (0.16 + 0.81) / 2
    assert (modulus ** 2).mean().item() == pytest.approx(0.485, abs=0.01)
    torch.testing.assert_close(layer.gamma_log_l0.exp(), torch.sqrt(1 - modulus ** 2))
    assert layer.weight_in_re_l0.std().item() == pytest.approx(1 / math.sqrt(8), rel=0.1)


def test_rglru_initialisation_follows_the_authors_code():
    """exp(-softplus(a_param)) uniform on the ring [0.9, 0.999]: its square uniform in [0.81, 0.998]; gate
    weights N(0, 1/d), biases 0, the input projection N(0, 1/I)."""
    torch.manual_seed(0)
    layer = rnnlab.RGLRU(16, 4000, num_heads=100)
    radius = torch.exp(-torch.nn.functional.softplus(layer.a_param_l0.double()))
    assert radius.min() >= 0.9 - 1e-6 and radius.max() <= 0.999 + 1e-6
    assert (radius ** 2).mean().item() == pytest.approx((0.81 + 0.998) / 2, abs=0.003)
    assert layer.weight_a_l0.std().item() == pytest.approx(1 / math.sqrt(40), rel=0.05)
    assert layer.weight_ih_l0.std().item() == pytest.approx(1 / 4, rel=0.05)
    assert not layer.bias_a_l0.any() and not layer.bias_x_l0.any() and not layer.bias_ih_l0.any()
    assert layer.weight_a_l0.shape == (4000, 40)


def test_lru_normalisation_keeps_the_state_variance_of_white_noise():
    """γ = sqrt(1 - |λ|^2) makes E|x_t|^2 = E|Bu|^2 in the stationary regime, however close |λ| is to 1."""
    torch.manual_seed(0)
    layer = rnnlab.LRU(1, 1, state_size=3, r_min=0.99, r_max=0.999).double()
    with torch.no_grad():
        layer.weight_in_re_l0.fill_(1.0)
        layer.weight_in_im_l0.fill_(0.0)
    _, (_, x_re, x_im) = layer(torch.randn(4000, 400, 1, dtype=torch.double))
    power = (x_re ** 2 + x_im ** 2).mean().item()
    assert power == pytest.approx(1.0, rel=0.15)


# ---- mixed stacks ------------------------------------------------------------------------------------------
def test_mixed_stack_state_layout_and_stepping():
    torch.manual_seed(0)
    stack = rnnlab.build_layer("lstm+gru", 3, 4, num_layers=2).double().eval()
    assert [type(layer).__name__ for layer in stack.layers] == ["LSTM", "GRU", "LSTM", "GRU"]
    x = torch.randn(6, 2, 3, dtype=torch.double)
    full, final = stack(x)
    assert len(final) == 4 and isinstance(final[0], tuple) and isinstance(final[1], torch.Tensor)
    assert final[0][1].shape == (1, 2, 4) and final[1].shape == (1, 2, 4)
    state, outs = None, []
    for t in range(6):
        y, state = stack(x[t:t + 1], state)
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs), full, rtol=0, atol=1e-12)


def test_mixed_stack_fast_path_equals_the_reference_and_passes_gradcheck():
    """An LSTM+GRU stack on the fused engine equals the same stack on the reference engine in float64 (outputs,
    states, every gradient), and its gradients pass gradcheck."""
    torch.manual_seed(0)
    fast = rnnlab.build_layer("lstm+gru", 3, 4, num_layers=2).double()
    ref = rnnlab.build_layer("lstm+gru", 3, 4, num_layers=2, backend="reference").double()
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(7, 2, 3, dtype=torch.double)

    def flat(final):
        return [t for s in final for t in ((s,) if isinstance(s, torch.Tensor) else s)]

    results = []
    for layer in (fast, ref):
        xi = x.clone().requires_grad_()
        out, final = layer(xi)
        outputs = [out, *flat(final)]
        g = torch.Generator().manual_seed(1)
        loss = sum((o * torch.randn(o.shape, dtype=o.dtype, generator=g)).sum() for o in outputs)
        results.append([*outputs, *torch.autograd.grad(loss, [xi, *layer.parameters()])])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    names = [n for n, _ in fast.named_parameters()]

    def fn(x, *weights):
        out, final = torch.func.functional_call(fast, dict(zip(names, weights, strict=True)), (x,))
        return (out, *flat(final))

    xg = torch.randn(4, 2, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (xg, *fast.parameters()), eps=1e-6, atol=1e-6)


def test_mixed_stack_equals_its_layers_run_by_hand_and_takes_packed_input():
    torch.manual_seed(0)
    lstm, gru = rnnlab.LSTM(3, 4, bidirectional=True).double(), rnnlab.MinGRU(8, 5).double()
    stack = rnnlab.Stack(lstm, gru)
    x = torch.randn(5, 3, 3, dtype=torch.double)
    lengths = torch.tensor([5, 2, 4])
    out, (s0, s1) = stack(pack_padded_sequence(x, lengths, enforce_sorted=False))
    mid, t0 = lstm(pack_padded_sequence(x, lengths, enforce_sorted=False))
    expected, t1 = gru(mid)
    torch.testing.assert_close(out.data, expected.data)
    torch.testing.assert_close(s1, t1)
    torch.testing.assert_close(s0[1], t0[1])


# ---- bad input ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,message", [
    (lambda: rnnlab.IndRNN(3, 4, recurrent_max=0.0), "recurrent_max must be a positive number, got 0.0"),
    (lambda: rnnlab.IndRNN(3, 4, recurrent_max="1"), "recurrent_max must be a positive number, got str"),
    (lambda: rnnlab.IndRNN(3, 4, max_len=0), "max_len must be a positive int"),
    (lambda: rnnlab.IndRNN(3, 4, recurrent_init="orthogonal"), "recurrent_init does not apply to indrnn"),
    (lambda: rnnlab.LRU(3, 4, r_min=0.9, r_max=0.5), "needs 0 <= r_min < r_max <= 1.*got r_min=0.9, r_max=0.5"),
    (lambda: rnnlab.LRU(3, 4, r_max=1.5), r"needs 0 <= r_min < r_max <= 1 \(eigenvalues inside the unit circle\)"),
    (lambda: rnnlab.LRU(3, 4, state_size=0), "state_size must be positive, got 0"),
    (lambda: rnnlab.LRU(3, 4, max_phase=-1.0), "max_phase must be > 0, got -1.0"),
    (lambda: rnnlab.LRU(3, 4, forget_bias=1.0), "forget_bias does not apply to lru"),
    (lambda: rnnlab.RGLRU(3, 6, num_heads=4), "RG-LRU num_heads must divide hidden_size: got hidden_size=6, "
     "num_heads=4"),
    (lambda: rnnlab.RGLRU(3, 6, c=0.0), r"gate scale c must be > 0 \(the paper's 8\), got 0.0"),
    (lambda: rnnlab.RGLRU(3, 6, c="8"), "c must be a number, got str"),
    (lambda: rnnlab.RGLRU(3, 6, r_min=0.99, r_max=0.9), "needs 0 < r_min < r_max < 1.*got r_min=0.99, r_max=0.9"),
    (lambda: rnnlab.RGLRU(3, 6, r_max=1.0), r"radius range needs 0 < r_min < r_max < 1 \(a decay in \(0, 1\)\)"),
    (lambda: rnnlab.RGLRU(3, 6, r_min=float("nan")), "r_min must be a finite number, got nan"),
    (lambda: rnnlab.RGLRU(3, 6, forget_bias=1.0), "forget_bias does not apply to rglru"),
    (lambda: rnnlab.RGLRU(3, 6, weight_drop=0.2), "weight_drop drops recurrent weights, and rglru has none"),
    (lambda: rnnlab.SLSTM(3, 6, num_heads=4), "num_heads must divide hidden_size: got hidden_size=6, num_heads=4"),
    (lambda: rnnlab.MLSTM(3, 6, num_heads=4), "mLSTM num_heads must divide hidden_size: got hidden_size=6, "
     "num_heads=4"),
    (lambda: rnnlab.MLSTM(3, 6, forget_bias=1.0), "forget_bias does not apply to mlstm"),
    (lambda: rnnlab.SLSTM(3, 6, num_heads=0), "num_heads must be positive, got 0"),
    (lambda: rnnlab.SLSTM(3, 6, variant="mlstm"), "unknown slstm variant 'mlstm'; expected one of: vanilla"),
    (lambda: rnnlab.MinGRU(3, 4, weight_drop=0.5), r"weight_drop drops recurrent weights, and mingru has none"),
    (lambda: rnnlab.MinLSTM(3, 4, layer_norm=True), "unexpected keyword argument 'layer_norm'"),
    (lambda: rnnlab.Stack(rnnlab.LSTM(3, 4, bidirectional=True), rnnlab.GRU(4, 4)),
     r"sizes don't chain: layer 1 \(GRU\) expects input_size 8 \(the LSTM below gives 2 x 4 features per step\), "
     "got input_size=4"),
    (lambda: rnnlab.Stack(rnnlab.LSTM(3, 4), rnnlab.GRU(4, 4, batch_first=True)), "the same batch_first"),
    (lambda: rnnlab.Stack(), "a Stack needs at least one layer"),
    (lambda: rnnlab.Stack(rnnlab.LSTM(3, 4), torch.nn.GRU(4, 4)), "layer 1 of a Stack must be an rnnlab recurrent"),
    (lambda: rnnlab.build_layer("lstm+bogus", 3, 4), r"unknown cell 'bogus' in mixed stack 'lstm\+bogus'"),
    (lambda: rnnlab.build_layer("lstm+gru", 3, 4, variant="peephole"), r"a mixed stack \(lstm\+gru\) has no variant"),
])
def test_bad_hyperparameters(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make()


def test_a_stack_of_foreign_modules_is_a_type_error_and_bad_hx_a_value_error():
    with pytest.raises(TypeError):
        rnnlab.Stack(torch.nn.LSTM(3, 4))
    with pytest.raises(ValueError, match="expected hx to be a tuple of 2 layer states"):
        rnnlab.build_layer("gru+lstm", 3, 4)(torch.randn(2, 1, 3), torch.zeros(1, 1, 4))


@pytest.mark.parametrize("make", [rnnlab.cells.minimal.MinGRUMath, rnnlab.cells.minimal.MinLSTMMath],
                         ids=["mingru", "minlstm"])
def test_linear_coefficients_are_the_exponentials_of_the_log_ones(make):
    """What the eager scan runs (a, b) equals what the traced log-space scan runs (log a, log b), exponentiated,
    out to pre-activations of +-19 (gates saturated to 6e-9; beyond 20 torch's softplus returns its input, which
    costs the log form a relative 1e-9)."""
    cell = make(5)
    gx = torch.cat([torch.linspace(-19, 19, 5 * len(cell.gates_ih), dtype=torch.double).view(1, -1),
                    torch.randn(3, 5 * len(cell.gates_ih), dtype=torch.double)])
    a, b = cell.linear_coefficients(gx, {})
    log_a, log_b = cell.log_coefficients(gx)
    torch.testing.assert_close(a, log_a.exp(), rtol=1e-12, atol=0)
    torch.testing.assert_close(b, log_b.exp(), rtol=1e-12, atol=0)
