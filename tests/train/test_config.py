"""Run configs: precedence of defaults, validation, round trip through config.json."""

import pytest

from rnnlab.errors import InputError
from rnnlab.train.config import OptimConfig, RunConfig, build_config
from rnnlab.train.optim import build_optimizer, lr_factor


def test_precedence_dataclass_then_task_then_user():
    config = build_config("digits", {}, {"lr": 0.5, "seed": None})
    assert config.optim.lr == 0.5  # the user's
    assert config.model.hidden_size == 64  # the task's default
    assert config.loop.seed == 0  # the dataclass default (None means not given)
    assert config.optim.optimizer == "adam"


@pytest.mark.parametrize(
    ("overrides", "layer_options"),
    [
        ({"cell": "lstm"}, {"chrono_init": 70}),  # the copy task's span T + 2K with T = 50, K = 10
        ({"cell": "gru", "variant": "mgu"}, {"chrono_init": 70}),
        ({"cell": "lstm", "variant": "nfg"}, {}),  # no forget gate: no chrono default
        ({"cell": "rnn"}, {}),
        ({"cell": "lstm", "layer_options": {"zoneout": 0.1}}, {"chrono_init": 70, "zoneout": 0.1}),
        ({"cell": "lstm", "layer_options": {"forget_bias": 1.0}}, {"forget_bias": 1.0}),  # the user's replaces it
        ({"cell": "lstm", "layer_options": {"chrono_init": 9}}, {"chrono_init": 9}),
    ],
)
def test_cell_defaults_of_a_task_merge_under_the_users_layer_options(overrides, layer_options):
    config = build_config("copy", {"seq_len": 50}, overrides)
    assert config.model.layer_options == layer_options


def test_task_default_layer_options_merge_with_the_users():
    """music's default DropConnect stays when the user adds zoneout, and goes only when the user sets it."""
    assert build_config("music", {}, {"layer_options": {"zoneout": 0.1}}).model.layer_options == {
        "weight_drop": 0.5, "zoneout": 0.1}
    assert build_config("music", {}, {"layer_options": {"weight_drop": 0.0}}).model.layer_options == {
        "weight_drop": 0.0}


def test_epochs_replace_the_default_steps():
    config = build_config("digits", {}, {"epochs": 2})
    assert config.loop.steps is None and config.loop.epochs == 2
    with pytest.raises(InputError, match="either --steps or --epochs"):
        build_config("digits", {}, {"epochs": 2, "steps": 10})


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cell": "lstmx"}, "unknown cell"),
        ({"cell": "gru", "variant": "peephole"}, "unknown gru variant 'peephole'"),
        ({"hidden_size": 0}, "hidden_size must be a positive integer"),
        ({"num_layers": -1}, "num_layers must be a positive integer"),
        ({"batch_size": 0}, "batch_size"),
        ({"steps": 0}, "steps"),
        ({"lr": 0.0}, "lr must be a positive number"),
        ({"optimizer": "adagrad"}, "unknown optimizer"),
        ({"schedule": "linear"}, "unknown schedule"),
        ({"dropout": 1.0}, "dropout"),
        ({"clip_norm": -1.0}, "clip_norm"),
        ({"nonsense": 1}, "unknown training setting"),
        ({"device": "gpu0"}, "unknown device 'gpu0'"),
        ({"threads": -1}, "threads"),
    ],
)
def test_invalid_settings_raise_input_error(overrides, message):
    with pytest.raises(InputError, match=message):
        build_config("adding", {}, overrides)


def test_task_options_are_validated_and_completed():
    assert build_config("copy", {"seq_len": "20"}, {}).task_options == {"seq_len": 20, "copy_len": 10}
    with pytest.raises(InputError, match="does not apply to task digits"):
        build_config("digits", {"seq_len": 5}, {})


def test_round_trip_through_dict():
    config = build_config("copy", {"seq_len": 20}, {"cell": "gru", "layer_options": {"layer_norm": True}})
    again = RunConfig.from_dict(config.to_dict())
    assert again == config
    data = config.to_dict()
    data["model"]["colour"] = "red"
    with pytest.raises(InputError, match="unknown model setting"):
        RunConfig.from_dict(data)
    with pytest.raises(InputError, match="not an rnnlab run config"):
        RunConfig.from_dict({"hello": 1})


def test_lr_schedules():
    const = OptimConfig(schedule="constant", warmup_steps=4)
    assert [lr_factor(const, s, 100) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    cosine = OptimConfig(schedule="cosine", min_lr_ratio=0.1)
    assert lr_factor(cosine, 0, 101) == pytest.approx(1.0)
    assert lr_factor(cosine, 50, 101) == pytest.approx(0.55)
    assert lr_factor(cosine, 100, 101) == pytest.approx(0.1)
    step = OptimConfig(schedule="step", step_every=10, step_gamma=0.5)
    assert [lr_factor(step, s, 100) for s in (0, 9, 10, 25)] == [1.0, 1.0, 0.5, 0.25]


@pytest.mark.parametrize("name", ["adam", "adamw", "rmsprop", "sgd"])
def test_every_optimizer_builds(name):
    import torch

    layer = torch.nn.Linear(2, 2)
    optimizer = build_optimizer(layer.parameters(), OptimConfig(optimizer=name, lr=0.1))
    assert optimizer.param_groups[0]["lr"] == 0.1
