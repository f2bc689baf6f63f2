"""Using a trained run: its task and its model with the weights of a checkpoint; sampling from it
(``rnnlab generate``) and forecasting with it (``rnnlab forecast``)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from rnnlab.errors import InputError
from rnnlab.tasks import Task, get_task
from rnnlab.train.config import RunConfig
from rnnlab.train.rundir import RunDir
from rnnlab.train.trainer import Trainer

__all__ = ["forecast_from_run", "generate_from_run", "load_trained", "predict_from_run", "translate_from_run"]


def load_trained(path: str | os.PathLike, checkpoint: str = "best") -> tuple[Task, nn.Module]:
    """The task (with the run's options) and the model of the run in ``path``, with the weights of its
    ``checkpoint`` (``best`` or ``last``), in evaluation mode.

    Raises:
        InputError: ``path`` is not a run directory, or has no such checkpoint yet.
    """
    if checkpoint not in ("best", "last"):
        raise InputError(f"expected checkpoint 'best' or 'last', got {checkpoint!r}")
    run = RunDir.open(path)
    config = RunConfig.from_dict(run.read_config())
    task = get_task(config.task)(**config.task_options)
    task.load_artifacts(run.path)  # the run's vocabulary etc.: the model is rebuilt without the data
    trainer = Trainer(config, None, task=task)
    file = run.best_checkpoint if checkpoint == "best" else run.last_checkpoint
    if not file.exists():
        raise InputError(f"{run.path} has no {checkpoint} checkpoint yet (train it first)")
    trainer.load_model(file)
    return trainer.task, trainer.model.eval()


def generate_from_run(
    path: str | os.PathLike,
    *,
    out: str | os.PathLike | None = None,
    checkpoint: str = "best",
    emit: Callable[[str], None] | None = None,
    **options: Any,
) -> tuple[Any, Path | None]:
    """Generate with the model of the run in ``path`` (the task's ``generate`` hook) and, with ``out``, save it.

    ``emit`` receives each piece of the output as soon as it exists, from tasks whose ``generate`` streams
    (takes an ``emit`` argument: text); other tasks never call it.

    ``options`` (``length``, ``seed``, ``temperature``, ``prompt``, ...) go to the task's ``generate``; those
    that are ``None`` are left out, so each task sees only what the user gave. A task that produces something
    other than text (music: a piano roll) saves it with its ``write_generated(result, out)`` and needs ``out``;
    text is written to ``out`` as UTF-8 when given.

    Returns:
        ``(what was generated, the file written or None)``.
    """
    task, model = load_trained(path, checkpoint)
    if not task.supports("generate"):
        raise InputError(f"task {task.name} does not generate; the run in {path} cannot be sampled from")
    writer = getattr(task, "write_generated", None)
    if out is None and writer is not None:
        raise InputError(f"task {task.name} generates a file: give --out FILE (e.g. --out sample.mid)")
    kwargs = {k: v for k, v in options.items() if v is not None}
    if emit is not None and "emit" in inspect.signature(task.generate).parameters:
        kwargs["emit"] = emit
    result = task.generate(model, **kwargs)
    if out is None:
        return result, None
    if writer is not None:
        return result, Path(writer(result, out))
    target = Path(out)
    target.write_text(str(result), encoding="utf-8")
    return result, target


def predict_from_run(
    path: str | os.PathLike, inputs: Any = (), *, checkpoint: str = "best", **options: Any
) -> Any:
    """Apply the model of the run in ``path`` to ``inputs`` with the task's ``predict`` hook (``sentiment``:
    texts; ``input_file=``, ``text_column=``). ``options`` that are ``None`` are left out."""
    task, model = load_trained(path, checkpoint)
    if not task.supports("predict"):
        raise InputError(f"task {task.name} does not support predict; the run in {path} cannot classify inputs")
    return task.predict(model, inputs, **{k: v for k, v in options.items() if v is not None})


def translate_from_run(
    path: str | os.PathLike, sentences: Any = (), *, checkpoint: str = "best", **options: Any
) -> list[str]:
    """Translate ``sentences`` with the model of the translation run in ``path`` (``input_file=``,
    ``beam_size=``; ``None`` options are left out). A run of another task is refused before anything is built."""
    task_name = RunConfig.from_dict(RunDir.open(path).read_config()).task
    if task_name != "translate":
        raise InputError(f"{path} is a run of task {task_name}; translating needs a run of task translate")
    return predict_from_run(path, sentences, checkpoint=checkpoint, **options)


def forecast_from_run(
    path: str | os.PathLike,
    *,
    data: str | os.PathLike | None = None,
    horizon: int | None = None,
    plot: str | os.PathLike | None = None,
    checkpoint: str = "best",
) -> tuple[Any, Path | None]:
    """Forecast past the end of a series with the model of the forecasting run in ``path``.

    ``data``: a table with the run's columns (default: the run's own series); ``horizon``: steps (default: the
    run's); ``plot``: a PNG of the history and the forecast to write. Returns ``(ForecastResult, plot or None)``.
    """
    task, model = load_trained(path, checkpoint)
    if not task.supports("predict") or not hasattr(task, "plot_forecast"):
        raise InputError(f"{path} is a run of task {task.name}; forecasting needs a run of task forecast")
    result = task.predict(model, data, horizon=horizon)
    return result, (task.plot_forecast(result, plot) if plot is not None else None)
