"""Equal tuning per contestant: Optuna studies kept in the study's SQLite file.

Every contestant (a cell on a task) gets its own Optuna study, named ``<task>/<cell label>``, in
``study.sqlite`` beside the results store (Optuna's ``RDBStorage``), and the same number of trials drawn from
the task's search space (:meth:`rnnlab.tasks.Task.search_space`, or the user's ``--space``).

Reproducible and resumable by construction:

- Trials are proposed in **batches** of ``batch`` (``--tune-batch``): batch ``b`` is asked only when every trial
  of the batches before it has ended, so it sees exactly those (TPE's history) and never the ones running
  beside it. The sampler is seeded per trial (a pure function of the contestant and the trial number), so a
  trial's parameters do not depend on which process asked for them. The number of ``--workers`` changes
  how fast a study runs, never which trials it runs.
- The **pruner** (Optuna's ``MedianPruner`` on the validation metric, after a third of the trial's budget)
  runs inside the worker, against a snapshot of the finished trials of the earlier batches: the same
  decision whoever runs the trial and whenever.
- A study killed mid-batch finds the batch's trials ``RUNNING`` in the storage and reruns them with the same
  parameters, from their checkpoints; finished trials are never repeated.

Selection uses the validation metric only (a trial's value is its best validation value); test metrics of
trials are never looked at.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rnnlab.errors import InputError
from rnnlab.tasks import get_task
from rnnlab.tasks.search import Choice, Float, Int, Param
from rnnlab.tasks.streams import derive_seed
from rnnlab.train.config import FIELDS

__all__ = ["PruningHook", "Tuner", "apply_params", "storage_url"]

SAMPLERS = ("tpe", "random")
PRUNE_STARTUP_TRIALS = 2  # finished trials needed before the pruner stops anything
PRUNE_WARMUP_SHARE = 1 / 3  # no pruning in the first third of a trial's steps


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def storage_url(path) -> str:
    return f"sqlite:///{path}"


def apply_params(task: str, task_options: Mapping[str, Any], overrides: Mapping[str, Any],
                 params: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(task_options, overrides)`` of a run with hyperparameters ``params``: each name is a task option, a
    training setting (:mod:`rnnlab.train.config`) or else a layer option (``zoneout``, ``weight_drop``...)."""
    task_cls = get_task(task)
    options, out = dict(task_options), dict(overrides)
    layer_options = dict(out.get("layer_options", {}))
    for name, value in params.items():
        if any(o.name == name for o in task_cls.options):
            options[name] = value
        elif name in FIELDS and name != "layer_options":
            out[name] = value
        else:
            layer_options[name] = value
    if layer_options:
        out["layer_options"] = layer_options
    return options, out


def distribution(param: Param):
    """The Optuna distribution of a search-space parameter."""
    d = _optuna().distributions
    if isinstance(param, Float):
        return d.FloatDistribution(param.low, param.high, log=param.log)
    if isinstance(param, Int):
        return d.IntDistribution(param.low, param.high, log=param.log)
    if isinstance(param, Choice):
        return d.CategoricalDistribution(param.values)
    raise TypeError(f"not a search-space parameter: {param!r}")


