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
    grads = [h.grad for (h,) in probe.states[1]]
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
    (h2,), (h3,) = probe.states[0][2], probe.states[0][3]
    # dL/dh_2 = (dh_3/dh_2)^T dL/dh_3 with dh_3/dh_2 = diag(1 - h_3^2) W_hh
    expected = (h3.grad * (1 - h3.detach() ** 2)) @ rnn.weight_hh_l0.detach()
    torch.testing.assert_close(h2.grad, expected)


def test_probed_gradient_of_the_lru_is_that_of_its_carried_complex_state():
    """The LRU's output y_t is not fed back: the flow through time is the gradient of its state x_t."""
    lru = rnnlab.LRU(2, 3, state_size=4).double()
    lru.backend = "reference"
    x = torch.randn(6, 2, 2, dtype=torch.double)
    with probing() as probe:
        out, _ = lru(x)
    out[-1].sum().backward()
    carried = probe.states[0]
    assert len(carried) == 6 and [part.shape for part in carried[0]] == [(2, 4), (2, 4)]  # Re x_t, Im x_t
    norms = probe.gradient_norms(0)
    assert all(n > 0 for n in norms)  # y_t alone would have no gradient before the last step
    # x_t = λ x_{t-1} + ...: dL/dx_{t-1} = conj(λ) dL/dx_t (as real pairs), so each step back scales by |λ|
    (re4, im4), (re5, im5) = carried[4], carried[5]
    nu, theta = lru.nu_log_l0.detach().exp(), lru.theta_log_l0.detach().exp()
    lam = torch.exp(-nu + 1j * theta)
    g5 = torch.complex(re5.grad, im5.grad)
    torch.testing.assert_close(torch.complex(re4.grad, im4.grad), lam.conj() * g5)


def test_probed_gradient_of_the_mlstm_is_that_of_its_memory():
    mlstm = rnnlab.MLSTM(2, 4).double()
    mlstm.backend = "reference"
    with probing() as probe:
        out, _ = mlstm(torch.randn(5, 2, 2, dtype=torch.double))
    out[-1].sum().backward()
    assert [part.shape[-1] for part in probe.states[0][0]] == [16, 4, 1]  # C, n, m of one head of size 4
    assert all(n > 0 for n in probe.gradient_norms(0))
