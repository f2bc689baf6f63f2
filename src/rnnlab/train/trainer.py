"""The one Trainer: any task, any cell, one loop.

A step: take batch ``s`` of the task's training stream, run the model (carrying the previous batch's state,
detached, when the batch continues it: truncated BPTT), take the task's loss, backpropagate, clip the
gradient norm, step the optimizer and the schedule. Every ``eval_every`` steps (and at the last one): evaluate
on the validation split, keep the best checkpoint, save the latest, stop early if the validation metric has
not improved for ``patience`` evaluations. At the end: evaluate the best checkpoint on the test split and
write ``results.json`` beside the task's baseline.

Determinism: a fixed seed gives identical numbers on rerun, and resuming from a checkpoint gives the numbers of
an uninterrupted run, because the data stream is a pure function of ``(seed, step)`` and the checkpoint holds
everything else that evolves (weights, optimizer and schedule, RNG states, carried state, counters).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

import rnnlab
from rnnlab.errors import InputError
from rnnlab.layers import default_variant
from rnnlab.tasks import MetricAccumulator, Task, get_task, map_state
from rnnlab.tasks.model import build_model, count_parameters
from rnnlab.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from rnnlab.train.config import RunConfig
from rnnlab.train.loggers import MetricsLogger, ProgressBar
from rnnlab.train.optim import build_optimizer, build_scheduler, clip_gradients
from rnnlab.train.rundir import RunDir

__all__ = ["Trainer", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed torch's, numpy's and Python's global generators."""
    import random

    import numpy as np

    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


