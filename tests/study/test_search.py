"""Search spaces (parsing, the tasks' declarations) and nested training fractions."""

import pytest

from rnnlab.study.tuning import apply_params
from rnnlab.tasks import get_task
from rnnlab.tasks.search import Choice, Float, Int, format_space, parse_space


def test_parse_space():
    space = parse_space("lr=1e-4:1e-2:log, hidden-size=32:128, weight_drop=0:0.5, optimizer=adam|adamw, "
                        "layer_norm=true|false")
    assert space == {"lr": Float(1e-4, 1e-2, log=True), "hidden_size": Int(32, 128), "weight_drop": Float(0.0, 0.5),
                     "optimizer": Choice(("adam", "adamw")), "layer_norm": Choice((True, False))}
    assert format_space({"lr": space["lr"]}) == "lr 0.0001..0.01 (log)"


@pytest.mark.parametrize("text,message", [
    ("lr", "expects name=low:high"),
    ("lr=1:2:lin", "expects name=low:high"),
    ("lr=a:b", "expected numbers low:high"),
    ("lr=0.1:0.01", "expected low <= high"),
    ("lr=0:0.1:log", "a log range needs low > 0"),
    ("lr=1e-3:1e-2,lr=1e-4:1e-3", "names lr twice"),
])
def test_parse_space_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_space(text)


def test_tasks_declare_their_spaces():
    adding = get_task("adding").search_space()
    assert adding == {"lr": Float(1e-3, 3e-2, log=True), "hidden_size": Int(16, 64, log=True)}  # around its defaults
    music = get_task("music").search_space()
    assert music["weight_drop"] == Float(0.0, 0.6) and "lr" in music and "output_dropout" in music


def test_apply_params_routes_each_name():
    options, overrides = apply_params("music", {"data": ""}, {"cell": "lstm", "layer_options": {"zoneout": 0.1}},
                                      {"lr": 0.01, "output_dropout": 0.3, "weight_drop": 0.2})
    assert options == {"data": "", "output_dropout": 0.3}
    assert overrides == {"cell": "lstm", "lr": 0.01, "layer_options": {"zoneout": 0.1, "weight_drop": 0.2}}


def test_training_fractions_are_nested_subsets():
    def train_rows(fraction):
        task = get_task("digits")()
        task.restrict_train(fraction)
        return {tuple(x.flatten().tolist()) for x in task.data("train").tensors[0]}

    full, small, smaller = train_rows(1.0), train_rows(0.3), train_rows(0.1)
    assert len(full) > len(small) > len(smaller) > 0
    assert smaller < small < full
    assert abs(len(small) - 0.3 * len(full)) <= 2
    with pytest.raises(ValueError, match="draws fresh training examples at every step"):
        get_task("adding")(seq_len=10).restrict_train(0.5)
    with pytest.raises(ValueError, match=r"expected a training fraction in \(0, 1\]"):
        get_task("digits")().restrict_train(1.5)
