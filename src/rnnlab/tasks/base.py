"""The Task interface and the task registry.

A *task* is everything about a problem that is not the recurrent layer: its data (loaded lazily, split
into ``train``/``valid``/``test``), the encoder in front of the layer and the head on top of it, the loss,
the metrics, a trivial baseline reported beside the model, the options a user may set on the command line,
and the default training budget that solves it. The one :class:`~rnnlab.train.Trainer` runs every task; a
task never contains a training loop.

Writing a task
--------------
Subclass :class:`Task` (or one of the helpers in :mod:`rnnlab.tasks.streams`, which implement batching
for indexable datasets and for synthetic generators), set the class attributes, implement the abstract
methods, and decorate the class with :func:`register_task`::

    @register_task
    class Adding(SyntheticTask):
        name = "adding"
        summary = "adding problem: sum of the two marked numbers in a length-T sequence (MSE)"
        options = (TaskOption("seq_len", int, 200, "sequence length T", min_value=2),)
        monitor = "mse"
        defaults = {"hidden_size": 128, "steps": 2000, "lr": 1e-3}
        ...

Conventions every task follows
------------------------------
* **Time-major batches.** ``Batch.inputs`` is ``(T, B, I)`` float features, ``(T, B)`` int64 token ids, or a
  ``PackedSequence`` of either (variable lengths). The model runs its layer with ``batch_first=False``.
* **Outputs are what the head returns.** ``loss``/``metric_sums`` receive exactly the head's output, so
  the task decides its shape: ``(B, C)`` for whole-sequence classification, ``(T, B, C)`` for per-step
  prediction, ``(B, 1)`` for regression, ...
* **Metric names carry their unit**: ``mse``, ``accuracy``, ``nll_nats``, ``bits_per_char``, ``perplexity``.
  The results file reports them as ``test_<name>``; :meth:`Task.baseline` uses the same names.
* **Determinism.** Batch ``s`` of the training stream is a pure function of ``(seed, s)`` (no hidden iterator
  state), so a resumed run sees exactly the data of an uninterrupted one. Evaluation batches are fixed.
* **Truncated BPTT.** A task whose sequences are too long to backpropagate through at once (language
  modelling) yields consecutive chunks with ``Batch.reset_state=False``; the trainer then carries the
  layer's state from the previous batch, detached, instead of starting from zeros.
* **Errors.** Bad options raise :class:`rnnlab.errors.InputError` naming what was expected and what came.
"""

from __future__ import annotations

import abc
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnnlab.errors import InputError
from rnnlab.tasks.search import Float, Int, Param

__all__ = [
    "SPLITS",
    "Batch",
    "MetricAccumulator",
    "MetricSums",
    "Task",
    "TaskOption",
    "get_task",
    "map_state",
    "register_task",
    "task_names",
    "registered_tasks",
]

#: The three splits every task provides, in this order.
SPLITS: tuple[str, ...] = ("train", "valid", "test")

#: What :meth:`Task.metric_sums` returns: ``{name: (sum over items, number of items)}``. The trainer adds the
#: pairs over all batches of a split and divides, so a metric is an exact mean over items however the split is
#: batched (a short last batch weighs what it holds).
MetricSums = dict[str, tuple[float, float]]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class MetricAccumulator:
    """Adds :data:`MetricSums` over batches; :meth:`means` divides each sum by its count."""

    def __init__(self) -> None:
        self._totals: dict[str, list[float]] = {}

    def add(self, sums: MetricSums) -> None:
        """Add one batch's sums and counts."""
        for name, (total, count) in sums.items():
            acc = self._totals.setdefault(name, [0.0, 0.0])
            acc[0] += float(total)
            acc[1] += float(count)

    def means(self) -> dict[str, float]:
        """``{name: sum / count}`` (NaN for a metric that counted nothing)."""
        return {name: (t / c if c else float("nan")) for name, (t, c) in self._totals.items()}


