"""Search spaces: the ranges ``rnnlab compare --tune N`` draws each cell's hyperparameters from.

A task declares its space next to its defaults (:meth:`rnnlab.tasks.Task.search_space`); the generic one of
:class:`~rnnlab.tasks.base.Task` is the learning rate, log-uniform from a tenth to three times the task's
default, and the hidden size, log-uniform from half to twice the task's default. A user replaces or adds
parameters with ``--space``::

    --space "lr=1e-4:1e-2:log,hidden_size=32:128:log,weight_drop=0:0.5,optimizer=adam|adamw"

A parameter's name is a training setting (``lr``, ``hidden_size``, ``weight_decay``, ``batch_size``, ...:
:mod:`rnnlab.train.config`), a layer option (``zoneout``, ``weight_drop``, ``variational_dropout``,
``forget_bias``, ``layer_norm``) or one of the task's options (music's ``output_dropout``). A range of two
integers is an integer range, anything else a float range; ``|`` separates the values of a choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from rnnlab.errors import InputError

__all__ = ["Choice", "Float", "Int", "Param", "format_space", "parse_space"]


@dataclass(frozen=True)
class Float:
    """A real number in ``[low, high]``, uniform or (``log=True``) log-uniform."""

    low: float
    high: float
    log: bool = False

    def check(self, name: str) -> None:
        if not (math.isfinite(self.low) and math.isfinite(self.high) and self.low <= self.high):
            raise InputError(f"search space {name}: expected low <= high, got {self.low:g}:{self.high:g}")
        if self.log and self.low <= 0:
            raise InputError(f"search space {name}: a log range needs low > 0, got {self.low:g}")

    def bounds(self) -> tuple[Any, ...]:
        return (self.low, self.high)

    def describe(self) -> str:
        return f"{self.low:g}..{self.high:g}" + (" (log)" if self.log else "")


@dataclass(frozen=True)
class Int:
    """An integer in ``[low, high]``, uniform or (``log=True``) log-uniform."""

    low: int
    high: int
    log: bool = False

    def check(self, name: str) -> None:
        if self.low > self.high:
            raise InputError(f"search space {name}: expected low <= high, got {self.low}:{self.high}")
        if self.log and self.low < 1:
            raise InputError(f"search space {name}: a log range needs low >= 1, got {self.low}")

    def bounds(self) -> tuple[Any, ...]:
        return (self.low, self.high)

    def describe(self) -> str:
        return f"{self.low}..{self.high}" + (" (log)" if self.log else "")


@dataclass(frozen=True)
class Choice:
    """One of ``values``."""

    values: tuple[Any, ...]

    def check(self, name: str) -> None:
        if not self.values:
            raise InputError(f"search space {name}: a choice needs at least one value")

    def bounds(self) -> tuple[Any, ...]:
        return self.values

    def describe(self) -> str:
        return "|".join(map(str, self.values))


Param = Float | Int | Choice


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        return float(text)


def _value(text: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    try:
        return _number(text)
    except ValueError:
        return text


def parse_space(text: str) -> dict[str, Param]:
    """``"lr=1e-4:1e-2:log,hidden_size=32:128,optimizer=adam|adamw"`` -> ``{name: Param}``.

    Raises:
        InputError: an item that is not ``name=low:high[:log]`` or ``name=a|b|...``, or a bad range.
    """
    space: dict[str, Param] = {}
    for item in (part.strip() for part in text.split(",")):
        name, eq, spec = item.partition("=")
        name = name.strip().replace("-", "_")
        if not eq or not name or not spec:
            raise InputError(f"--space expects name=low:high[:log] or name=a|b, got {item!r}")
        if name in space:
            raise InputError(f"--space names {name} twice")
        if "|" in spec or ":" not in spec:
            space[name] = Choice(tuple(_value(v.strip()) for v in spec.split("|")))
        else:
            parts = spec.split(":")
            log = len(parts) == 3 and parts[2] == "log"
            if len(parts) not in (2, 3) or (len(parts) == 3 and not log):
                raise InputError(f"--space expects name=low:high[:log] or name=a|b, got {item!r}")
            try:
                low, high = _number(parts[0]), _number(parts[1])
            except ValueError:
                raise InputError(f"--space {name}: expected numbers low:high, got {spec!r}") from None
            both_int = isinstance(low, int) and isinstance(high, int)
            space[name] = Int(low, high, log) if both_int else Float(float(low), float(high), log)
        space[name].check(name)
    return space


def format_space(space: dict[str, Param]) -> str:
    """One line: ``lr 0.001..0.03 (log), hidden_size 16..64 (log)``."""
    return ", ".join(f"{name} {param.describe()}" for name, param in space.items())
