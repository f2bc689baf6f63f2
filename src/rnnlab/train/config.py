"""Run configuration: what to train, with what, for how long. Everything needed to rerun a run.

A :class:`RunConfig` is built by :func:`build_config` from three layers, later ones winning: the dataclass
defaults below, the task's :attr:`~rnnlab.tasks.Task.defaults` (the budget that solves the task), and the
user's overrides. It is written to the run's ``config.json`` and read back by ``--resume`` and ``rnnlab eval``.
Overrides and task defaults use the flat field names of the three sections (``hidden_size``, ``lr``,
``steps``, ...), which are unique across sections.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rnnlab.errors import InputError
from rnnlab.layers import check_cell, variants_of
from rnnlab.tasks import get_task

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "LoopConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "build_config",
]

OPTIMIZERS = ("adam", "adamw", "rmsprop", "sgd")
SCHEDULES = ("constant", "cosine", "step")
CONFIG_FORMAT = 1


@dataclass
class ModelConfig:
    """The recurrent model (the task adds its own encoder and head)."""

    cell: str = "lstm"  # recurrent cell family, one of rnnlab.layers.CELLS, or a mixed stack "lstm+gru"
    variant: str | None = None  # variant of the family (variants_of(cell)); None: the family's default
    hidden_size: int = 128  # units per layer and direction
    num_layers: int = 1  # stacked recurrent layers
    dropout: float = 0.0  # dropout between stacked layers (training only), in [0, 1)
    bidirectional: bool = False  # also run each sequence backwards (whole-sequence tasks only)
    layer_options: dict[str, Any] = field(default_factory=dict)  # more keywords for build_layer: layer_norm...

    def validate(self) -> None:
        check_cell(self.cell)
        if self.variant is not None and self.variant not in variants_of(self.cell):
            known = ", ".join(variants_of(self.cell))
            raise InputError(f"unknown {self.cell} variant {self.variant!r}; expected one of: {known}")
        _positive_int("hidden_size", self.hidden_size)
        _positive_int("num_layers", self.num_layers)
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"dropout must be in [0, 1), got {self.dropout}")


@dataclass
class OptimConfig:
    """The optimizer, gradient clipping and learning-rate schedule."""

    optimizer: str = "adam"  # one of OPTIMIZERS: adam, adamw, rmsprop, sgd
    lr: float = 1e-3  # peak learning rate
    weight_decay: float = 0.0  # L2 penalty (decoupled for adamw)
    momentum: float = 0.9  # momentum of sgd and rmsprop (ignored by adam/adamw)
    clip_norm: float | None = 1.0  # clip the global gradient norm to this; None or 0: no clipping
    schedule: str = "constant"  # one of SCHEDULES: constant, cosine (to min_lr_ratio*lr), step
    warmup_steps: int = 0  # linear warmup from 0 to lr over this many steps, then the schedule
    min_lr_ratio: float = 0.0  # cosine: the final lr as a fraction of lr
    step_every: int = 1000  # step: multiply the lr by step_gamma every this many steps
    step_gamma: float = 0.5  # step: the factor

    def validate(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {self.optimizer!r}; expected one of: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise InputError(f"unknown schedule {self.schedule!r}; expected one of: {', '.join(SCHEDULES)}")
        _positive_number("lr", self.lr)
        if self.clip_norm is not None and (not math.isfinite(self.clip_norm) or self.clip_norm < 0):
            raise InputError(f"clip_norm must be >= 0 (0: no clipping), got {self.clip_norm}")
        if self.weight_decay < 0 or self.momentum < 0:
            raise InputError("weight_decay and momentum must be >= 0")
        if self.warmup_steps < 0:
            raise InputError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        _positive_int("step_every", self.step_every)
        if not 0.0 <= self.min_lr_ratio <= 1.0 or self.step_gamma <= 0:
            raise InputError("min_lr_ratio must be in [0, 1] and step_gamma > 0")


@dataclass
class LoopConfig:
    """The training loop: budget, batching, evaluation, early stopping, seed, device."""

    steps: int | None = 1000  # optimizer steps; None when the budget is given in epochs
    epochs: float | None = None  # budget in passes over the training split (overrides steps)
    max_seconds: float | None = None  # also stop after this much training time (a wall-clock budget); None: no limit
    max_cpu_seconds: float | None = None  # also stop after this much CPU time of the training process (a budget
    # that does not depend on the machine's load: other jobs on the cores slow the clock, not this count; with
    # threads > 1 it counts every thread's time); None: no limit
    train_fraction: float = 1.0  # train on this share of the training split (nested subsets; Task.restrict_train)
    batch_size: int = 64  # sequences per training batch
    eval_batch_size: int | None = None  # sequences per evaluation batch; None: max(batch_size, 256)
    eval_every: int = 100  # evaluate on the validation split (and checkpoint) every this many steps
    patience: int | None = None  # stop after this many evaluations without improvement; None: never
    log_every: int = 25  # log the mean training loss every this many steps
    seed: int = 0  # seeds the model's initialisation, dropout and the order of the training data
    device: str = "cpu"  # torch device of the model and batches
    tensorboard: bool = False  # also log to <run>/tensorboard (needs the tensorboard package)
    threads: int = 1  # CPU threads of torch during the run; 0: torch's default. Small recurrent models are
    # latency-bound: one thread is as fast as several and stays fast when runs share the cores

    def validate(self) -> None:
        if self.steps is None and self.epochs is None:
            raise InputError("give a budget: steps or epochs")
        if self.steps is not None:
            _positive_int("steps", self.steps)
        if self.epochs is not None:
            _positive_number("epochs", self.epochs)
        if self.max_seconds is not None:
            _positive_number("max_seconds", self.max_seconds)
        if self.max_cpu_seconds is not None:
            _positive_number("max_cpu_seconds", self.max_cpu_seconds)
        if isinstance(self.train_fraction, bool) or not isinstance(self.train_fraction, (int, float)) \
                or not 0.0 < self.train_fraction <= 1.0:
            raise InputError(f"train_fraction must be in (0, 1], got {self.train_fraction!r}")
        _positive_int("batch_size", self.batch_size)
        if self.eval_batch_size is not None:
            _positive_int("eval_batch_size", self.eval_batch_size)
        _positive_int("eval_every", self.eval_every)
        _positive_int("log_every", self.log_every)
        if self.patience is not None:
            _positive_int("patience", self.patience)
        _check_device(self.device)
        if self.tensorboard:
            from rnnlab.train.loggers import tensorboard_available

            if not tensorboard_available():
                raise InputError("--tensorboard needs the tensorboard package: pip install tensorboard")
        if not isinstance(self.threads, int) or isinstance(self.threads, bool) or self.threads < 0:
            raise InputError(f"threads must be an integer >= 0, got {self.threads!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool) or self.seed < 0:
            raise InputError(f"seed must be an integer >= 0, got {self.seed!r}")

    @property
    def eval_size(self) -> int:
        """Sequences per evaluation batch."""
        return self.eval_batch_size or max(self.batch_size, 256)


_SECTIONS = {"model": ModelConfig, "optim": OptimConfig, "loop": LoopConfig}
#: flat field name -> section name
FIELDS: dict[str, str] = {f.name: sec for sec, cls in _SECTIONS.items() for f in dataclasses.fields(cls)}


@dataclass
class RunConfig:
    """Everything needed to rerun a run: the task and its options, model, optimizer and loop."""

    task: str  # registered task name
    task_options: dict[str, Any] = field(default_factory=dict)  # every task option's value
    model: ModelConfig = field(default_factory=ModelConfig)  # the recurrent model
    optim: OptimConfig = field(default_factory=OptimConfig)  # optimizer, clipping, schedule
    loop: LoopConfig = field(default_factory=LoopConfig)  # budget, evaluation, seed
    format: int = CONFIG_FORMAT  # version of this layout in config.json

    def validate(self) -> None:
        """Raise :class:`InputError` on any invalid value."""
        self.model.validate()
        self.optim.validate()
        self.loop.validate()
        if self.model.bidirectional and not get_task(self.task).allows_bidirectional:
            raise InputError(f"task {self.task} predicts from the past only: it takes no bidirectional layer")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``config.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        """The config from :meth:`to_dict`'s output; :class:`InputError` if it is not one."""
        if not isinstance(data, Mapping) or not isinstance(data.get("task"), str):
            raise InputError("not an rnnlab run config: expected a JSON object with a 'task' name")
        if data.get("format") != CONFIG_FORMAT:
            raise InputError(f"unsupported run config format {data.get('format')!r}; expected {CONFIG_FORMAT}")
        sections = {}
        for name, section_cls in _SECTIONS.items():
            values = data.get(name, {})
            known = {f.name for f in dataclasses.fields(section_cls)}
            unknown = set(values) - known
            if unknown:
                raise InputError(f"unknown {name} setting(s) in run config: {', '.join(sorted(unknown))}")
            sections[name] = section_cls(**values)
        config = cls(task=data["task"], task_options=dict(data.get("task_options", {})), **sections)
        config.validate()
        return config

    def flat(self) -> dict[str, Any]:
        """Every field of the three sections under its flat name."""
        out: dict[str, Any] = {}
        for section in _SECTIONS:
            out.update(dataclasses.asdict(getattr(self, section)))
        return out

    def with_overrides(self, overrides: Mapping[str, Any]) -> RunConfig:
        """A copy with flat-named fields replaced (``{"lr": 0.01, "steps": 500}``)."""
        per_section: dict[str, dict[str, Any]] = {name: {} for name in _SECTIONS}
        for key, value in overrides.items():
            if key not in FIELDS:
                raise InputError(f"unknown training setting {key!r}")
            per_section[FIELDS[key]][key] = value
        if "epochs" in overrides and overrides["epochs"] is not None and "steps" not in overrides:
            per_section["loop"]["steps"] = None  # a budget in epochs replaces the default budget in steps
        if "steps" in overrides and overrides["steps"] is not None and "epochs" not in overrides:
            per_section["loop"]["epochs"] = None  # and a budget in steps replaces a task's default in epochs
        return dataclasses.replace(
            self,
            **{name: dataclasses.replace(getattr(self, name), **vals) for name, vals in per_section.items()},
        )