@dataclass
class Batch:
    """One batch, time-major.

    Attributes:
        inputs: ``(T, B, I)`` float features, ``(T, B)`` int64 token ids, or a ``PackedSequence`` of
            either for variable-length sequences.
        targets: what the loss compares the head's output with; the task defines the shape (``(B,)``
            class ids, ``(T, B)`` per-step ids, ``(B, 1)`` regression targets, ...).
        lengths: ``(B,)`` int64 valid lengths when sequences vary in length, else ``None``.
        mask: ``(T, B)`` bool, true where a per-step target counts (padding excluded), else ``None``.
        reset_state: ``True`` when this batch starts new sequences (the layer starts from its zero state);
            ``False`` when it continues the sequences of the previous batch (truncated BPTT: the trainer
            carries the previous state, detached).
        extra: anything else a task needs in its loss or metrics (kept off the device unless a tensor).
    """

    inputs: torch.Tensor | PackedSequence
    targets: torch.Tensor
    lengths: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    reset_state: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """Number of sequences in the batch (``B``)."""
        if isinstance(self.inputs, PackedSequence):
            return int(self.inputs.batch_sizes[0])
        return int(self.inputs.shape[1])

    def to(self, device: torch.device | str) -> Batch:
        """A copy with every tensor moved to ``device`` (``lengths`` stay on the CPU, as packing wants)."""

        def move(value: Any) -> Any:
            return value.to(device) if isinstance(value, (torch.Tensor, PackedSequence)) else value

        return Batch(
            inputs=move(self.inputs),
            targets=move(self.targets),
            lengths=self.lengths,
            mask=move(self.mask),
            reset_state=self.reset_state,
            extra={k: move(v) for k, v in self.extra.items()},
        )


@dataclass(frozen=True)
class TaskOption:
    """A task-specific option, settable on the command line as ``--kebab-case-name VALUE``.

    Attributes:
        name: the Python name, ``snake_case`` (``seq_len`` is given as ``--seq-len``).
        type: ``int``, ``float``, ``str`` or ``bool``.
        default: the value when the option is not given.
        help: one line for ``rnnlab tasks`` and ``--help``.
        choices: the allowed values, if the option is an enumeration.
        min_value: the smallest allowed value of a number (inclusive).
    """

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    min_value: float | None = None

    @property
    def flag(self) -> str:
        """The command-line spelling, ``--seq-len``."""
        return "--" + self.name.replace("_", "-")

    def convert(self, value: Any) -> Any:
        """Check ``value`` (a string from the command line or a Python value) and return it as ``self.type``.

        Raises:
            InputError: the value has the wrong type, is not among ``choices`` or is below ``min_value``.
        """
        try:
            if self.type is bool:
                if isinstance(value, str):
                    if value.lower() not in _TRUE | _FALSE:
                        raise ValueError(value)
                    out: Any = value.lower() in _TRUE
                elif isinstance(value, bool):
                    out = value
                else:
                    raise ValueError(value)
            elif self.type is int:
                if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                    raise ValueError(value)
                out = int(value)
            else:
                out = self.type(value)
        except (TypeError, ValueError):
            raise InputError(
                f"{self.flag} expects {self.type.__name__}, got {value!r}"
            ) from None
        if self.choices is not None and out not in self.choices:
            allowed = ", ".join(map(str, self.choices))
            raise InputError(f"{self.flag} expects one of {allowed}, got {out!r}")
        if self.min_value is not None and out < self.min_value:
            raise InputError(f"{self.flag} expects a value >= {self.min_value:g}, got {out!r}")
        return out


