"""Starting, resuming and re-evaluating runs: what ``rnnlab train`` and ``rnnlab eval`` call."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rnnlab.errors import InputError
from rnnlab.tasks import get_task
from rnnlab.train.config import RunConfig, build_config
from rnnlab.train.rundir import RunDir, default_run_path
from rnnlab.train.trainer import Trainer

__all__ = ["evaluate_run", "resume_run", "start_run", "summarize"]


def start_run(
    task: str,
    task_options: Mapping[str, Any],
    overrides: Mapping[str, Any],
    out: str | os.PathLike | None = None,
    *,
    progress: bool = False,
    on_validate: Callable[[int, dict[str, float]], bool] | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Train a new run and return its directory and results (``on_validate``: see :class:`Trainer`).

    Everything is validated (config, task options, model) before the run directory is created, so a bad
    command leaves nothing behind. ``out`` defaults to :func:`default_run_path`.
    """
    config = build_config(task, task_options, overrides)
    trainer = Trainer(config, None, progress=progress, on_validate=on_validate)  # fails early on a bad option
    m = config.model
    path = Path(out) if out is not None else default_run_path(task, m.cell, m.variant, config.loop.seed)
    run = RunDir.create(path)
    run.write_config(config.to_dict())
    trainer.task.save_artifacts(run.path)
    trainer.run = run
    return run, trainer.fit()


def resume_run(
    out: str | os.PathLike,
    task: str,
    task_options: Mapping[str, Any],
    overrides: Mapping[str, Any],
    *,
    progress: bool = False,
    on_validate: Callable[[int, dict[str, float]], bool] | None = None,
) -> tuple[RunDir, dict[str, Any]]:
    """Continue the run in ``out`` from its last checkpoint, to the end of its budget.

    The run's ``config.json`` is authoritative; options given again must agree with it.

    Raises:
        InputError: ``out`` is not a run of ``task``, or an option differs from the run's config.
    """
    run = RunDir.open(out)
    config = RunConfig.from_dict(run.read_config())
    if config.task != task:
        raise InputError(f"{run.path} is a run of task {config.task}, not {task}")
    _check_agrees(config, task_options, overrides)
    trainer = Trainer(config, run, progress=progress, on_validate=on_validate)
    return run, trainer.fit(resume=True)


def _check_agrees(config: RunConfig, task_options: Mapping[str, Any], overrides: Mapping[str, Any]) -> None:
    task_cls = get_task(config.task)
    given_options = task_cls.resolve_options(task_options)
    differences = [
        f"{task_cls.option(k).flag} {given_options[k]!r} (run: {config.task_options.get(k)!r})"
        for k in task_options
        if given_options[k] != config.task_options.get(k)
    ]
    flat = config.flat()
    differences += [
        f"{k} {v!r} (run: {flat.get(k)!r})" for k, v in overrides.items() if v is not None and flat.get(k) != v
    ]
    if differences:
        raise InputError(f"--resume: options differ from the run's config.json: {'; '.join(differences)}")


def evaluate_run(
    path: str | os.PathLike, split: str = "test", checkpoint: str = "best"
) -> dict[str, float]:
    """The metrics of a saved run's ``checkpoint`` (``best`` or ``last``) on ``split``, as ``<split>_<name>``.

    Writes nothing into the run directory.
    """
    if checkpoint not in ("best", "last"):
        raise InputError(f"expected checkpoint 'best' or 'last', got {checkpoint!r}")
    if split not in ("train", "valid", "test"):
        raise InputError(f"expected split 'train', 'valid' or 'test', got {split!r}")
    run = RunDir.open(path)
    config = RunConfig.from_dict(run.read_config())
    trainer = Trainer(config, None)
    trainer.load_model(run.best_checkpoint if checkpoint == "best" else run.last_checkpoint)
    return {f"{split}_{k}": v for k, v in trainer.evaluate(split).items()}


def summarize(results: Mapping[str, Any]) -> str:
    """A few lines for people: what ran, each test metric beside the baseline's, the time it took."""
    variant = f" ({results['variant']})" if results.get("variant") else ""
    lines = [
        f"{results['task']} {results['cell']}{variant}: {results['params']:,} parameters, "
        f"{results['steps']} steps in {results['train_seconds']:.1f} s"
        + (" (stopped early)" if results.get("stopped_early") else "")
        + (" (diverged)" if results.get("diverged") else "")
    ]
    baseline = results.get("baseline", {})
    for name, value in results["metrics"].items():
        base = baseline.get(name)
        lines.append(f"  {name:<20} {value:.6g}" + (f"   baseline {base:.6g}" if base is not None else ""))
    return "\n".join(lines)
