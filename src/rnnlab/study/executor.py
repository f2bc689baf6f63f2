"""Executors run the jobs of a study. The interface is what a cluster engine implements later; the local
executor runs jobs in worker processes on this machine.

A job trains one run into its own run directory. A run directory that holds a checkpoint from a killed
attempt is resumed, so nothing is lost when a study is killed half-way.
"""

from __future__ import annotations

import abc
import os
import shutil
import signal
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunJob:
    """One run of a study: everything a worker needs, picklable."""

    run_id: str  # unique within the study, e.g. "lstm-s0"
    task: str  # registered task name
    task_options: dict[str, Any]  # the task's options
    overrides: dict[str, Any]  # flat training settings: cell, variant, hidden_size, seed, steps, ...
    run_dir: str  # where the run writes config.json, metrics.jsonl, results.json, checkpoints/
    threads: int = 1  # torch threads of the worker
    extra: dict[str, Any] = field(default_factory=dict)  # reported back with the results


#: called as each job ends: (job, results or None, error message or None)
OnDone = Callable[[RunJob, "dict[str, Any] | None", "str | None"], None]


class Executor(abc.ABC):
    """Runs jobs and reports each one as it ends."""

    @abc.abstractmethod
    def run(self, jobs: Iterable[RunJob], on_done: OnDone) -> None:
        """Run every job; call ``on_done`` in the calling process as each ends (in any order)."""


def execute_job(job: RunJob) -> dict[str, Any]:
    """Train one run (resuming a killed attempt) and return its results plus the worker's peak memory."""
    import resource

    import torch

    from rnnlab.train.run import resume_run, start_run

    torch.set_num_threads(job.threads)
    run_dir = Path(job.run_dir)
    if (run_dir / "results.json").is_file():
        from rnnlab.train.rundir import RunDir

        results = RunDir.open(run_dir).read_results()
    elif (run_dir / "checkpoints" / "last.pt").is_file():
        _, results = resume_run(run_dir, job.task, job.task_options, {})
    else:
        if run_dir.exists():  # killed before its first checkpoint: nothing to keep
            shutil.rmtree(run_dir)
        _, results = start_run(job.task, job.task_options, job.overrides, run_dir)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {**results, "peak_rss_mb": round(peak_kib / 1024, 1), **job.extra}


def _die_with_parent() -> None:
    """Worker initializer: on Linux, ask the kernel to end this worker when the study process dies."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LocalExecutor(Executor):
    """Runs jobs in ``workers`` fresh processes (one per job, so each run's peak memory is its own)."""

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers

    def run(self, jobs: Iterable[RunJob], on_done: OnDone) -> None:
        jobs = list(jobs)
        if not jobs:
            return
        ctx = get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_die_with_parent,
                                 max_tasks_per_child=1) as pool:
            pending = {pool.submit(execute_job, job): job for job in jobs}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    try:
                        results = future.result()
                    except Exception as exc:  # a failed run is reported, the study goes on
                        on_done(job, None, f"{type(exc).__name__}: {exc}")
                    else:
                        on_done(job, results, None)


class InProcessExecutor(Executor):
    """Runs jobs one after another in this process (tests, debugging)."""

    def run(self, jobs: Iterable[RunJob], on_done: OnDone) -> None:
        for job in jobs:
            try:
                results = execute_job(job)
            except Exception as exc:
                on_done(job, None, f"{type(exc).__name__}: {exc}")
            else:
                on_done(job, results, None)
