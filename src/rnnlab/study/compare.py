"""``rnnlab compare``: tune every cell equally, train the best configuration of each over seeds, test, report.

A *contestant* is one cell on one task. For each contestant the study

1. tunes: ``--tune N`` trials drawn from the task's search space with Optuna (:mod:`rnnlab.study.tuning`),
   each trained with ``--tune-budget`` and pruned on the validation metric; the best trial by validation
   metric wins (``--tune 0``: the task's defaults, no tuning);
2. trains the winning configuration with seeds ``0 .. K-1`` (``--seeds K``) under ``--budget`` and tests each
   on the test split (the only use of the test split);
3. with ``--data-fractions``, trains the same configuration and seeds on nested subsets of the training split.

Then the statistics (:mod:`rnnlab.study.stats`), the diagnostics and the report (:mod:`rnnlab.study.report`).
Jobs go to an executor (:mod:`rnnlab.study.executor`: local processes, or Ray) as soon as they can run; only
this process writes the study's files.

Layout of a study directory::

    OUT/
      study.sqlite          the results store (finished runs) and the Optuna studies (tuning state)
      runs/<task>/tune/<cell>/trial-NNN/   one run directory per tuning trial
      runs/<task>/<cell>-s<seed>/          the final runs (config.json, metrics.jsonl, results.json, checkpoints/)
      runs/<task>/<cell>-f<fraction>-s<seed>/   the data-size runs
      diagnostics.json      gradient flow and gate statistics per cell, at initialisation and trained
      results.csv, results.json, report.html

A killed study rerun with the same arguments continues where it stopped: finished runs and trials are kept,
interrupted ones continue from their checkpoints, and the outcome is that of an uninterrupted study.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnnlab.errors import InputError
from rnnlab.study.cellspec import CellSpec
from rnnlab.study.executor import Executor, LocalExecutor, RunJob
from rnnlab.study.stats import ALPHA, TESTS
from rnnlab.study.store import FILENAME, ResultsStore
from rnnlab.tasks import get_task
from rnnlab.tasks.search import Param, format_space
from rnnlab.train.config import RunConfig, build_config
from rnnlab.train.rundir import RunDir, write_json_atomic

#: the zero-option study (`rnnlab compare`): long enough dependencies that a plain RNN fails, short enough
#: that LSTM and GRU solve them; a small tune and three seeds fit in about three minutes on two cores
DEFAULT_STUDY = {"task": "adding", "task_options": {"seq_len": 100}, "budget": "1500", "tune": 4,
                 "tune_budget": "1000", "seeds": 3}
EXECUTORS = ("local", "ray")


@dataclass
class Budget:
    """The training budget of every run: optimizer steps, or wall-clock seconds, or CPU seconds of the run's
    process (with either time budget, the steps are a cap)."""

    steps: int | None = None  # None: the task's default number of steps
    seconds: float | None = None  # stop each run after this much training time (wall clock)
    cpu_seconds: float | None = None  # stop each run after this much CPU time: a budget that other jobs on the
    # machine do not shrink (they slow the wall clock, not the run's own count)

    @classmethod
    def parse(cls, text: str | None, flag: str = "--budget") -> Budget:
        """``"2000"`` (steps), ``"90s"`` (seconds) or ``"90cpu"`` (CPU seconds); ``None`` keeps the task's
        default steps."""
        if text is None:
            return cls()
        raw = text.strip().lower()
        try:
            for suffix, field in (("cpu", "cpu_seconds"), ("s", "seconds")):
                if raw.endswith(suffix):
                    value = float(raw[: -len(suffix)])
                    if not (value > 0 and math.isfinite(value)):
                        raise ValueError
                    return cls(**{field: value})
            steps = int(raw)
            if steps <= 0:
                raise ValueError
            return cls(steps=steps)
        except ValueError:
            raise InputError(f"{flag} expects a positive number of steps (2000), seconds (90s) or CPU seconds "
                             f"(90cpu), got {text!r}") from None

    def overrides(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.steps is not None:
            out["steps"] = self.steps
        if self.seconds is not None:
            out["max_seconds"] = self.seconds
        if self.cpu_seconds is not None:
            out["max_cpu_seconds"] = self.cpu_seconds
        return out

    def describe(self) -> str:
        if self.seconds is not None:
            return f"{self.seconds:g} s per run"
        if self.cpu_seconds is not None:
            return f"{self.cpu_seconds:g} CPU s per run"
        return f"{self.steps} steps per run" if self.steps is not None else "the task's default budget"


@dataclass
class TaskSpec:
    """One task of a study and its options."""

    name: str  # registered task name
    options: dict[str, Any] = field(default_factory=dict)  # the task's options (validated by the task)


def parse_tasks(text: str) -> list[TaskSpec]:
    """``"adding:seq-len=50,copy,music:data=jsb.json"`` -> one :class:`TaskSpec` each (options as strings)."""
    specs: list[TaskSpec] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise InputError(f"empty task in --tasks {text!r}; expected e.g. 'adding,copy,digits'")
        name, *pairs = item.split(":")
        task_cls = get_task(name)
        options: dict[str, Any] = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq:
                raise InputError(f"--tasks expects TASK:option=value, got {item!r}")
            options[task_cls.option(key.strip().replace("-", "_")).name] = value
        if any(s.name == name for s in specs):
            raise InputError(f"task {name!r} is given twice in --tasks")
        specs.append(TaskSpec(name, options))
    return specs


@dataclass
class StudyConfig:
    """What ``rnnlab compare`` was asked to do."""

    task: str = ""  # the task of a one-task study (or give tasks)
    task_options: dict[str, Any] = field(default_factory=dict)  # its options (validated by the task)
    cells: list[CellSpec] = field(default_factory=list)  # the contestants on every task
    seeds: int = 2  # final runs per cell, seeds 0 .. seeds-1
    budget: Budget | None = None  # training budget of every final run
    match_params: int | None = None  # choose each cell's hidden size to get about this many parameters
    hidden_size: int | None = None  # hidden size of every cell (without match_params); None: task default
    workers: int = 1  # runs trained at once
    out: Path = Path("study")  # the study directory
    diagnose: bool = True  # gradient flow and gate statistics per cell
    tasks: list[TaskSpec] = field(default_factory=list)  # the tasks of the study; default [TaskSpec(task, ...)]
    tune: int = 0  # tuning trials per contestant; 0: the task's defaults
    tune_budget: Budget | None = None  # budget of a tuning trial; None: the final runs' budget
    tune_batch: int = 2  # trials of a contestant proposed at once (see study.tuning)
    sampler: str = "tpe"  # "tpe" or "random"
    space: dict[str, Param] | None = None  # replaces/extends each task's search space
    prune: bool = True  # stop hopeless trials early (median pruner on the validation metric)
    data_fractions: tuple[float, ...] = (1.0,)  # shares of the training split (nested subsets)
    test: str = "welch"  # the pairwise test: welch or mannwhitney
    alpha: float = ALPHA  # significance level (after Holm's adjustment)
    executor: str = "local"  # local or ray
    address: str | None = None  # Ray: join this cluster ("auto" or HOST:PORT); None: a local instance

    def __post_init__(self) -> None:
        if not self.tasks and self.task:
            self.tasks = [TaskSpec(self.task, dict(self.task_options))]
        elif self.tasks and not self.task:
            self.task, self.task_options = self.tasks[0].name, dict(self.tasks[0].options)
        self.out = Path(self.out)

    def validate(self) -> None:
        if not self.tasks:
            raise InputError("give a task, e.g. rnnlab compare adding, or --tasks adding,copy")
        for t in self.tasks:
            get_task(t.name).resolve_options(t.options)
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
        if not isinstance(self.tune, int) or self.tune < 0:
            raise InputError(f"--tune must be 0 (no tuning) or a number of trials, got {self.tune}")
        if self.tune_batch < 1:
            raise InputError(f"--tune-batch must be at least 1, got {self.tune_batch}")
        if self.tune == 0:
            if self.space is not None:
                raise InputError("--space needs --tune N with N > 0 (with --tune 0 every cell trains with the task's "
                                 "defaults)")
            for t in self.tasks:
                if not get_task(t.name).defaults:
                    raise InputError(f"task {t.name} has no default hyperparameters: --tune 0 would compare untuned "
                                     "cells; give --tune N")
        bad = [f for f in self.data_fractions if not (isinstance(f, (int, float)) and 0.0 < f <= 1.0)]
        if bad or not self.data_fractions:
            raise InputError(f"--data-fractions expects shares in (0, 1], e.g. 0.1,0.3,1.0, got "
                             f"{','.join(map(str, self.data_fractions))}")
        if self.test not in TESTS:
            raise InputError(f"--test expects one of {', '.join(TESTS)}, got {self.test!r}")
        if not 0.0 < self.alpha < 1.0:
            raise InputError(f"--alpha must be in (0, 1), got {self.alpha}")
        if self.executor not in EXECUTORS:
            raise InputError(f"--executor expects one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.address is not None and self.executor != "ray":
            raise InputError("--address is for --executor ray")

    def space_for(self, task: str) -> dict[str, Param]:
        """The search space of ``task`` in this study: the task's own, the user's ``--space`` over it, without
        the hidden size when ``--hidden`` or ``--match-params`` fixes it."""
        space = dict(get_task(task).search_space())
        if self.space:
            space.update(self.space)
        if self.match_params is not None or self.hidden_size is not None:
            if self.space and "hidden_size" in self.space:
                raise InputError("--space hidden_size conflicts with --hidden/--match-params, which fix it")
            space.pop("hidden_size", None)
        return space

    def signature(self) -> dict[str, Any]:
        """What makes results comparable: a study directory holds runs of one signature only."""
        budget = self.budget or Budget()
        tune_budget = self.tune_budget or budget
        sig: dict[str, Any] = {
            "tasks": {t.name: get_task(t.name).resolve_options(t.options) for t in self.tasks},
            "budget_steps": budget.steps, "budget_seconds": budget.seconds,
            **({"budget_cpu_seconds": budget.cpu_seconds} if budget.cpu_seconds is not None else {}),
            "match_params": self.match_params,
            "hidden_size": self.hidden_size, "tune": self.tune,
        }
        if self.tune:
            sig.update(tune_budget_steps=tune_budget.steps, tune_budget_seconds=tune_budget.seconds,
                       **({"tune_budget_cpu_seconds": tune_budget.cpu_seconds}
                          if tune_budget.cpu_seconds is not None else {}),
                       tune_batch=self.tune_batch, sampler=self.sampler, prune=self.prune,
                       space={t.name: format_space(self.space_for(t.name)) for t in self.tasks})
        return sig


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


def _fraction_tag(fraction: float) -> str:
    return f"{fraction:g}"


class Contestant:
    """One cell on one task: its base settings, its tuner, and the jobs it still needs."""

    def __init__(self, study: StudyConfig, task: TaskSpec, spec: CellSpec, threads: int) -> None:
        self.study, self.task, self.spec, self.threads = study, task, spec, threads
        self.task_cls = get_task(task.name)
        self.key = f"{task.name}/{spec.label}"
        hidden = (hidden_for_params(task.name, task.options, spec, study.match_params)
                  if study.match_params is not None else study.hidden_size)
        self.base: dict[str, Any] = {"cell": spec.cell, "variant": spec.variant}
        if hidden is not None:
            self.base["hidden_size"] = hidden
        self.space = study.space_for(task.name) if study.tune else {}
        self.tuner = None
        self.failed: str | None = None  # why this contestant has no final runs

    # ---------------------------------------------------------------------------------------- validation
    def check(self) -> None:
        """Build every final run's config, and one at each end of every search-space range: a bad option or a
        parameter this cell cannot use fails here, before anything is written."""
        from rnnlab.study.tuning import apply_params

        budget = self.study.budget or Budget()
        build_config(self.task.name, self.task.options, {**self.base, **budget.overrides(), "seed": 0})
        for name, param in self.space.items():
            for value in param.bounds():
                options, overrides = apply_params(self.task.name, self.task.options, self.base, {name: value})
                try:
                    count_params(self.task.name, options, overrides)
                except (InputError, ValueError, TypeError) as exc:
                    raise InputError(f"search space {name}={value!r} cannot be used by {self.spec.label} on task "
                                     f"{self.task.name}: {str(exc).splitlines()[0]}") from None

    # -------------------------------------------------------------------------------------------- tuning
    def open_tuner(self, storage) -> None:
        from rnnlab.study.tuning import Tuner

        if self.study.tune:
            self.tuner = Tuner(storage, self.key, self.space, self.study.tune, self.study.tune_batch,
                               self.study.sampler, self.task_cls.higher_is_better)

    def trial_job(self, trial) -> RunJob:
        from rnnlab.study.tuning import apply_params

        budget = self.study.tune_budget or self.study.budget or Budget()
        base = {**self.base, **budget.overrides(), "seed": 10_000 + trial.number}
        options, overrides = apply_params(self.task.name, self.task.options, base, trial.params)
        run_id = f"{self.task.name}/tune/{self.spec.slug}/trial-{trial.number:03d}"
        prune = None
        if self.study.prune:
            steps = overrides.get("steps") or build_config(self.task.name, options, overrides).loop.steps
            prune = self.tuner.prune_spec(trial.number, steps, self.task_cls.monitor)
        return RunJob(run_id, self.task.name, options, overrides, str(self.study.out / "runs" / run_id),
                      self.threads, extra=self._extra(run_id, "trial", trial=trial.number), prune=prune)

    def best_params(self) -> dict[str, Any] | None:
        """The winning trial's parameters ({} without tuning); None while tuning or when no trial finished."""
        if self.tuner is None:
            return {}
        if not self.tuner.done():
            return None
        best = self.tuner.best()
        if best is None:
            self.failed = f"no tuning trial of {self.key} finished"
            return None
        return dict(best.params)

    # ----------------------------------------------------------------------------------------- final runs
    def final_jobs(self, params: dict[str, Any]) -> list[RunJob]:
        from rnnlab.study.tuning import apply_params

        budget = self.study.budget or Budget()
        jobs = []
        for fraction in sorted(set(self.study.data_fractions) | {1.0}, reverse=True):
            for seed in range(self.study.seeds):
                base = {**self.base, **budget.overrides(), "seed": seed}
                if fraction < 1.0:
                    base["train_fraction"] = fraction
                options, overrides = apply_params(self.task.name, self.task.options, base, params)
                tag = "" if fraction == 1.0 else f"-f{_fraction_tag(fraction)}"
                run_id = f"{self.task.name}/{self.spec.slug}{tag}-s{seed}"
                jobs.append(RunJob(run_id, self.task.name, options, overrides, str(self.study.out / "runs" / run_id),
                                   self.threads, extra=self._extra(run_id, "final", fraction=fraction,
                                                                   tuned=params)))
        return jobs

    def _extra(self, run_id: str, kind: str, **more: Any) -> dict[str, Any]:
        return {"label": self.spec.label, "task_key": self.task.name, "kind": kind, "run_id": run_id,
                "run_dir": str(self.study.out / "runs" / run_id), **more}