@contextlib.contextmanager
def torch_threads(n: int):
    """Run the block with ``torch.set_num_threads(n)`` (unchanged when ``n`` is 0), then restore."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _detach(state: Any) -> Any:
    return map_state(torch.Tensor.detach, state)


class Trainer:
    """Trains one model on one task as a :class:`RunConfig` says, writing into a :class:`RunDir`.

    Args:
        config: the run's configuration (validated here).
        run: the run directory to write ``metrics.jsonl``, checkpoints and ``results.json`` into; ``None``
            trains in memory only (tests, notebooks).
        progress: show a progress bar (only on a terminal).
        task: the task instance to train or use, built from ``config`` when ``None``; pass one whose
            :meth:`~rnnlab.tasks.Task.load_artifacts` restored a run's vocabulary to rebuild that run's model
            without its data.
        on_validate: called after every validation as ``on_validate(step, metrics)``; returning ``True``
            stops the run there (a tuning trial that its pruner gave up on): it finishes as at the end of its
            budget, with ``"pruned": true`` in its results. The decision is saved in the checkpoints, so a
            killed run resumes to the same end.

    Use :meth:`fit` to train (from scratch or, with ``resume=True``, from ``checkpoints/last.pt``) and get the
    results dict; :meth:`evaluate` scores the current model on a split.
    """

    def __init__(
        self, config: RunConfig, run: RunDir | None = None, *, progress: bool = False, task: Task | None = None,
        on_validate: Callable[[int, dict[str, float]], bool] | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.run = run
        self.progress = progress
        self.task = task if task is not None else get_task(config.task)(**config.task_options)
        if config.loop.train_fraction < 1.0:
            self.task.restrict_train(config.loop.train_fraction)
        self.on_validate = on_validate
        self.device = torch.device(config.loop.device)
        seed_everything(config.loop.seed)
        m = config.model
        self.model = build_model(
            self.task,
            m.cell,
            m.hidden_size,
            m.num_layers,
            variant=m.variant,
            dropout=m.dropout,
            bidirectional=m.bidirectional,
            **m.layer_options,
        ).to(self.device)
        self.total_steps = self._total_steps()
        groups = self.task.parameter_groups(self.model)
        if groups is not None:
            groups = [{**g, "lr": config.optim.lr * g["lr_scale"]} for g in groups]
        self.optimizer = build_optimizer(self.model.parameters() if groups is None else groups, config.optim)
        self.scheduler = build_scheduler(self.optimizer, config.optim, self.total_steps)
        # Everything below evolves during training and is saved in every checkpoint.
        self.step = 0  # optimizer steps done
        self.best: float | None = None  # best validation value of task.monitor so far
        self.best_step = 0  # the step of that value
        self.evals_since_best = 0  # evaluations without improvement (early stopping)
        self.last_eval_step = -1  # the step of the latest validation
        self.loss_window = [0.0, 0]  # sum and count of training losses since the last log line
        self.train_seconds = 0.0  # wall time spent in fit(), over all sessions
        self.train_cpu_seconds = 0.0  # this process's CPU time spent in fit(), over all sessions
        self._clock = (0.0, 0.0)  # (perf_counter, process_time) when the running session's clock last started
        self.carried_state: Any = None  # the layer's last state, detached (truncated BPTT)
        self.stopped_early = False
        self.diverged = False
        self.pruned = False  # on_validate asked to stop
        self._stop_requested = False
        self._best_in_memory: dict[str, torch.Tensor] | None = None  # best weights when there is no run dir
        self.pretrain_results: dict[str, Any] | None = None  # the results of the task's pretraining, if any
        self.pretrainer: Trainer | None = None  # the trainer of that pretraining (its model and task)

    # --------------------------------------------------------------------------------------------- budget
    def _total_steps(self) -> int:
        loop = self.config.loop
        if loop.epochs is not None:
            return max(1, math.ceil(loop.epochs * self.task.steps_per_epoch(loop.batch_size)))
        assert loop.steps is not None
        return loop.steps

    # ---------------------------------------------------------------------------------------- evaluation
    def evaluate(self, split: str) -> dict[str, float]:
        """The task's metrics of the current model on ``split`` (state carried across continuing batches)."""
        self.model.eval()
        acc = MetricAccumulator()
        state = None
        with torch.no_grad(), torch_threads(self.config.loop.threads):
            for batch in self.task.eval_batches(split, self.config.loop.eval_size):
                batch = batch.to(self.device)
                outputs, state = self.task.run_model(self.model, batch, None if batch.reset_state else state)
                acc.add(self.task.metric_sums(outputs, batch))
        return self.task.finalize_metrics(acc.means())

    # ------------------------------------------------------------------------------------------ training
    def _train_step(self, batch) -> float:
        self.model.train()
        state = None if batch.reset_state else self.carried_state
        outputs, state = self.task.run_model(self.model, batch, state)
        loss = self.task.loss(outputs, batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_gradients(self.model.parameters(), self.config.optim.clip_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.carried_state = _detach(state)
        return float(loss.detach())

    def fit(self, *, resume: bool = False, until: int | None = None) -> dict[str, Any] | None:
        """Train to the end of the budget (or early stop) and return the results dict.

        Args:
            resume: continue from the run's ``checkpoints/last.pt`` (from scratch if there is none yet).
            until: stop after this step as if interrupted, having saved ``last.pt``; returns ``None``.
                (For tests of resuming, and for training in slices.)
        """
        if resume:
            self._resume()
        logger = MetricsLogger(self.run, tensorboard=self.config.loop.tensorboard)
        loop = self.config.loop
        end = self.total_steps if until is None else min(until, self.total_steps)
        if self.step == 0 and self.pretrain_results is None and end > 0:
            self._pretrain()
        batches = self.task.train_batches(loop.batch_size, loop.seed, start_step=self.step)
        if self.step < end:
            first = next(batches)
            self._warm_up(first)
            batches = itertools.chain([first], batches)
        self._restart_clock()
        bar = ProgressBar(self.total_steps, self.step, self.task.monitor, enabled=self.progress)
        finished = False
        try:
            with bar, self._graceful_interrupt(), torch_threads(loop.threads):
                while self.step < end and not self._should_stop():
                    loss = self._train_step(next(batches).to(self.device))
                    self.step += 1
                    if not math.isfinite(loss):
                        self.diverged = True
                        logger.log({"step": self.step, "split": "train", "loss": loss, "diverged": True})
                        break
                    self.loss_window[0] += loss
                    self.loss_window[1] += 1
                    if self.step % loop.log_every == 0:
                        self._tick()
                        bar.update(self.step, loss=self._log_training(logger))
                    if self.step % loop.eval_every == 0 or self.step == self.total_steps:
                        bar.update(self.step, metric=self._validate(logger))
                    else:
                        bar.update(self.step)
                self._tick()
                finished = (self.step >= self.total_steps or self.stopped_early or self.diverged or self.pruned
                            or self._out_of_time())  # not a Ctrl-C: that one resumes later
                if self.last_eval_step != self.step:
                    if finished and not self.diverged:
                        self._validate(logger)  # the last step is always evaluated
                    elif self.run is not None:
                        self._save(self.run.last_checkpoint)
        finally:
            logger.close()
        if self._stop_requested:
            raise KeyboardInterrupt
        return self._finish() if finished else None

    def _pretrain(self) -> None:
        """Train the task's :meth:`~rnnlab.tasks.Task.pretraining_task` (if any) with this run's model and loop
        settings over its defaults, in memory, and copy its encoder, projection and layer weights into the model.
        Its time counts in ``train_seconds``; its results go into this run's results as ``pretrain``."""
        m = self.config.model
        task = self.task.pretraining_task(bidirectional=m.bidirectional, num_layers=m.num_layers)
        if task is None:
            return
        config = self.config.with_overrides(task.defaults)
        trainer = Trainer(config, None, progress=self.progress, task=task)
        results = trainer.fit()
        assert results is not None
        self.pretrainer = trainer
        for name in ("encoder", "projection", "layer"):
            getattr(self.model, name).load_state_dict(getattr(trainer.model, name).state_dict())
        self.train_seconds += trainer.train_seconds
        self.train_cpu_seconds += trainer.train_cpu_seconds
        self.pretrain_results = {k: results[k] for k in ("metrics", "baseline", "steps", "train_seconds")}

    def _warm_up(self, batch) -> None:
        """One forward pass in evaluation mode before the clock starts, so that one-off costs (compiling the
        fused engine's kernels on first use) do not count as training time. Changes no state, draws no
        random numbers."""
        self.model.eval()
        with torch.no_grad(), torch_threads(self.config.loop.threads):
            self.task.run_model(self.model, batch.to(self.device))

    def _should_stop(self) -> bool:
        """Early stop, divergence, Ctrl-C, or the time budget (wall-clock or CPU) spent."""
        return (self.stopped_early or self.diverged or self.pruned or self._stop_requested
                or self._out_of_time())

    def _log_training(self, logger: MetricsLogger) -> float:
        """Log the mean training loss since the last log line (and the lr); return that mean."""
        mean = self.loss_window[0] / self.loss_window[1]
        self.loss_window = [0.0, 0]
        lr = self.optimizer.param_groups[0]["lr"]
        logger.log({"step": self.step, "split": "train", "loss": mean, "lr": lr,
                    "seconds": round(self.train_seconds, 3)})
        return mean

    def _restart_clock(self) -> None:
        self._clock = (time.perf_counter(), time.process_time())

    def _tick(self) -> None:
        """Add the wall and CPU time since the clock last started to the totals, and restart it."""
        wall, cpu = self._clock
        self.train_seconds += time.perf_counter() - wall
        self.train_cpu_seconds += time.process_time() - cpu
        self._restart_clock()

    def _out_of_time(self) -> bool:
        """Whether the wall-clock budget ``max_seconds`` or the CPU budget ``max_cpu_seconds`` is spent (the totals
        of earlier sessions plus the running clock's time)."""
        loop = self.config.loop
        wall, cpu = self._clock
        return ((loop.max_seconds is not None
                 and self.train_seconds + (time.perf_counter() - wall) >= loop.max_seconds)
                or (loop.max_cpu_seconds is not None
                    and self.train_cpu_seconds + (time.process_time() - cpu) >= loop.max_cpu_seconds))

    def _validate(self, logger: MetricsLogger) -> float:
        """Evaluate on ``valid``, log, keep the best checkpoint, save the latest; the monitored value."""
        metrics = self.evaluate("valid")
        monitor = self.task.monitor
        if monitor not in metrics:
            raise RuntimeError(f"task {self.task.name} did not report its monitored metric {monitor!r}")
        value = metrics[monitor]
        improved = math.isfinite(value) and self.task.better(value, self.best)
        if improved:
            self.best, self.best_step, self.evals_since_best = value, self.step, 0
        else:
            self.evals_since_best += 1
        self.last_eval_step = self.step
        patience = self.config.loop.patience
        if patience is not None and self.evals_since_best >= patience:
            self.stopped_early = True
        logger.log({"step": self.step, "split": "valid", **metrics, "best": improved})
        if self.on_validate is not None and self.on_validate(self.step, metrics):
            self.pruned = True
        if self.run is not None:
            if improved:
                self._save(self.run.best_checkpoint, weights_only_payload=True)
            self._save(self.run.last_checkpoint)
        elif improved:
            self._best_in_memory = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        return value

    @contextlib.contextmanager
    def _graceful_interrupt(self):
        """The first Ctrl-C finishes the current step, saves ``last.pt`` and stops; a second one aborts."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop_requested:
                raise KeyboardInterrupt
            self._stop_requested = True

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    # --------------------------------------------------------------------------------------- checkpoints
    def _save(self, path, *, weights_only_payload: bool = False) -> None:
        if path is None:
            return
        payload: dict[str, Any] = {
            "config": self.config.to_dict(),
            "step": self.step,
            "model": self.model.state_dict(),
            "best": self.best,
        }
        if not weights_only_payload:
            payload.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.scheduler.state_dict(),
                rng=capture_rng(),
                best_step=self.best_step,
                evals_since_best=self.evals_since_best,
                last_eval_step=self.last_eval_step,
                loss_window=list(self.loss_window),
                train_seconds=self.train_seconds,
                train_cpu_seconds=self.train_cpu_seconds,
                carried_state=self.carried_state,
                stopped_early=self.stopped_early,
                diverged=self.diverged,
                pruned=self.pruned,
            )
        save_checkpoint(path, payload)

    def load_model(self, path) -> dict[str, Any]:
        """Load the model weights of the checkpoint at ``path`` (checked to belong to this run's config)."""
        payload = load_checkpoint(path)
        self._check_belongs(payload, path)
        try:
            self.model.load_state_dict(payload["model"])
        except (RuntimeError, KeyError, TypeError) as exc:
            raise InputError(f"checkpoint {path} does not fit the model: {str(exc).splitlines()[0]}") from None
        return payload

    def _check_belongs(self, payload: dict[str, Any], path) -> None:
        saved = payload.get("config")
        if not isinstance(saved, dict):
            raise InputError(f"checkpoint {path} holds no run config")
        mine = self.config.to_dict()
        for key in ("task", "task_options", "model"):
            if saved.get(key) != mine[key]:
                raise InputError(f"checkpoint {path} belongs to another run (its {key} differs from config.json)")

    def _resume(self) -> None:
        if self.run is None:
            raise InputError("resuming needs a run directory")
        if not self.run.last_checkpoint.exists():  # killed before the first checkpoint: start again
            self.run.rewind_metrics(0)
            return
        payload = self.load_model(self.run.last_checkpoint)
        try:
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self.step = int(payload["step"])
            self.best = payload["best"]
            self.best_step = int(payload["best_step"])
            self.evals_since_best = int(payload["evals_since_best"])
            self.last_eval_step = int(payload["last_eval_step"])
            self.loss_window = [float(payload["loss_window"][0]), int(payload["loss_window"][1])]
            self.train_seconds = float(payload["train_seconds"])
            self.train_cpu_seconds = float(payload.get("train_cpu_seconds", 0.0))  # absent before it was kept
            self.carried_state = payload["carried_state"]
            self.stopped_early = bool(payload["stopped_early"])
            self.diverged = bool(payload["diverged"])
            self.pruned = bool(payload.get("pruned", False))
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(f"checkpoint {self.run.last_checkpoint} is incomplete ({exc!r})") from None
        restore_rng(payload["rng"])
        self.run.rewind_metrics(self.step)

    # ------------------------------------------------------------------------------------------- results
    def _finish(self) -> dict[str, Any]:
        """Test the best checkpoint and assemble (and write) the results."""
        if self.run is not None and self.run.best_checkpoint.exists():
            self.load_model(self.run.best_checkpoint)
        elif self._best_in_memory is not None:
            self.model.load_state_dict(self._best_in_memory)
        test = self.evaluate("test")
        if self.run is not None:
            self.task.save_predictions(self.model, self.run.path)
        baseline = self.task.baseline()
        m = self.config.model
        results = {
            "task": self.task.name,
            "task_options": dict(self.task.settings),
            "cell": m.cell,
            "variant": m.variant or default_variant(m.cell),
            "params": count_parameters(self.model),
            "hidden_size": m.hidden_size,
            "num_layers": m.num_layers,
            "metrics": {f"test_{k}": v for k, v in test.items()},
            "baseline": {f"test_{k}": v for k, v in baseline.items()},
            "monitor": self.task.monitor,
            "best_valid": self.best,
            "best_step": self.best_step,
            "steps": self.step,
            "stopped_early": self.stopped_early,
            "diverged": self.diverged,
            "pruned": self.pruned,
            "seed": self.config.loop.seed,
            "train_seconds": round(self.train_seconds, 3),
            "train_cpu_seconds": round(self.train_cpu_seconds, 3),
            **({"pretrain": self.pretrain_results} if self.pretrain_results is not None else {}),
            "rnnlab_version": rnnlab.__version__,
            "torch_version": torch.__version__,
        }
        if self.run is not None:
            self.run.write_results(results)
            self.task.write_report(self.model, self.run.path)
        return results
