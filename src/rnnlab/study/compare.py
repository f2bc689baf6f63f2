"""``rnnlab compare``: train every cell x seed on one task under one budget, then diagnose and report.

Layout of a study directory::

    OUT/
      study.sqlite          finished runs (the results store); a rerun skips them
      runs/<cell>-s<seed>/  one run directory per run (config.json, metrics.jsonl, results.json, checkpoints/)
      diagnostics.json      gradient flow and gate statistics per cell, at initialisation and trained
      results.csv, results.json, report.html
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rnnlab.errors import InputError
from rnnlab.study.cellspec import CellSpec
from rnnlab.study.executor import Executor, LocalExecutor, RunJob
from rnnlab.study.store import ResultsStore
from rnnlab.tasks import get_task
from rnnlab.train.config import RunConfig, build_config
from rnnlab.train.rundir import RunDir, write_json_atomic

#: the zero-option study (`rnnlab compare`): long enough dependencies that a plain RNN fails, short enough
#: that LSTM and GRU solve them in about three minutes on two cores
DEFAULT_STUDY = {"task": "adding", "task_options": {"seq_len": 100}, "budget": "2000"}


@dataclass
class Budget:
    """The training budget of every run: optimizer steps, or wall-clock seconds (then steps is a cap)."""

    steps: int | None = None  # None: the task's default number of steps
    seconds: float | None = None  # stop each run after this much training time

    @classmethod
    def parse(cls, text: str | None) -> Budget:
        """``"2000"`` (steps) or ``"90s"`` (seconds); ``None`` keeps the task's default steps."""
        if text is None:
            return cls()
        raw = text.strip().lower()
        try:
            if raw.endswith("s"):
                seconds = float(raw[:-1])
                if not (seconds > 0 and math.isfinite(seconds)):
                    raise ValueError
                return cls(seconds=seconds)
            steps = int(raw)
            if steps <= 0:
                raise ValueError
            return cls(steps=steps)
        except ValueError:
            raise InputError(f"--budget expects a positive number of steps (2000) or seconds (90s), got {text!r}") \
                from None

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.steps is not None:
            out["steps"] = self.steps
        if self.seconds is not None:
            out["max_seconds"] = self.seconds
        return out

    def describe(self) -> str:
        if self.seconds is not None:
            return f"{self.seconds:g} s per run"
        return f"{self.steps} steps per run" if self.steps is not None else "the task's default budget"


@dataclass
class StudyConfig:
    """What ``rnnlab compare`` was asked to do."""

    task: str  # registered task name
    task_options: dict[str, Any]  # the task's options (validated by the task)
    cells: list[CellSpec]  # the contestants
    seeds: int = 2  # runs per cell, seeds 0 .. seeds-1
    budget: Budget | None = None  # training budget of every run
    match_params: int | None = None  # choose each cell's hidden size to get about this many parameters
    hidden_size: int | None = None  # hidden size of every cell (without match_params); None: task default
    workers: int = 1  # runs trained at once
    out: Path = Path("study")  # the study directory
    diagnose: bool = True  # gradient flow and gate statistics per cell

    def validate(self) -> None:
        get_task(self.task).resolve_options(self.task_options)
        if not self.cells:
            raise InputError("give at least one cell, e.g. --cells rnn,lstm,gru")
        if not isinstance(self.seeds, int) or self.seeds < 1:
            raise InputError(f"--seeds must be at least 1, got {self.seeds}")
        if not isinstance(self.workers, int) or self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        if self.match_params is not None and self.match_params < 1:
            raise InputError(f"--match-params must be positive, got {self.match_params}")
        if self.match_params is not None and self.hidden_size is not None:
            raise InputError("give either --match-params or --hidden, not both")

    def signature(self) -> dict[str, Any]:
        """What makes results comparable: a study directory holds runs of one signature only."""
        budget = self.budget or Budget()
        return {"task": self.task, "task_options": get_task(self.task).resolve_options(self.task_options),
                "budget_steps": budget.steps, "budget_seconds": budget.seconds, "match_params": self.match_params,
                "hidden_size": self.hidden_size}


def count_params(task: str, task_options: dict[str, Any], overrides: dict[str, Any]) -> int:
    """Parameters of the model a run with these settings would train (built, not trained)."""
    from rnnlab.tasks.model import build_model, count_parameters

    config = build_config(task, task_options, overrides)
    m = config.model
    task_obj = get_task(task)(**config.task_options)
    model = build_model(task_obj, m.cell, m.hidden_size, m.num_layers, variant=m.variant, dropout=m.dropout,
                        bidirectional=m.bidirectional, **m.layer_options)
    return count_parameters(model)


