"""reset_parameters: torch's default, forget_bias, chrono_init, recurrent_init."""

import pytest
import torch

import rnnlab


def test_forget_bias_sets_the_lstm_forget_gate():
    lstm = rnnlab.LSTM(3, 4, num_layers=2, forget_bias=1.0)
    for k in range(2):
        b_ih, b_hh = getattr(lstm, f"bias_ih_l{k}"), getattr(lstm, f"bias_hh_l{k}")
        assert torch.all(b_ih[4:8] == 1.0) and torch.all(b_hh[4:8] == 0.0)
        assert not torch.all(b_ih[:4] == 1.0)


@pytest.mark.parametrize("variant,gate,sign", [("vanilla", 1, 1.0), ("reset_before", 1, 1.0),
                                               ("mut3", 1, -1.0), ("mgu", 0, -1.0)])
def test_forget_bias_sets_the_gru_keep_gate_with_its_sign(variant, gate, sign):
    gru = rnnlab.GRU(3, 4, variant=variant, forget_bias=2.0)
    assert torch.all(gru.bias_ih_l0[gate * 4:(gate + 1) * 4] == sign * 2.0)


def test_cifg_forget_bias_uses_the_first_block():
    lstm = rnnlab.LSTM(3, 4, variant="cifg", forget_bias=1.5)
    assert lstm.weight_ih_l0.shape == (12, 3)
    assert torch.all(lstm.bias_ih_l0[:4] == 1.5)


def test_chrono_init_spreads_the_forget_bias_and_negates_it_in_the_input_gate():
    torch.manual_seed(0)
    H, t_max = 256, 100
    lstm = rnnlab.LSTM(3, H, num_layers=2, chrono_init=t_max)
    for k in range(2):
        b_ih, b_hh = getattr(lstm, f"bias_ih_l{k}"), getattr(lstm, f"bias_hh_l{k}")
        b_f = b_ih[H:2 * H].detach()
        assert b_f.min() >= 0.0 and b_f.max() <= torch.tensor(t_max - 1.0).log()
        assert b_f.exp().mean() == pytest.approx(t_max / 2, rel=0.15)  # exp(b_f) ~ U(1, T_max - 1)
        assert torch.equal(b_ih[:H], -b_f)
        assert torch.all(b_hh[:2 * H] == 0.0)
    torch.manual_seed(0)
    again = rnnlab.LSTM(3, H, num_layers=2, chrono_init=t_max)
    assert torch.equal(again.bias_ih_l1, lstm.bias_ih_l1)  # drawn from torch's RNG: seeded, reproducible


@pytest.mark.parametrize("variant,gate,sign", [("vanilla", 1, 1.0), ("mgu", 0, -1.0)])
def test_chrono_init_of_the_gru_keep_gate(variant, gate, sign):
    gru = rnnlab.GRU(3, 8, variant=variant, chrono_init=10)
    keep = sign * gru.bias_ih_l0[gate * 8:(gate + 1) * 8].detach()
    assert keep.min() >= 0.0 and keep.max() <= torch.tensor(9.0).log()


def test_chrono_init_of_cifg_sets_only_the_forget_gate():
    lstm = rnnlab.LSTM(3, 4, variant="cifg", chrono_init=10)
    assert lstm.bias_ih_l0[:4].min() >= 0.0 and not torch.all(lstm.bias_ih_l0[4:] == 0.0)


def test_orthogonal_recurrent_init_per_gate_block():
    gru = rnnlab.GRU(3, 6, recurrent_init="orthogonal")
    for block in gru.weight_hh_l0.detach().split(6):
        torch.testing.assert_close(block @ block.T, torch.eye(6), atol=1e-5, rtol=0)


def test_identity_recurrent_init_gives_an_irnn():
    rnn = rnnlab.RNN(3, 5, nonlinearity="relu", recurrent_init="identity")
    torch.testing.assert_close(rnn.weight_hh_l0.detach(), torch.eye(5))


def test_reset_parameters_reinitialises():
    lstm = rnnlab.LSTM(3, 4, forget_bias=1.0)
    with torch.no_grad():
        lstm.weight_ih_l0.zero_()
    lstm.reset_parameters()
    assert lstm.weight_ih_l0.abs().sum() > 0
    assert lstm.weight_ih_l0.abs().max() <= 0.5  # 1/sqrt(4)
    assert torch.all(lstm.bias_ih_l0[4:8] == 1.0)


def test_layer_norm_parameters_start_at_identity():
    lstm = rnnlab.LSTM(3, 4, layer_norm=True)
    assert torch.all(lstm.ln_weight_ih_l0 == 1) and torch.all(lstm.ln_bias_cell_l0 == 0)
