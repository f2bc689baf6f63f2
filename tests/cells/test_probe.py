"""The probe sees every gate at every step and the total gradient of the loss at every h_t."""

import torch

import rnnlab
from rnnlab.cells.probe import probing


def test_probe_records_gates_and_state_gradients():
    lstm = rnnlab.LSTM(2, 3, num_layers=2).double()
    x = torch.randn(5, 4, 2, dtype=torch.double)
    with probing() as probe:
        out, _ = lstm(x)
    assert set(probe.gates) == {"input", "forget", "output"}
    assert len(probe.gates["forget"]) == 10  # 5 steps x 2 layers
    assert len(probe.states) == 2 and len(probe.states[0]) == 5
    out[-1].sum().backward()  # a loss at the last step only
    grads = [h.grad for h in probe.states[1]]
    # the top layer's last state gets the loss's gradient directly: ones
    torch.testing.assert_close(grads[-1], torch.ones(4, 3, dtype=torch.double))


def test_no_probe_no_recording():
    gru = rnnlab.GRU(2, 3)
    with probing() as probe:
        pass
    gru(torch.randn(4, 1, 2))
    assert probe.gates == {} and probe.states == []


def test_probed_gradient_equals_the_derivative_through_the_recurrence():
    rnn = rnnlab.RNN(2, 3).double()
    x = torch.randn(4, 1, 2, dtype=torch.double)
    with probing() as probe:
        out, _ = rnn(x)
    out[-1].sum().backward()
    h2, h3 = probe.states[0][2], probe.states[0][3]
    # dL/dh_2 = (dh_3/dh_2)^T dL/dh_3 with dh_3/dh_2 = diag(1 - h_3^2) W_hh
    expected = (h3.grad * (1 - h3.detach() ** 2)) @ rnn.weight_hh_l0.detach()
    torch.testing.assert_close(h2.grad, expected)