class StudyProgress:
    """What a study reports while it works; the CLI draws a progress bar from it. The default is silent."""

    def start(self, total: int) -> None:
        """About ``total`` runs (trials and final runs) are left to train."""

    def run_done(self, message: str) -> None:
        """One run ended (finished or failed)."""

    def note(self, message: str) -> None:
        """Anything else worth a line."""


def make_executor(study: StudyConfig) -> Executor:
    """The study's executor; raises :class:`InputError` (before anything is written) when Ray is missing or the
    cluster cannot be reached."""
    if study.executor == "ray":
        from rnnlab.study.ray_executor import RayExecutor

        return RayExecutor(study.workers, study.address)
    return LocalExecutor(study.workers)


def plan_contestants(study: StudyConfig) -> list[Contestant]:
    """Every contestant, checked (configs and search spaces) before anything trains or is written."""
    study.validate()
    threads = 1  # each worker one thread: small recurrent models are latency-bound, and workers share the cores
    contestants = [Contestant(study, task, spec, threads) for task in study.tasks for spec in study.cells]
    for c in contestants:
        c.check()
    if any(f < 1.0 for f in study.data_fractions):
        for task in study.tasks:  # a task that cannot shrink its training split says so now
            get_task(task.name)(**task.options).restrict_train(min(study.data_fractions))
    return contestants


