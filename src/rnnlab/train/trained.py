"""Using a trained run: its task and its model with the weights of a checkpoint, for ``generate`` and
``forecast``."""

from __future__ import annotations

import os

from torch import nn

from rnnlab.errors import InputError
from rnnlab.tasks import Task, get_task
from rnnlab.train.config import RunConfig
from rnnlab.train.rundir import RunDir
from rnnlab.train.trainer import Trainer

__all__ = ["load_trained"]


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
