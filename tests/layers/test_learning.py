"""Each family learns: the loss of a small memory problem falls well below where it started."""

import pytest
import torch

import rnnlab


def recall_first_input(layer, steps=250):
    """Predict the sign of the first input of a length-6 sequence from the last output."""
    torch.manual_seed(0)
    head = torch.nn.Linear(layer.hidden_size if not hasattr(layer, "proj_size") or not layer.proj_size
                           else layer.proj_size, 1)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=0.02)
    losses = []
    for _ in range(steps):
        x = torch.randn(6, 32, 2)
        y = (x[0, :, :1] > 0).float()
        out, _ = layer(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(out[-1]), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return sum(losses[:10]) / 10, sum(losses[-10:]) / 10


@pytest.mark.parametrize("make", [
    lambda: rnnlab.RNN(2, 16), lambda: rnnlab.LSTM(2, 16), lambda: rnnlab.GRU(2, 16),
    lambda: rnnlab.LSTM(2, 16, variant="cifg", layer_norm=True), lambda: rnnlab.GRU(2, 16, variant="mgu"),
    lambda: rnnlab.ClockworkRNN(2, 16, periods=(1, 2, 4, 8)), lambda: rnnlab.DepthGatedLSTM(2, 16),
], ids=["rnn", "lstm", "gru", "lstm-cifg-ln", "gru-mgu", "clockwork", "dglstm"])
def test_loss_falls(make):
    first, last = recall_first_input(make())
    assert first > 0.6
    assert last < 0.35 * first, (first, last)