def run_study(study: StudyConfig, executor: Executor | None = None,
              progress: StudyProgress | None = None) -> dict[str, Any]:
    """Run the study (continuing a killed one), diagnose, write the report; returns the summary dict."""
    contestants = plan_contestants(study)
    progress = progress or StudyProgress()
    say = progress.note
    created = not (study.out / FILENAME).exists()
    executor = executor or make_executor(study)
    failures: list[str] = []
    try:
        with executor, ResultsStore(study.out, study.signature()) as store:
            _schedule(study, contestants, executor, store, progress, failures)
            all_results = store.results()
            tuning = {c.key: c.tuner.summary() for c in contestants if c.tuner is not None}
            importance = {}
            for c in contestants:
                if c.tuner is not None:
                    values, why = c.tuner.importance()
                    importance[c.key] = values if values is not None else {"unavailable": why}
    except InputError:
        if created and (study.out / FILENAME).exists() and not (study.out / "runs").exists():
            (study.out / FILENAME).unlink()  # refused before anything ran: leave nothing to trip over
        raise
    failures += [c.failed for c in contestants if c.failed]
    diagnostics = diagnose_study(study, contestants, all_results, say) if study.diagnose else {}
    from rnnlab.study.report import write_report

    summary = write_report(study, all_results, diagnostics, tuning, importance)
    summary["failures"] = failures
    summary["diagnostics"] = diagnostics
    return summary


