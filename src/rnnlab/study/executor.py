"""Executors run the jobs of a study: the local one in worker processes on this machine (the default), the Ray
one (:mod:`rnnlab.study.ray_executor`) as Ray tasks on a local instance or a cluster. Both implement one
interface, :class:`Executor`: :meth:`~Executor.submit` jobs at any time, :meth:`~Executor.wait` for the next
ones to end. The study calls both from its one process; results come back to it, and only it writes the
results store and the tuning state.

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
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
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
    prune: dict[str, Any] | None = None  # a tuning trial's pruner and its reference trials (study.tuning)


#: called as each job ends: (job, results or None, error message or None)
OnDone = Callable[[RunJob, "dict[str, Any] | None", "str | None"], None]
#: what :meth:`Executor.wait` returns for each job that ended
Outcome = tuple[RunJob, "dict[str, Any] | None", "str | None"]


class Executor(abc.ABC):
    """Runs jobs in parallel and reports each one as it ends.

    Use as a context manager (or call :meth:`close`): ``submit`` jobs whenever there are new ones, ``wait``
    for the next to end. A job that raises ends with its error message; the others go on.
    """

    @abc.abstractmethod
    def submit(self, job: RunJob) -> None:
        """Start ``job`` (or queue it until a worker is free)."""

    @abc.abstractmethod
    def wait(self) -> list[Outcome]:
        """Block until at least one submitted job has ended; its ``(job, results, None)`` or
        ``(job, None, error)``. An empty list when nothing is running."""

    @property
    @abc.abstractmethod
    def pending(self) -> int:
        """Jobs submitted and not yet returned by :meth:`wait`."""

    def close(self) -> None:  # noqa: B027  (an executor without workers has nothing to stop)
        """Stop the workers (running jobs are abandoned; their run directories resume next time)."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, jobs: Iterable[RunJob], on_done: OnDone) -> None:
        """Run every job; call ``on_done`` in the calling process as each ends (in any order)."""
        for job in jobs:
            self.submit(job)
        while self.pending:
            for job, results, error in self.wait():
                on_done(job, results, error)


def describe_error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def execute_job(job: RunJob) -> dict[str, Any]:
    """Train one run (resuming a killed attempt) and return its results plus the worker's peak memory."""
    import resource

    import torch

    from rnnlab.train.run import resume_run, start_run

    torch.set_num_threads(job.threads)
    run_dir = Path(job.run_dir)
    hook = None
    if job.prune is not None:
        from rnnlab.study.tuning import PruningHook

        hook = PruningHook(job.prune)
    if (run_dir / "results.json").is_file():
        from rnnlab.train.rundir import RunDir

        results = RunDir.open(run_dir).read_results()
    elif (run_dir / "checkpoints" / "last.pt").is_file():
        _, results = resume_run(run_dir, job.task, job.task_options, {}, on_validate=hook)
    else:
        if run_dir.exists():  # killed before its first checkpoint: nothing to keep
            shutil.rmtree(run_dir)
        _, results = start_run(job.task, job.task_options, job.overrides, run_dir, on_validate=hook)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {**results, "peak_rss_mb": round(peak_kib / 1024, 1), "valid_curve": validation_curve(run_dir, results),
            **job.extra}


def validation_curve(run_dir: str | Path, results: dict[str, Any]) -> list[list[float]]:
    """``[[step, value of the monitored metric], ...]`` of a run's validations (from its metrics.jsonl), carried
    in the results so that the study needs no access to the worker's files to tune or plot."""
    from rnnlab.train.rundir import RunDir

    monitor = results["monitor"]
    return [[int(r["step"]), r[monitor]] for r in RunDir(run_dir).read_metrics()
            if r.get("split") == "valid" and monitor in r]


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
        self._pool: ProcessPoolExecutor | None = None
        self._futures: dict[Future, RunJob] = {}

    def submit(self, job: RunJob) -> None:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=get_context("spawn"),
                                             initializer=_die_with_parent, max_tasks_per_child=1)
        self._futures[self._pool.submit(execute_job, job)] = job

    def wait(self) -> list[Outcome]:
        if not self._futures:
            return []
        done, _ = wait(self._futures, return_when=FIRST_COMPLETED)
        out: list[Outcome] = []
        for future in done:
            job = self._futures.pop(future)
            try:
                out.append((job, future.result(), None))
            except Exception as exc:  # a failed run is reported, the study goes on
                out.append((job, None, describe_error(exc)))
        return out

    @property
    def pending(self) -> int:
        return len(self._futures)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=not self._futures, cancel_futures=True)  # interrupted: do not wait
            self._pool = None


class InProcessExecutor(Executor):
    """Runs jobs one after another in this process, in the order submitted (tests, debugging)."""

    def __init__(self) -> None:
        self._queue: list[RunJob] = []

    def submit(self, job: RunJob) -> None:
        self._queue.append(job)

    def wait(self) -> list[Outcome]:
        if not self._queue:
            return []
        job = self._queue.pop(0)
        try:
            return [(job, execute_job(job), None)]
        except Exception as exc:
            return [(job, None, describe_error(exc))]

    @property
    def pending(self) -> int:
        return len(self._queue)