class Task(abc.ABC):
    """A learning problem: data, encoder, head, loss, metrics, baseline, options and default budget.

    Class attributes (set by every subclass):
        name: the registry key and the command-line name, ``snake_case``.
        summary: one line for ``rnnlab tasks``.
        options: the task-specific :class:`TaskOption` s; the CLI rejects any option not listed here.
        monitor: the validation metric that selects the best checkpoint and drives early stopping.
        higher_is_better: whether a larger ``monitor`` is better (accuracy) or worse (mse, nll).
        allows_bidirectional: whether a bidirectional layer is legitimate (``False`` where seeing the future
            would leak the targets: next-step prediction, forecasting).
        defaults: the training budget that solves the task with the zero-option command, as overrides of the
            trainer's config fields: ``hidden_size``, ``num_layers``, ``steps``, ``batch_size``, ``lr``,
            ``clip_norm``, ``eval_every``, ``patience``, ``optimizer``, ``schedule``, ``warmup_steps``, ...
            (see :mod:`rnnlab.train.config`). The user's options override them.

    Instance attributes:
        settings: ``dict`` of every option's value after validation (recorded in the run's ``config.json``).
        input_size: features per time step that the recurrent layer receives (after :meth:`build_encoder`).

    Construction validates the options: ``Task(seq_len=100)``; unknown names raise :class:`InputError`.
    Construction must be cheap: load data lazily, on first use of a split.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    options: ClassVar[tuple[TaskOption, ...]] = ()
    monitor: ClassVar[str]
    higher_is_better: ClassVar[bool] = False
    allows_bidirectional: ClassVar[bool] = True
    defaults: ClassVar[Mapping[str, Any]] = {}
    #: what ``rnnlab train TASK --help`` adds after the options: how the defaults were chosen and measured
    notes: ClassVar[str] = ""

    input_size: int

    def __init__(self, **options: Any) -> None:
        self.settings: dict[str, Any] = self.resolve_options(options)

    # ----------------------------------------------------------------------------------------------- options
    @classmethod
    def option(cls, name: str) -> TaskOption:
        """The declared option ``name``; :class:`InputError` naming the known ones if there is none."""
        for opt in cls.options:
            if opt.name == name:
                return opt
        known = ", ".join(o.flag for o in cls.options) or "none"
        raise InputError(
            f"option --{name.replace('_', '-')} does not apply to task {cls.name} (its options: {known})"
        )

    @classmethod
    def cell_defaults(cls, cell: str, variant: str | None, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults that depend on the cell and the task's settings, applied over :attr:`defaults` (the user's
        options still win). Flat config names; ``layer_options`` merge key by key with the user's.

        Args:
            cell: the run's cell family; ``variant`` its variant (``None``: the default one).
            settings: the task's resolved options (:meth:`resolve_options`).
        """
        return {}

    @classmethod
    def search_space(cls) -> dict[str, Param]:
        """The ranges ``rnnlab compare --tune N`` draws hyperparameters from (see :mod:`rnnlab.tasks.search`).

        The generic space: the learning rate log-uniform from a tenth to three times the task's default
        ``lr``, and the hidden size log-uniform from half to twice the task's default ``hidden_size``. A task
        whose hyperparameters matter elsewhere (regularisation, say) overrides this, usually adding to
        ``super().search_space()``.
        """
        lr = float(cls.defaults.get("lr", 1e-3))
        hidden = int(cls.defaults.get("hidden_size", 128))
        return {"lr": Float(lr / 10, lr * 3, log=True), "hidden_size": Int(max(1, hidden // 2), hidden * 2, log=True)}

    def restrict_train(self, fraction: float) -> None:
        """Train on the first ``fraction`` of a fixed permutation of the training split (nested subsets: a
        smaller fraction's examples are among every larger one's), for data-size scaling studies. Called
        by the trainer before any data is used. The default refuses: only tasks with a finite training
        split can shrink it.
        """
        raise InputError(f"task {self.name} cannot train on a fraction of its data (--data-fractions)")

    @classmethod
    def resolve_options(cls, given: Mapping[str, Any]) -> dict[str, Any]:
        """Every declared option's value: ``given`` (validated, strings converted) over the defaults."""
        values = {opt.name: opt.default for opt in cls.options}
        for key, value in given.items():
            values[key] = cls.option(key).convert(value)
        return values

    @classmethod
    def parse_cli_args(cls, args: Sequence[str]) -> dict[str, str]:
        """The task options in command-line words: ``["--seq-len", "100", "--flag", "--no-other"]``.

        Accepts ``--name VALUE``, ``--name=VALUE`` and, for bool options, ``--name`` / ``--no-name``.
        Returns ``{python_name: string value}``, to be converted by :meth:`resolve_options`.

        Raises:
            InputError: a word that is not an option, an option the task does not declare, a missing value.
        """
        values: dict[str, str] = {}
        words = list(args)
        i = 0
        while i < len(words):
            word = words[i]
            if not word.startswith("--") or len(word) == 2:
                raise InputError(f"unexpected argument {word!r} (task {cls.name} takes options --name VALUE)")
            flag, has_value, value = word[2:].partition("=")
            name = flag.replace("-", "_")
            negated = name.startswith("no_") and not any(o.name == name for o in cls.options)
            if negated:
                option = cls.option(name[3:])
                if option.type is not bool or has_value:
                    raise InputError(f"--{flag} is not an option of task {cls.name}")
                values[option.name] = "false"
                i += 1
                continue
            option = cls.option(name)
            if has_value:
                values[name] = value
                i += 1
            elif option.type is bool and (i + 1 == len(words) or words[i + 1].startswith("--")):
                values[name] = "true"
                i += 1
            elif i + 1 < len(words):
                values[name] = words[i + 1]
                i += 2
            else:
                raise InputError(f"{option.flag} needs a value")
        return values

    # ------------------------------------------------------------------------------------------------- data
    @abc.abstractmethod
    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        """The endless training stream, starting at batch number ``start_step``.

        Batch ``s`` must depend only on ``(batch_size, seed, s)``: resuming a run at step ``s`` calls this
        with ``start_step=s`` and must see the batches an uninterrupted run would have seen. A finite dataset
        cycles through epochs, each in an order drawn from ``(seed, epoch)``.
        """

    @abc.abstractmethod
    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        """The batches of ``split`` (``"valid"`` or ``"test"``, also ``"train"``) once, in a fixed order."""

    @abc.abstractmethod
    def steps_per_epoch(self, batch_size: int) -> int:
        """Optimizer steps in one pass over the training split (a nominal epoch size for synthetic tasks)."""

    # ------------------------------------------------------------------------------------------------ model
    def build_encoder(self) -> nn.Module:
        """The module between ``Batch.inputs`` and the recurrent layer; it maps ``(T, B, *)`` to
        ``(T, B, input_size)`` (applied to a ``PackedSequence``'s data when inputs are packed).

        The default is the identity (inputs are already ``input_size`` features); token tasks return an
        ``nn.Embedding``.
        """
        return nn.Identity()

    def build_layer(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                    **options: Any) -> nn.Module:
        """The recurrent layer between the encoder and the head: by default
        :func:`rnnlab.layers.build_layer` (``options``: ``variant``, ``dropout``, ``bidirectional`` and the layer
        options). A task whose steps are not vectors returns a layer of its own kind (video frames: a
        convolutional layer of the cell's family).
        """
        from rnnlab.layers import build_layer

        return build_layer(cell, input_size, hidden_size, num_layers, **options)

    @abc.abstractmethod
    def build_head(self, features: int, num_directions: int) -> nn.Module:
        """The module on top of the recurrent layer.

        Args:
            features: size of the layer's output per step, ``num_directions * hidden_size``.
            num_directions: 2 for a bidirectional layer (the head must read the backward half at the start of
                each sequence when it summarises a whole sequence), else 1.

        The head receives the layer's output, ``(T, B, features)`` or a ``PackedSequence``, and returns the
        task's outputs, which :meth:`loss` and :meth:`metric_sums` receive as they are.
        See :mod:`rnnlab.tasks.heads` for the common ones (last step, every step).
        """

    # ------------------------------------------------------------------------------------- loss and metrics
    @abc.abstractmethod
    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """The scalar training loss of one batch (a mean, so its scale does not depend on the batch size)."""

    @abc.abstractmethod
    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        """Sums and counts of every metric over the items of one batch (see :data:`MetricSums`).

        Called under ``torch.no_grad()``. Must include :attr:`monitor` (possibly only after
        :meth:`finalize_metrics`).
        """

    def finalize_metrics(self, means: dict[str, float]) -> dict[str, float]:
        """Derived metrics from the means of :meth:`metric_sums`, e.g. ``perplexity = exp(nll_nats)``.

        The default returns ``means`` unchanged.
        """
        return means

    @abc.abstractmethod
    def baseline(self) -> dict[str, float]:
        """The metrics of a trivial predictor on the test split, by the same names as :meth:`metric_sums`:
        the training mean for regression, the majority class, chance over the alphabet, a unigram model, ...
        Reported beside the model's metrics so that a result means something.
        """

    def evaluate_predictor(
        self, predict: Callable[[Batch], torch.Tensor], split: str = "test", batch_size: int = 1000
    ) -> dict[str, float]:
        """The metrics of ``predict`` (a batch -> outputs shaped like the head's) over ``split``.

        How :meth:`baseline` implementations score their trivial predictor with the task's own metrics.
        """
        acc = MetricAccumulator()
        with torch.no_grad():
            for batch in self.eval_batches(split, batch_size):
                acc.add(self.metric_sums(predict(batch), batch))
        return self.finalize_metrics(acc.means())

    # -------------------------------------------------------------------------------- optional capabilities
    def generate(self, model: nn.Module, **kwargs: Any) -> Any:
        """Produce output from a trained model step by step, carrying the layer's state (sampling text or
        music, free-running forecasts). ``kwargs`` are the task's own (``prompt``, ``length``,
        ``temperature``, ``seed``, ...). Tasks that cannot generate keep this default, which raises
        :class:`InputError`; :meth:`supports` tells the CLI in advance.
        """
        raise InputError(f"task {self.name} does not support generate")

    def predict(self, model: nn.Module, inputs: Any, **kwargs: Any) -> Any:
        """Apply a trained model to user inputs in the task's own format (a sentence, a file of values, ...)
        and return predictions in that format. Tasks that cannot keep this default, which raises
        :class:`InputError`.
        """
        raise InputError(f"task {self.name} does not support predict")

    def pretraining_task(self, *, bidirectional: bool, num_layers: int) -> Task | None:
        """A task to train first, whose model shares this task's encoder, input projection and recurrent layer
        (language-model pretraining of a text classifier, :mod:`rnnlab.tasks.text_lm`), or ``None`` (the
        default). The trainer trains it with this run's model settings, over its ``defaults`` (flat config
        names), before the first step of a new run, and copies the shared weights into this task's model.
        Raise :class:`InputError` if the model (``bidirectional``, ``num_layers``) cannot be pretrained so.
        """
        return None

    def parameter_groups(self, model: nn.Module) -> list[dict[str, Any]] | None:
        """Optimizer parameter groups, each ``{"params": [...], "lr_scale": s}`` (learning rate ``s * lr``),
        covering every parameter of ``model`` once; ``None`` (the default): one group at ``lr``."""
        return None

    def save_artifacts(self, directory: str | Path) -> None:
        """Write into the run ``directory`` what the task derived from its training data and needs to rebuild
        its model and use it later without the data (a vocabulary, the class names). Called once when a run
        starts. The default writes nothing.
        """
        return None

    def save_predictions(self, model: nn.Module, directory: str | Path) -> None:
        """Write into the run ``directory`` what shows the trained ``model`` at work (a strip of predicted video
        frames). Called once, after the test evaluation of the best checkpoint. The default writes nothing.
        """
        return None

    def load_artifacts(self, directory: str | Path) -> None:
        """Restore what :meth:`save_artifacts` wrote into the run ``directory``, before the model is rebuilt
        for ``predict`` or ``generate`` (so no data is read). The default restores nothing.
        """
        return None

    @classmethod
    def supports(cls, capability: str) -> bool:
        """Whether the task overrides the optional hook ``capability`` (``"generate"`` or ``"predict"``)."""
        if capability not in ("generate", "predict"):
            raise InputError(f"expected capability 'generate' or 'predict', got {capability!r}")
        return getattr(cls, capability) is not getattr(Task, capability)

    def build_model(self, cell: str, hidden_size: int, num_layers: int = 1, *, variant: str | None = None,
                    dropout: float = 0.0, bidirectional: bool = False, **layer_options: Any) -> nn.Module | None:
        """A model of the task's own design (an encoder-decoder) from the run's layer settings, or ``None`` (the
        default): :func:`rnnlab.tasks.model.build_model` then builds encoder -> layer -> head. A task that
        overrides this also overrides :meth:`run_model`."""
        return None

    def run_model(self, model: nn.Module, batch: Batch, state: Any = None) -> tuple[Any, Any]:
        """``(outputs, final state)`` of ``model`` on ``batch``: ``model(batch.inputs, state)`` by default. The
        trainer calls the model only through this, so a model that takes more than the inputs (an
        encoder-decoder's target inputs) gets them here."""
        return model(batch.inputs, state)

    def write_report(self, model: nn.Module, directory: str | Path) -> list[Path]:
        """Write task-specific figures of the trained ``model`` into the run ``directory`` when training ends
        (attention heatmaps) and return their paths. The default writes nothing."""
        return []

    # ----------------------------------------------------------------------------------------------- helpers
    def better(self, value: float, best: float | None) -> bool:
        """Whether monitored ``value`` improves on ``best`` (``None``: nothing yet)."""
        if best is None:
            return True
        return value > best if self.higher_is_better else value < best

    @classmethod
    def help_text(cls) -> str:
        """The task's options (flag, default, help) and :attr:`notes`, for ``rnnlab train TASK --help``."""
        lines = [f"Task {cls.name}: {cls.summary}", "", "Task options:"]
        width = max((len(o.flag) for o in cls.options), default=0)
        for o in cls.options:
            choices = f" ({', '.join(map(str, o.choices))})" if o.choices else ""
            lines.append(f"  {o.flag:<{width}}  {o.help}{choices}  [default: {o.default}]")
        if cls.notes:
            lines += ["", cls.notes.strip()]
        return "\n".join(lines)

    @classmethod
    def describe(cls) -> str:
        """One line: name, summary, options with their defaults."""
        opts = " ".join(f"{o.flag} {o.default}" for o in cls.options)
        return f"{cls.name}: {cls.summary}" + (f" [{opts}]" if opts else "")


# --------------------------------------------------------------------------------------------------- registry
_REGISTRY: dict[str, type[Task]] = {}


def register_task(cls: type[Task]) -> type[Task]:
    """Class decorator adding a :class:`Task` subclass to the registry under ``cls.name``.

    Raises:
        TypeError: ``cls`` is not a Task subclass, misses a required class attribute, or reuses a name.
    """
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        raise TypeError(f"expected a Task subclass, got {cls!r}")
    for attr in ("name", "summary", "monitor"):
        if not isinstance(getattr(cls, attr, None), str):
            raise TypeError(f"task class {cls.__name__} must set the class attribute {attr!r} to a string")
    if not _NAME_RE.match(cls.name):
        raise TypeError(f"task name must be snake_case, got {cls.name!r}")
    flags = [o.name for o in cls.options]
    if len(set(flags)) != len(flags) or not all(_NAME_RE.match(f) for f in flags):
        raise TypeError(f"task {cls.name}: option names must be unique and snake_case, got {flags}")
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise TypeError(f"task name {cls.name!r} is already registered by {_REGISTRY[cls.name].__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def task_names() -> tuple[str, ...]:
    """Names of the registered tasks, sorted."""
    return tuple(sorted(_REGISTRY))


def registered_tasks() -> tuple[type[Task], ...]:
    """The registered task classes, sorted by name."""
    return tuple(_REGISTRY[n] for n in task_names())


def get_task(name: str) -> type[Task]:
    """The task class registered as ``name``.

    Raises:
        InputError: no task has that name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown task {name!r}; known tasks: {', '.join(task_names())}") from None


def map_state(fn: Callable[[torch.Tensor], torch.Tensor], state: Any) -> Any:
    """Apply ``fn`` to every tensor of a recurrent state (a tensor, or nested tuples/lists of tensors).

    Layers return their state as an opaque tensor-or-tuple; ``map_state(torch.Tensor.detach, state)`` is how
    the trainer cuts the graph between truncated-BPTT chunks.
    """
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return fn(state)
    if isinstance(state, Sequence) and not isinstance(state, str):
        parts = [map_state(fn, s) for s in state]
        return type(state)(*parts) if hasattr(state, "_fields") else type(state)(parts)
    raise TypeError(f"expected a recurrent state (tensor or tuple of tensors), got {type(state).__name__}")