def build_config(task: str, task_options: Mapping[str, Any], overrides: Mapping[str, Any]) -> RunConfig:
    """The validated config of a new run: dataclass defaults < the task's defaults < ``overrides``.

    Args:
        task: a registered task name.
        task_options: the task's own options (validated and completed with their defaults here).
        overrides: flat-named settings given by the user (``None`` values are ignored).

    Raises:
        InputError: unknown task, option or setting, or an invalid value.
    """
    task_cls = get_task(task)
    given = {k: v for k, v in overrides.items() if v is not None}
    if given.get("steps") is not None and given.get("epochs") is not None:
        raise InputError("give either --steps or --epochs, not both")
    config = RunConfig(task=task, task_options=task_cls.resolve_options(task_options))
    config = config.with_overrides(dict(task_cls.defaults))
    cell = given.get("cell", config.model.cell)
    variant = given.get("variant", config.model.variant if cell == config.model.cell else None)
    by_cell = dict(task_cls.cell_defaults(cell, variant, config.task_options))
    # layer options merge key by key: the task's defaults < its cell defaults < the user's
    layer_options = _merge_layer_options(config.model.layer_options, by_cell.pop("layer_options", {}))
    layer_options = _merge_layer_options(layer_options, given.get("layer_options", {}))
    config = config.with_overrides(by_cell).with_overrides({**given, "layer_options": layer_options})
    config.validate()
    return config


#: layer options that set the same parameters: the user's one replaces the default's other
_EXCLUSIVE_LAYER_OPTIONS = ({"forget_bias", "chrono_init"},)


def _merge_layer_options(defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated by ``given``, dropping a default that ``given`` replaces by an exclusive option."""
    merged = dict(defaults)
    for group in _EXCLUSIVE_LAYER_OPTIONS:
        if group & set(given):
            for key in group:
                merged.pop(key, None)
    merged.update(given)
    return merged


def _check_device(device: str) -> None:
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError, ValueError):
        raise InputError(f"unknown device {device!r}; expected e.g. cpu, cuda, cuda:1, mps") from None
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if kind in available and not available[kind]():
        raise InputError(f"device {device!r} is not available on this machine")


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InputError(f"{name} must be a positive integer, got {value!r}")


def _positive_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise InputError(f"{name} must be a positive number, got {value!r}")