class Tuner:
    """The Optuna study of one contestant.

    Args:
        storage: an Optuna ``RDBStorage`` (shared by the contestants of one study).
        name: the study's name, ``<task>/<cell label>``.
        space: ``{name: Param}`` to draw from.
        n_trials: trials in all.
        batch: trials proposed at once (see the module's docstring).
        sampler: ``"tpe"`` (Optuna's TPE; its first 10 trials are random) or ``"random"``.
        higher_is_better: the direction of the task's monitored metric.
    """

    def __init__(self, storage, name: str, space: Mapping[str, Param], n_trials: int, batch: int, sampler: str,
                 higher_is_better: bool) -> None:
        optuna = _optuna()
        if sampler not in SAMPLERS:
            raise InputError(f"--sampler expects one of {', '.join(SAMPLERS)}, got {sampler!r}")
        self.name, self.n_trials, self.batch, self.sampler_name = name, n_trials, batch, sampler
        self.higher_is_better = higher_is_better
        self.distributions = {k: distribution(p) for k, p in space.items()}
        self.study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
                                         direction="maximize" if higher_is_better else "minimize")

    def _sampler(self, number: int):
        samplers = _optuna().samplers
        seed = derive_seed("tune", self.name, number) % 2**32
        return samplers.TPESampler(seed=seed) if self.sampler_name == "tpe" else samplers.RandomSampler(seed=seed)

    def trials(self):
        return self.study.get_trials(deepcopy=False)

    def running(self) -> list[Any]:
        """Trials asked and not yet told (a killed study's, or this one's in flight)."""
        state = _optuna().trial.TrialState
        return [t for t in self.trials() if t.state == state.RUNNING]

    def ask_batch(self) -> list[Any]:
        """Propose the next batch of trials (call when none is running); ``[]`` when all are asked."""
        n = len(self.trials())
        end = min(self.n_trials, (n // self.batch + 1) * self.batch if n % self.batch == 0
                  else math.ceil(n / self.batch) * self.batch)
        asked = []
        for number in range(n, end):
            self.study.sampler = self._sampler(number)
            trial = self.study.ask(self.distributions)
            assert trial.number == number, (trial.number, number)
            asked.append(self.study.trials[number])
        return asked

    def done(self) -> bool:
        return len(self.trials()) >= self.n_trials and not self.running()

    def prune_spec(self, number: int, budget_steps: int | None, monitor: str) -> dict[str, Any]:
        """What a worker needs to prune trial ``number``: the validation curves of the finished trials of the
        batches before its own, and the pruner's settings."""
        state = _optuna().trial.TrialState
        first_of_batch = (number // self.batch) * self.batch
        reference = [{"value": t.value, "curve": {int(k): v for k, v in t.intermediate_values.items()}}
                     for t in self.trials() if t.number < first_of_batch and t.state == state.COMPLETE]
        warmup = int(budget_steps * PRUNE_WARMUP_SHARE) if budget_steps else 0
        return {"monitor": monitor, "higher_is_better": self.higher_is_better, "reference": reference,
                "startup_trials": PRUNE_STARTUP_TRIALS, "warmup_steps": warmup}

    def tell(self, number: int, results: Mapping[str, Any] | None) -> str:
        """Record the end of trial ``number`` (``results`` None: it failed): its validation curve, then its
        state and value (the best validation value). Returns the state's name."""
        optuna = _optuna()
        state = optuna.trial.TrialState
        frozen = self.study.trials[number]
        if frozen.state != state.RUNNING:
            return frozen.state.name
        trial = optuna.trial.Trial(self.study, frozen._trial_id)
        for step, value in (results or {}).get("valid_curve", []):
            if int(step) not in frozen.intermediate_values and value is not None and math.isfinite(value):
                trial.report(float(value), int(step))
        best = None if results is None else results.get("best_valid")
        if best is None or not math.isfinite(best):
            self.study.tell(number, state=state.FAIL)
        elif results.get("pruned"):
            self.study.tell(number, state=state.PRUNED)
        else:
            self.study.tell(number, float(best))
        return self.study.trials[number].state.name

    def best(self):
        """The finished trial with the best validation value (the earliest among equals), or None."""
        state = _optuna().trial.TrialState
        complete = [t for t in self.trials() if t.state == state.COMPLETE]
        if not complete:
            return None
        sign = -1.0 if self.higher_is_better else 1.0
        return min(complete, key=lambda t: (sign * t.value, t.number))

    def summary(self) -> dict[str, Any]:
        """Counts by state, the best trial's parameters and value, and the trials themselves."""
        trials = self.trials()
        best = self.best()
        counts = {s: sum(t.state.name == s for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
        return {
            "trials": len(trials),
            "complete": counts["COMPLETE"], "pruned": counts["PRUNED"], "failed": counts["FAIL"],
            "best_trial": None if best is None else best.number,
            "best_valid": None if best is None else best.value,
            "best_params": None if best is None else dict(best.params),
            "history": [{"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params)}
                        for t in trials],
        }

    def importance(self) -> tuple[dict[str, float] | None, str | None]:
        """fANOVA importance of each parameter for the validation metric (Hutter et al. 2014, as Greff et al.
        used): ``(importances, None)``, or ``(None, why not)`` when there are too few finished trials."""
        optuna = _optuna()
        state = optuna.trial.TrialState
        complete = [t for t in self.trials() if t.state == state.COMPLETE]
        if len(complete) < 3:
            return None, f"{len(complete)} finished trials (fANOVA needs 3 or more)"
        try:
            evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
            values = optuna.importance.get_param_importances(self.study, evaluator=evaluator)
        except (RuntimeError, ValueError) as exc:
            return None, str(exc).splitlines()[0]
        return {k: float(v) for k, v in values.items()}, None


class PruningHook:
    """The trainer's ``on_validate`` hook of a tuning trial: reports each validation value to an in-memory
    Optuna trial whose study holds the reference trials, and stops the run when the ``MedianPruner`` says so.
    Also keeps nothing else: the curve the study records comes from the run's ``metrics.jsonl``."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        optuna = _optuna()
        self.monitor = spec["monitor"]
        pruner = optuna.pruners.MedianPruner(n_startup_trials=spec["startup_trials"],
                                             n_warmup_steps=spec["warmup_steps"])
        self.study = optuna.create_study(direction="maximize" if spec["higher_is_better"] else "minimize",
                                         pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))
        self.study.add_trials([
            optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=ref["value"], params={},
                                      distributions={},
                                      intermediate_values={int(k): v for k, v in ref["curve"].items()})
            for ref in spec["reference"]])
        self.trial = self.study.ask()

    def __call__(self, step: int, metrics: Mapping[str, float]) -> bool:
        value = metrics.get(self.monitor)
        if value is None or not math.isfinite(value):
            return False
        self.trial.report(float(value), int(step))
        return bool(self.trial.should_prune())