def _schedule(study: StudyConfig, contestants: list[Contestant], executor: Executor, store: ResultsStore,
              progress: StudyProgress, failures: list[str]) -> None:
    """Submit each contestant's jobs as soon as they can run; record each as it ends."""
    from rnnlab.study.tuning import storage_url

    storage = None
    if study.tune:
        optuna = __import__("optuna")
        storage = optuna.storages.RDBStorage(storage_url(store.path))
    for c in contestants:
        c.open_tuner(storage)
    finished = store.finished()
    submitted: set[str] = set()
    started, total_guess, resumed = False, 0, 0
    for c in contestants:
        tuned = len(c.tuner.trials()) - len(c.tuner.running()) if c.tuner else 0
        total_guess += (study.tune - tuned) + study.seeds * len(set(study.data_fractions) | {1.0})
        resumed += tuned
    done_runs = sum(1 for rid in finished if not rid.split("/")[1:2] == ["tune"])
    total_guess -= done_runs
    if resumed or done_runs:
        progress.note(f"{resumed} tuning trials and {done_runs} runs already finished in {study.out}; "
                      "continuing the study")
    progress.start(max(total_guess, 0))
    jobs_by_id: dict[str, Contestant] = {}
    while True:
        new: list[RunJob] = []
        for c in contestants:
            new += _next_jobs(c, finished, submitted, store)
        for job in new:
            executor.submit(job)
            submitted.add(job.run_id)
            jobs_by_id[job.run_id] = next(c for c in contestants if c.key == f"{job.extra['task_key']}/"
                                          f"{job.extra['label']}")
        started = started or bool(new)
        if not executor.pending:
            break
        for job, results, error in executor.wait():
            c = jobs_by_id[job.run_id]
            if job.extra["kind"] == "trial":
                if results is not None:  # recorded before told: a kill between the two reruns the trial's tell
                    store.record(job.run_id, results)
                state = c.tuner.tell(job.extra["trial"], results)
                if results is not None:
                    progress.run_done(f"{c.key} trial {job.extra['trial']}: {state.lower()}, best valid "
                                      f"{results['monitor']} {_fmt(results.get('best_valid'))} "
                                      f"in {results['train_seconds']:.0f} s")
                else:
                    failures.append(f"{job.run_id}: {error}")
                    progress.run_done(f"{c.key} trial {job.extra['trial']} failed: {error}")
                continue
            if results is None:
                failures.append(f"{job.run_id}: {error}")
                progress.run_done(f"run {job.run_id} failed: {error}")
                continue
            store.record(job.run_id, results)
            finished.add(job.run_id)
            monitor = results["monitor"]
            progress.run_done(f"finished {job.run_id}: test {monitor} "
                              f"{_fmt(results['metrics'].get('test_' + monitor))} in {results['train_seconds']:.0f} s")


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, (int, float)) else str(value)


