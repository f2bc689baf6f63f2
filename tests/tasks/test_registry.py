"""The task registry, task options and their command-line parsing."""

import pytest
import torch

from rnnlab.errors import InputError
from rnnlab.tasks import Task, TaskOption, get_task, map_state, register_task, task_names
from rnnlab.tasks.adding import Adding
from rnnlab.tasks.copy_memory import CopyMemory


def test_builtin_tasks_are_registered():
    assert {"adding", "copy", "digits"} <= set(task_names())
    assert get_task("adding") is Adding
    assert get_task("copy") is CopyMemory


def test_unknown_task_lists_known_ones():
    with pytest.raises(InputError, match="unknown task 'nope'.*adding.*copy.*digits"):
        get_task("nope")


def test_register_rejects_bad_classes():
    with pytest.raises(TypeError, match="Task subclass"):
        register_task(int)

    class NoName(Adding):
        name = "Bad Name"

    with pytest.raises(TypeError, match="snake_case"):
        register_task(NoName)

    class Clash(Adding):
        name = "adding"

    with pytest.raises(TypeError, match="already registered"):
        register_task(Clash)


def test_option_conversion_and_errors():
    opt = TaskOption("seq_len", int, 10, "length", min_value=2)
    assert opt.flag == "--seq-len"
    assert opt.convert("12") == 12
    with pytest.raises(InputError, match="--seq-len expects int, got 'x'"):
        opt.convert("x")
    with pytest.raises(InputError, match=">= 2"):
        opt.convert(1)
    with pytest.raises(InputError, match="expects int"):
        opt.convert(2.5)
    flag = TaskOption("shuffle", bool, False, "shuffle")
    assert flag.convert("yes") is True and flag.convert("off") is False
    with pytest.raises(InputError):
        flag.convert("maybe")
    choice = TaskOption("level", str, "word", "unit", choices=("word", "char"))
    with pytest.raises(InputError, match="one of word, char"):
        choice.convert("byte")


def test_task_construction_validates_options():
    assert Adding(seq_len="50").settings == {"seq_len": 50}
    assert Adding().settings == {"seq_len": 200}
    with pytest.raises(InputError, match="--copy-len does not apply to task adding"):
        Adding(copy_len=3)


def test_parse_cli_args():
    assert CopyMemory.parse_cli_args(["--seq-len", "30", "--copy-len=5"]) == {"seq_len": "30", "copy_len": "5"}
    with pytest.raises(InputError, match="--hidden-x does not apply to task copy"):
        CopyMemory.parse_cli_args(["--hidden-x", "3"])
    with pytest.raises(InputError, match="needs a value"):
        CopyMemory.parse_cli_args(["--seq-len"])
    with pytest.raises(InputError, match="unexpected argument '7'"):
        CopyMemory.parse_cli_args(["7"])


def test_parse_cli_bool_flags():
    class Flagged(Adding):
        options = (TaskOption("shuffle", bool, False, "shuffle"), TaskOption("n", int, 1, "n"))

    assert Flagged.parse_cli_args(["--shuffle", "--n", "3"]) == {"shuffle": "true", "n": "3"}
    assert Flagged.parse_cli_args(["--no-shuffle"]) == {"shuffle": "false"}
    with pytest.raises(InputError):
        Flagged.parse_cli_args(["--no-n"])


def test_map_state_over_tensors_and_tuples():
    h = torch.ones(1, 2, 3, requires_grad=True) * 2
    assert map_state(torch.Tensor.detach, None) is None
    assert not map_state(torch.Tensor.detach, h).requires_grad
    out = map_state(torch.Tensor.detach, (h, (h, h)))
    assert isinstance(out, tuple) and not out[1][0].requires_grad
    with pytest.raises(TypeError):
        map_state(torch.Tensor.detach, "state")


def test_optional_hooks_raise_input_error():
    assert not Adding.supports("generate")
    with pytest.raises(InputError, match="does not support generate"):
        Adding().generate(None)
    with pytest.raises(InputError):
        Task.supports("fly")