def hidden_for_params(task: str, task_options: dict[str, Any], spec: CellSpec, target: int) -> int:
    """The hidden size whose model has the parameter count closest to ``target`` (Chung et al.'s matching)."""
    def params(h: int) -> int:
        return count_params(task, task_options, {"cell": spec.cell, "variant": spec.variant, "hidden_size": h})

    lo, hi = 1, 2
    while params(hi) < target and hi < 1 << 14:
        lo, hi = hi, hi * 2
    while hi - lo > 1:  # parameter count grows with h: bisect to params(lo) < target <= params(hi)
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if params(mid) < target else (lo, mid)
    return min((lo, hi), key=lambda h: abs(params(h) - target))


def plan_jobs(study: StudyConfig) -> list[RunJob]:
    """One job per cell and seed, validated (every run's config is built before anything trains)."""
    budget = study.budget or Budget()
    threads = max(1, (os.cpu_count() or 1) // study.workers)
    jobs = []
    for spec in study.cells:
        hidden = (hidden_for_params(study.task, study.task_options, spec, study.match_params)
                  if study.match_params is not None else study.hidden_size)
        for seed in range(study.seeds):
            overrides = {"cell": spec.cell, "variant": spec.variant, "seed": seed, **budget.overrides()}
            if hidden is not None:
                overrides["hidden_size"] = hidden
            build_config(study.task, study.task_options, overrides)  # fail before training on a bad option
            run_id = f"{spec.slug}-s{seed}"
            jobs.append(RunJob(run_id, study.task, dict(study.task_options), overrides,
                               str(study.out / "runs" / run_id), threads,
                               extra={"label": spec.label, "run_dir": str(study.out / "runs" / run_id)}))
    return jobs


class StudyProgress:
    """What a study reports while it works; the CLI draws a progress bar from it. The default is silent."""

    def start(self, total: int) -> None:
        """``total`` runs are about to train."""

    def run_done(self, message: str) -> None:
        """One run ended (finished or failed)."""

    def note(self, message: str) -> None:
        """Anything else worth a line."""


def run_study(study: StudyConfig, executor: Executor | None = None,
              progress: StudyProgress | None = None) -> dict[str, Any]:
    """Run the study (skipping finished runs), diagnose, write the report; returns the summary dict."""
    study.validate()
    progress = progress or StudyProgress()
    say = progress.note
    jobs = plan_jobs(study)
    with ResultsStore(study.out, study.signature()) as store:
        finished = store.finished()
        todo = []
        for job in jobs:
            if job.run_id in finished:
                continue
            results_file = Path(job.run_dir) / "results.json"
            if results_file.is_file():  # finished while the study process was being killed: keep it
                store.record(job.run_id, {**RunDir.open(job.run_dir).read_results(), **job.extra})
            else:
                todo.append(job)
        skipped = len(jobs) - len(todo)
        if skipped:
            say(f"{skipped} of {len(jobs)} runs already finished in {study.out}; running the other {len(todo)}")
        failures: list[str] = []
        progress.start(len(todo))

        def on_done(job: RunJob, results: dict[str, Any] | None, error: str | None) -> None:
            if results is None:
                failures.append(f"{job.run_id}: {error}")
                progress.run_done(f"run {job.run_id} failed: {error}")
                return
            store.record(job.run_id, results)
            monitor = results["monitor"]
            progress.run_done(f"finished {job.run_id}: test {monitor} "
                              f"{results['metrics'].get('test_' + monitor):.4g} in {results['train_seconds']:.0f} s")

        (executor or LocalExecutor(study.workers)).run(todo, on_done)
        all_results = store.results()
    wanted = {job.run_id for job in jobs}
    runs = {run_id: r for run_id, r in all_results.items() if run_id in wanted}
    diagnostics = diagnose_study(study, jobs, say) if study.diagnose else {}
    from rnnlab.study.report import write_report

    summary = write_report(study, runs, diagnostics)
    summary["failures"] = failures
    summary["diagnostics"] = diagnostics
    return summary


def diagnose_initial(study: StudyConfig) -> dict[str, Any]:
    """Gradient flow and gates of each cell's model at its seeded initialisation (no training)."""
    from rnnlab.study.diagnostics import diagnose

    return {job.extra["label"]: {"init": diagnose(build_config(study.task, study.task_options, job.overrides))}
            for job in plan_jobs(study) if job.overrides["seed"] == 0}


def diagnose_study(study: StudyConfig, jobs: list[RunJob], say: Callable[[str], None]) -> dict[str, Any]:
    """Gradient flow and gates per cell at initialisation and after training (seed 0), cached on disk."""
    from rnnlab.study.diagnostics import diagnose

    path = study.out / "diagnostics.json"
    cached = json.loads(path.read_text()) if path.is_file() else {}
    out = {}
    for job in jobs:
        if job.overrides["seed"] != 0:
            continue
        label = job.extra["label"]
        if label in cached:
            out[label] = cached[label]
            continue
        run = RunDir(job.run_dir)
        if not run.best_checkpoint.is_file():
            continue
        say(f"diagnosing {label}")
        config = RunConfig.from_dict(run.read_config())
        out[label] = {"init": diagnose(config), "trained": diagnose(config, run.best_checkpoint)}
        write_json_atomic(path, {**cached, **out})
    return out