def _next_jobs(c: Contestant, finished: set[str], submitted: set[str], store: ResultsStore) -> list[RunJob]:
    """The jobs of contestant ``c`` that can start now and have not been submitted."""
    if c.tuner is not None and not c.tuner.done():
        running = [t for t in c.tuner.running()]
        jobs = [c.trial_job(t) for t in running]
        jobs = [j for j in jobs if j.run_id not in submitted]
        if not running:
            jobs = [c.trial_job(t) for t in c.tuner.ask_batch()]
        return jobs
    params = c.best_params()
    if params is None:
        return []
    out = []
    for job in c.final_jobs(params):
        if job.run_id in finished or job.run_id in submitted:
            continue
        results_file = Path(job.run_dir) / "results.json"
        if results_file.is_file():  # finished while the study process was being killed: keep it
            from rnnlab.study.executor import validation_curve

            results = RunDir.open(job.run_dir).read_results()
            store.record(job.run_id, {**results, "valid_curve": validation_curve(job.run_dir, results), **job.extra})
            finished.add(job.run_id)
            continue
        out.append(job)
    return out


def diagnose_initial(study: StudyConfig) -> dict[str, Any]:
    """Gradient flow and gates of each cell's model at its seeded initialisation (no training)."""
    from rnnlab.study.diagnostics import diagnose

    out = {}
    for c in plan_contestants(study):
        out[c.spec.label] = {"init": diagnose(build_config(c.task.name, c.task.options, {**c.base, "seed": 0}))}
    return out


def diagnose_study(study: StudyConfig, contestants: list[Contestant], runs: dict[str, dict[str, Any]],
                   say: Callable[[str], None]) -> dict[str, Any]:
    """Gradient flow and gates per cell of the first task at initialisation and after training (its seed-0
    final run), cached on disk."""
    from rnnlab.study.diagnostics import diagnose

    path = study.out / "diagnostics.json"
    cached = json.loads(path.read_text()) if path.is_file() else {}
    out = {}
    first = study.tasks[0].name
    for c in contestants:
        if c.task.name != first:
            continue
        label = c.spec.label
        if label in cached:
            out[label] = cached[label]
            continue
        run_id = f"{first}/{c.spec.slug}-s0"
        if run_id not in runs:
            continue
        run = RunDir(runs[run_id].get("run_dir", study.out / "runs" / run_id))
        if not run.best_checkpoint.is_file():
            continue
        say(f"diagnosing {label}")
        config = RunConfig.from_dict(run.read_config())
        out[label] = {"init": diagnose(config), "trained": diagnose(config, run.best_checkpoint)}
        write_json_atomic(path, {**cached, **out})
    return out


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
