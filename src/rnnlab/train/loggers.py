"""Where training reports go: the run's ``metrics.jsonl``, TensorBoard (optional), and a progress bar."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from rnnlab.errors import InputError
from rnnlab.train.rundir import RunDir

__all__ = ["MetricsLogger", "ProgressBar", "tensorboard_available"]


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` (and so the ``tensorboard`` package) can be imported."""
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


class MetricsLogger:
    """Writes every record to ``metrics.jsonl``, and its numbers to TensorBoard when asked.

    A record is ``{"step": int, "split": "train"|"valid", <name>: number, ...}``.
    """

    def __init__(self, run: RunDir | None, tensorboard: bool = False) -> None:
        self.run = run
        self.writer = None
        if tensorboard:
            if not tensorboard_available():
                raise InputError("--tensorboard needs the tensorboard package: pip install tensorboard")
            if run is not None:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(log_dir=str(Path(run.path) / "tensorboard"))

    def log(self, record: dict[str, Any]) -> None:
        if self.run is not None:
            self.run.log(record)
        if self.writer is not None:
            split, step = record.get("split", "train"), record["step"]
            for key, value in record.items():
                if key not in ("step", "split") and isinstance(value, (int, float)):
                    self.writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class ProgressBar:
    """A ``rich`` progress bar with the step count, training loss, last validation metric and ETA.

    Disabled (every method a no-op) when ``enabled`` is false or stderr is not a terminal.
    """

    def __init__(self, total_steps: int, start_step: int, monitor: str, enabled: bool = True) -> None:
        console = Console(file=sys.stderr)
        self.enabled = enabled and console.is_terminal
        self.monitor = monitor
        self._progress: Progress | None = None
        self._task_id = None
        self._loss = "-"
        self._metric = "-"
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]train[/bold]"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TextColumn("valid {task.fields[monitor]} {task.fields[metric]}"),
                TimeRemainingColumn(),
                console=console,
                transient=False,
            )
            self._task_id = self._progress.add_task(
                "train", total=total_steps, completed=start_step, loss="-", monitor=monitor, metric="-"
            )

    def __enter__(self) -> ProgressBar:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, step: int, loss: float | None = None, metric: float | None = None) -> None:
        if self._progress is None:
            return
        if loss is not None:
            self._loss = f"{loss:.4g}"
        if metric is not None:
            self._metric = f"{metric:.4g}"
        self._progress.update(self._task_id, completed=step, loss=self._loss, metric=self._metric)
