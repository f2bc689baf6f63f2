"""The Ray executor: a study's jobs as Ray tasks, on a local Ray instance or on a running cluster.

``rnnlab compare ... --executor ray`` starts a local instance with ``--workers`` CPUs; ``--address auto``
(or ``HOST:PORT``) joins a running cluster instead, where every job asks Ray for one CPU. Each job runs in a
fresh worker process (``max_calls=1``: its peak memory is its own) with one torch thread.

Storage: results come back through Ray to the study process, which alone writes the results store and the
tuning state (``study.sqlite``). The run directories (checkpoints, ``metrics.jsonl``) are written by the
workers at the study's path, so on a cluster that path must be on storage that every node and the study
process see (NFS or similar): the report reads learning curves from it, and a resumed study continues runs
from their checkpoints there. On one machine nothing needs setting up.
"""

from __future__ import annotations

import socket
from typing import Any

from rnnlab.errors import InputError
from rnnlab.study.executor import Executor, Outcome, RunJob, describe_error, execute_job

__all__ = ["RayExecutor", "ray_available"]


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _check_reachable(address: str, timeout_seconds: float = 3.0) -> None:
    """Fail fast on a ``HOST:PORT`` nobody answers on (Ray itself would retry for a long while)."""
    host, sep, port = address.rpartition(":")
    if address.startswith("ray://"):
        host, sep, port = address[len("ray://"):].rpartition(":")
    if not sep or not port.isdigit():
        raise InputError(f"--address expects auto or HOST:PORT of a Ray cluster, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_seconds):
            pass
    except OSError as exc:
        raise InputError(f"cannot reach a Ray cluster at {address}: {exc.strerror or exc}") from None


class RayExecutor(Executor):
    """Runs jobs as Ray tasks, at most ``workers`` at once.

    Args:
        workers: jobs running at once (and the CPUs of a local instance).
        address: ``None`` starts a local Ray instance for this study; ``"auto"`` or ``HOST:PORT`` joins a
            running cluster.

    Raises:
        InputError: Ray is not installed, or the cluster cannot be reached (checked here, before anything runs).
    """

    def __init__(self, workers: int = 1, address: str | None = None) -> None:
        if not ray_available():
            raise InputError("--executor ray needs Ray: pip install 'rnnlab[ray]' (or pip install ray)")
        import ray

        if address not in (None, "auto"):
            _check_reachable(address)
        self.workers = workers
        self._started_here = not ray.is_initialized()
        try:
            if self._started_here:
                options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                           "configure_logging": False}
                if address is None:
                    ray.init(num_cpus=workers, **options)
                else:
                    ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise InputError(f"cannot start or join Ray (address {address or 'local'}): "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        self._ray = ray
        self._remote = ray.remote(num_cpus=1, max_calls=1, max_retries=0)(_ray_job)
        self._queue: list[RunJob] = []
        self._running: dict[Any, RunJob] = {}

    def submit(self, job: RunJob) -> None:
        self._queue.append(job)
        self._fill()

    def _fill(self) -> None:
        while self._queue and len(self._running) < self.workers:
            job = self._queue.pop(0)
            self._running[self._remote.remote(job)] = job

    def wait(self) -> list[Outcome]:
        if not self._running:
            return []
        ready, _ = self._ray.wait(list(self._running), num_returns=1)
        out: list[Outcome] = []
        for ref in ready:
            job = self._running.pop(ref)
            try:
                out.append((job, self._ray.get(ref), None))
            except Exception as exc:  # a RayTaskError wraps the job's own exception
                cause = getattr(exc, "cause", None)
                out.append((job, None, describe_error(cause if isinstance(cause, BaseException) else exc)))
        self._fill()
        return out

    @property
    def pending(self) -> int:
        return len(self._queue) + len(self._running)

    def close(self) -> None:
        for ref in self._running:
            self._ray.cancel(ref, force=True)
        self._running.clear()
        self._queue.clear()
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def _ray_job(job: RunJob) -> dict[str, Any]:
    """The body of a Ray task: one thread, then the same job function as the local executor."""
    import os

    os.environ["OMP_NUM_THREADS"] = "1"
    return execute_job(job)
