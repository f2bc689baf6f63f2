import pytest

from rnnlab.train.config import build_config


@pytest.fixture
def tiny_digits():
    """A digits run of a few seconds: small GRU, 30 steps, validation every 10."""

    def make(**overrides):
        settings = {"cell": "gru", "hidden_size": 16, "steps": 30, "batch_size": 32, "eval_every": 10,
                    "log_every": 5, "eval_batch_size": 512}
        settings.update(overrides)
        return build_config("digits", {}, settings)

    return make


@pytest.fixture
def tiny_copy():
    """A copy-memory run with carried structure per step: T=5, K=3, small LSTM."""

    def make(**overrides):
        settings = {"cell": "lstm", "hidden_size": 12, "steps": 24, "batch_size": 16, "eval_every": 8,
                    "log_every": 4, "eval_batch_size": 500}
        settings.update(overrides)
        return build_config("copy", {"seq_len": 5, "copy_len": 3}, settings)

    return make
