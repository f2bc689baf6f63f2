"""Regularisers: identity or expectation in eval mode, the documented noise in training mode."""

import pytest
import torch

import rnnlab


def test_eval_mode_regularisers_are_identity_or_expectation():
    plain = rnnlab.LSTM(3, 4, num_layers=2).double().eval()
    reg = rnnlab.LSTM(3, 4, num_layers=2, dropout=0.5, variational_dropout=0.4, weight_drop=0.5).double().eval()
    reg.load_state_dict(plain.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.double)
    torch.testing.assert_close(reg(x)[0], plain(x)[0], rtol=0, atol=0)


def test_zoneout_eval_mixes_with_its_expectation():
    rate = 0.25
    layer = rnnlab.GRU(3, 4, zoneout=rate).double().eval()
    cell = rnnlab.GRUCell(3, 4).double()
    cell.load_state_dict({k[:-3]: v for k, v in layer.state_dict().items()})
    x = torch.randn(6, 2, 3, dtype=torch.double)
    out, _ = layer(x)
    h = torch.zeros(2, 4, dtype=torch.double)
    for t in range(6):
        h = rate * h + (1 - rate) * cell(x[t], h)
        torch.testing.assert_close(out[t], h, rtol=0, atol=1e-12)


def test_zoneout_training_keeps_units_with_the_given_rate():
    layer = rnnlab.RNN(8, 64, zoneout=0.3)
    out, _ = layer(torch.randn(200, 16, 8))
    kept = (out[1:] == out[:-1]).double().mean().item()  # a zoned-out unit repeats its value exactly
    assert 0.27 < kept < 0.33


def test_zoneout_lstm_zones_out_the_cell_too():
    layer = rnnlab.LSTM(2, 32, zoneout=0.5)
    _, (_, c) = layer(torch.randn(1, 8, 2))
    assert (c == 0).double().mean().item() > 0.3  # from c_0 = 0, zoned-out units stay at 0


def test_variational_dropout_mask_is_shared_across_time():
    layer = rnnlab.RNN(6, 5, variational_dropout=0.5)
    with torch.no_grad():
        layer.weight_hh_l0.zero_()
        if layer.bias:
            layer.bias_ih_l0.zero_()
            layer.bias_hh_l0.zero_()
    x = torch.ones(50, 4, 6)
    out, _ = layer(x)
    # with no recurrence and a constant input, every step of a sequence sees the same mask: constant output
    torch.testing.assert_close(out, out[:1].expand_as(out))
    assert not torch.allclose(out[:, 0], out[:, 1])  # but different sequences get different masks


def test_weight_drop_masks_the_recurrent_matrix_once_per_call(monkeypatch):
    """One DropConnect mask per forward call, shared by every step: the run equals a plain layer whose
    weight_hh is that one masked matrix; a second call draws another mask; evaluation uses the full matrix."""
    torch.manual_seed(0)
    layer = rnnlab.RNN(2, 16, weight_drop=0.5).double()
    plain = rnnlab.RNN(2, 16).double()
    plain.load_state_dict(layer.state_dict())
    masked: list[torch.Tensor] = []
    dropout = torch.nn.functional.dropout

    def recording_dropout(t, p=0.5, training=True, inplace=False):
        out = dropout(t, p, training, inplace)
        if training and t.shape == layer.weight_hh_l0.shape:
            masked.append(out.detach().clone())
        return out

    monkeypatch.setattr(torch.nn.functional, "dropout", recording_dropout)
    x = torch.randn(12, 3, 2, dtype=torch.float64)
    a, _ = layer(x)
    assert len(masked) == 1  # one mask for the whole call, not one per step
    dropped = masked[0] == 0
    assert dropped.any() and (~dropped).any()
    with torch.no_grad():
        plain.weight_hh_l0.copy_(masked[0])
    torch.testing.assert_close(a, plain(x)[0])  # every step used that same masked matrix
    layer(x)
    assert len(masked) == 2 and not torch.equal(masked[0] == 0, masked[1] == 0)  # a fresh mask per call
    layer.eval()
    with torch.no_grad():
        plain.weight_hh_l0.copy_(layer.weight_hh_l0)
    torch.testing.assert_close(layer(x)[0], plain(x)[0])  # evaluation: no mask
    assert len(masked) == 2


def test_weight_drop_gradient_flows_to_the_unmasked_weights():
    layer = rnnlab.LSTM(2, 8, weight_drop=0.5)
    out, _ = layer(torch.randn(6, 3, 2))
    out.sum().backward()
    g = layer.weight_hh_l0.grad
    assert (g == 0).any() and (g != 0).any()  # dropped entries get no gradient


@pytest.mark.parametrize("name", ["zoneout", "weight_drop", "variational_dropout"])
@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_rates_are_validated(name, value):
    with pytest.raises(ValueError, match=rf"{name} must be in \[0, 1\), got {value}"):
        rnnlab.LSTM(2, 3, **{name: value})


def test_dropout_validated_like_torch():
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\], got -0.5"):
        rnnlab.GRU(2, 3, dropout=-0.5)
    rnnlab.GRU(2, 3, dropout=1.0)
