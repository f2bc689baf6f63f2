"""ConvLSTM / ConvGRU / ConvRNN: torch parity at 1x1, Shi et al.'s equations at 3x3, stepping, gradients, errors."""

import pytest
import torch
import torch.nn.functional as F

import rnnlab
from rnnlab.errors import InputError

FAMILIES = [(rnnlab.ConvLSTM, torch.nn.LSTM), (rnnlab.ConvGRU, torch.nn.GRU), (rnnlab.ConvRNN, torch.nn.RNN)]


@pytest.mark.parametrize("conv_cls, torch_cls", FAMILIES)
def test_one_by_one_kernel_on_one_pixel_is_torchs_layer(conv_cls, torch_cls):
    conv = conv_cls(3, 4, num_layers=2, bidirectional=True, kernel_size=1, dtype=torch.float64)
    ref = torch_cls(3, 4, num_layers=2, bidirectional=True, dtype=torch.float64)
    ref.load_state_dict({k: v.reshape(v.shape[:2]) if v.dim() == 4 else v for k, v in conv.state_dict().items()})
    x = torch.randn(6, 2, 3, dtype=torch.float64)  # (T, B, I)
    out, state = conv(x[..., None, None])  # (T, B, 3, 1, 1)
    expected, expected_state = ref(x)
    torch.testing.assert_close(out[..., 0, 0], expected)
    states = state if isinstance(state, tuple) else (state,)
    expected_states = expected_state if isinstance(expected_state, tuple) else (expected_state,)
    for s, e in zip(states, expected_states, strict=True):
        torch.testing.assert_close(s[..., 0, 0], e)


def test_conv_lstm_follows_shi_et_al_equations():
    torch.manual_seed(0)
    layer = rnnlab.ConvLSTM(2, 3, kernel_size=3, dtype=torch.float64)
    x = torch.randn(4, 2, 2, 5, 6, dtype=torch.float64)  # (T, B, C, H, W)
    out, (h_n, c_n) = layer(x)
    # the textbook form: one convolution of the stacked [x_t, h_{t-1}] with the stacked weights
    w = torch.cat([layer.weight_ih_l0, layer.weight_hh_l0], dim=1)  # (4K, C + K, 3, 3)
    b = layer.bias_ih_l0 + layer.bias_hh_l0
    h = c = torch.zeros(2, 3, 5, 6, dtype=torch.float64)
    for t in range(4):
        i, f, g, o = F.conv2d(torch.cat([x[t], h], dim=1), w, b, padding=1).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        torch.testing.assert_close(out[t], h)
    torch.testing.assert_close(h_n[0], h)
    torch.testing.assert_close(c_n[0], c)


@pytest.mark.parametrize("conv_cls", [f[0] for f in FAMILIES])
def test_stepping_equals_the_full_run(conv_cls):
    layer = conv_cls(2, 3, num_layers=2, kernel_size=3, batch_first=True, dtype=torch.float64).eval()
    x = torch.randn(2, 5, 2, 4, 4, dtype=torch.float64)  # (B, T, C, H, W)
    full, final = layer(x)
    state, steps = None, []
    for t in range(5):
        y, state = layer(x[:, t : t + 1], state)
        steps.append(y)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=0, atol=0)
    for a, b in zip(state if isinstance(state, tuple) else (state,), final if isinstance(final, tuple) else (final,),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_shapes_unbatched_and_gradients():
    layer = rnnlab.ConvLSTM(1, 2, kernel_size=3, bidirectional=True, dtype=torch.float64)
    x = torch.randn(3, 1, 4, 4, dtype=torch.float64)  # unbatched (T, C, H, W)
    out, (h, c) = layer(x)
    assert out.shape == (3, 4, 4, 4) and h.shape == c.shape == (2, 2, 4, 4)
    small = torch.randn(2, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: layer(x)[0].sum(), (small,))


def test_forget_bias_and_errors():
    layer = rnnlab.ConvLSTM(1, 2, forget_bias=1.0)
    assert torch.equal(layer.bias_ih_l0[2:4], torch.ones(2)) and torch.equal(layer.bias_hh_l0[2:4], torch.zeros(2))
    with pytest.raises(InputError, match="kernel_size must be odd"):
        rnnlab.ConvLSTM(1, 2, kernel_size=4)
    with pytest.raises(InputError, match="forget_bias applies"):
        rnnlab.ConvGRU(1, 2, forget_bias=1.0)
    with pytest.raises(InputError, match="expected input with input_size 1 channels, got 3"):
        layer(torch.zeros(2, 1, 3, 4, 4))
    with pytest.raises(InputError, match="4 .* or 5 .* dimensions, got 3"):
        layer(torch.zeros(2, 1, 4))
    with pytest.raises(InputError, match=r"expected h0 of shape \(1, 1, 2, 4, 4\)"):
        layer(torch.zeros(2, 1, 1, 4, 4), (torch.zeros(1, 1, 2, 4, 5), torch.zeros(1, 1, 2, 4, 5)))
    with pytest.raises(InputError, match="a tuple of 2 Tensors"):
        layer(torch.zeros(2, 1, 1, 4, 4), torch.zeros(1, 1, 2, 4, 4))
