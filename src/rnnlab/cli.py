"""The ``rnnlab`` command line: parse, call into train/ and tasks/, print. No logic of its own.

Each command is one small function registered on the :func:`cli` group; add a command by writing another.
Errors on bad input (:class:`~rnnlab.errors.InputError`, file-system errors (``OSError``) and click's usage
errors) print one line on stderr and exit with code 2, never a traceback (:func:`main`). Anything else is a bug
in rnnlab and shows its traceback (exit code 1). ``rnnlab --debug ...`` (or ``RNNLAB_DEBUG=1``) shows the
traceback of input errors too.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from rnnlab import __version__
from rnnlab.errors import InputError, InputWarning
from rnnlab.layers import CELLS

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
DEBUG_ENV = "RNNLAB_DEBUG"
#: set by ``rnnlab --debug``: errors on bad input show their traceback instead of one line
_debug = {"on": False}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="rnnlab")
@click.option("--debug", is_flag=True, help=f"Show the traceback of every error (also: {DEBUG_ENV}=1).")
def cli(debug: bool) -> None:
    """rnnlab: recurrent neural networks on PyTorch, and a workbench to train and compare them.

    \b
    Example:
      rnnlab tasks
      rnnlab train digits --cell gru
      rnnlab --debug train digits --data my.csv    # a traceback instead of one line on error
    """
    _debug["on"] = debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")


# ------------------------------------------------------------------------------------------------------ tasks
@cli.command("tasks")
def tasks_command() -> None:
    """List the tasks, one line each, with their options and defaults.

    \b
    Example:
      rnnlab tasks
    """
    from rnnlab.tasks import registered_tasks

    width = max(len(t.name) for t in registered_tasks())
    for task in registered_tasks():
        options = " ".join(f"{o.flag} {o.default}" for o in task.options)
        click.echo(f"{task.name:<{width}}  {task.summary}" + (f"  [{options}]" if options else ""))


# ------------------------------------------------------------------------------------------------------ train
#: command-line option -> flat config field (see rnnlab.train.config)
_TRAIN_FIELDS = {
    "cell": "cell",
    "variant": "variant",
    "hidden": "hidden_size",
    "layers": "num_layers",
    "dropout": "dropout",
    "bidirectional": "bidirectional",
    "steps": "steps",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "optimizer": "optimizer",
    "weight_decay": "weight_decay",
    "clip_norm": "clip_norm",
    "schedule": "schedule",
    "warmup_steps": "warmup_steps",
    "eval_every": "eval_every",
    "patience": "patience",
    "seed": "seed",
    "device": "device",
    "threads": "threads",
    "tensorboard": "tensorboard",
}
#: command-line option -> keyword of build_layer
_LAYER_OPTIONS = ("layer_norm", "forget_bias", "chrono_init", "zoneout", "weight_drop", "variational_dropout")

_POSITIVE = click.IntRange(min=1)
_RATE = click.FloatRange(min=0.0, max=1.0, max_open=True)


@cli.command(
    "train", context_settings={**CONTEXT, "ignore_unknown_options": True, "help_option_names": []},
    no_args_is_help=True,
)
@click.argument("task", required=False)
@click.argument("task_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--cell", metavar="CELL",
              help=f"Recurrent cell family: {', '.join(CELLS)}; or families joined by '+' for a mixed stack "
                   "(lstm+gru: an LSTM layer under a GRU layer).  [default: lstm]")
@click.option("--variant", help="Variant of the cell (e.g. peephole, cifg, mut1, relu); default: vanilla.")
@click.option("--hidden", type=_POSITIVE, help="Hidden units per layer (default: the task's).")
@click.option("--layers", type=_POSITIVE, help="Stacked recurrent layers.  [default: 1]")
@click.option("--dropout", type=_RATE, help="Dropout between stacked layers.")
@click.option("--bidirectional/--no-bidirectional", default=None, help="Also read sequences backwards.")
@click.option("--layer-norm/--no-layer-norm", default=None, help="Layer-normalised gates (Ba et al. 2016).")
@click.option("--forget-bias", type=float, help="Initial bias of the LSTM forget gate.")
@click.option("--chrono-init", type=click.IntRange(min=3), metavar="T_MAX",
              help="Chrono initialisation of the forget gate's bias (Tallec & Ollivier 2018): log U(1, T_MAX-1).")
@click.option("--zoneout", type=_RATE, help="Zoneout rate of the state (Krueger et al. 2017).")
@click.option("--weight-drop", type=_RATE, help="DropConnect rate of the recurrent weights.")
@click.option("--variational-dropout", type=_RATE, help="Dropout mask shared over time, inputs and outputs.")
@click.option("--seq-len", type=_POSITIVE, help="Sequence length, for tasks that take one.")
@click.option("--steps", type=_POSITIVE, help="Optimizer steps (default: the task's budget).")
@click.option("--epochs", type=click.FloatRange(min=0.0, min_open=True), help="Budget in epochs instead.")
@click.option("--max-minutes", type=click.FloatRange(min=0.0, min_open=True),
              help="Also stop after this many minutes of training (evaluates and keeps the best checkpoint).")
@click.option("--max-cpu-minutes", type=click.FloatRange(min=0.0, min_open=True),
              help="Also stop after this many minutes of the process's CPU time: a budget that does not depend "
                   "on the machine's load.")
@click.option("--batch-size", type=_POSITIVE, help="Sequences per batch.")
@click.option("--lr", type=click.FloatRange(min=0.0, min_open=True), help="Peak learning rate.")
@click.option("--optimizer", type=click.Choice(["adam", "adamw", "rmsprop", "sgd"]), help="[default: adam]")
@click.option("--weight-decay", type=click.FloatRange(min=0.0), help="L2 penalty (decoupled for adamw).")
@click.option("--clip-norm", type=click.FloatRange(min=0.0), help="Clip the gradient norm (0: never).")
@click.option("--schedule", type=click.Choice(["constant", "cosine", "step"]), help="Learning-rate schedule.")
@click.option("--warmup-steps", type=click.IntRange(min=0), help="Linear warmup steps.")
@click.option("--eval-every", type=_POSITIVE, help="Validate and checkpoint every N steps.")
@click.option("--patience", type=_POSITIVE, help="Stop after N validations without improvement.")
@click.option("--seed", type=click.IntRange(min=0), help="Random seed.  [default: 0]")
@click.option("--device", help="Torch device.  [default: cpu]")
@click.option("--threads", type=click.IntRange(min=0), help="CPU threads (0: torch's default).  [default: 1]")
@click.option("--tensorboard", is_flag=True, default=None, help="Also log to OUT/tensorboard.")
@click.option("--out", type=click.Path(), help="Run directory.  [default: runs/<task>-<cell>-s<seed>-<time>]")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("-h", "--help", "show_help", is_flag=True,
              help="Show this message (with TASK: also its options and notes) and exit.")
def train_command(task: str | None, task_args: tuple[str, ...], seq_len, out, resume, quiet, show_help,
                  **options) -> None:
    """Train a recurrent model on TASK and write a run directory.

    Task-specific options (see `rnnlab tasks`) go after TASK like the others; an option the task does not
    take is an error.

    \b
    Example:
      rnnlab train adding --cell lstm --seq-len 200
      rnnlab train copy --cell gru --seq-len 100 --copy-len 10 --out runs/copy-gru
      rnnlab train copy --cell gru --out runs/copy-gru --resume
    """
    from rnnlab.tasks import get_task
    from rnnlab.train import resume_run, start_run, summarize

    if show_help:
        click.echo(click.get_current_context().get_help())
        if task is not None:
            click.echo("\n" + get_task(task).help_text())
        return
    if task is None:
        raise click.UsageError("Missing argument 'TASK'.")
    task_cls = get_task(task)
    task_options = task_cls.parse_cli_args(task_args)
    if seq_len is not None:
        task_options["seq_len"] = seq_len
    overrides = {_TRAIN_FIELDS[k]: v for k, v in options.items() if k in _TRAIN_FIELDS and v is not None}
    if options["max_minutes"] is not None:
        overrides["max_seconds"] = options["max_minutes"] * 60.0
    if options["max_cpu_minutes"] is not None:
        overrides["max_cpu_seconds"] = options["max_cpu_minutes"] * 60.0
    layer_options = {k: options[k] for k in _LAYER_OPTIONS if options[k] is not None}
    if layer_options:
        overrides["layer_options"] = layer_options
    if resume:
        if out is None:
            raise click.UsageError("--resume needs --out, the run directory to continue")
        run, results = resume_run(out, task, task_options, overrides, progress=not quiet)
    else:
        run, results = start_run(task, task_options, overrides, out, progress=not quiet)
    click.echo(summarize(results))
    click.echo(f"run directory: {run.path}")


# ------------------------------------------------------------------------------------------------------- eval
@cli.command("eval")
@click.argument("run_dir", type=click.Path())
@click.option("--split", type=click.Choice(["test", "valid", "train"]), default="test", show_default=True)
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
def eval_command(run_dir: str, split: str, checkpoint: str) -> None:
    """Re-evaluate a saved run's checkpoint on a split; writes nothing.

    \b
    Example:
      rnnlab eval runs/copy-gru
      rnnlab eval runs/copy-gru --split valid --checkpoint last
    """
    from rnnlab.train import evaluate_run

    for name, value in evaluate_run(run_dir, split, checkpoint).items():
        click.echo(f"{name:<20} {value:.6g}")


# ---------------------------------------------------------------------------------------------------- compare
def _task_and_options(words: tuple[str, ...], default_task: str, default_options: dict) -> tuple[str, dict]:
    """Split ``[TASK] [--task-option VALUE ...]`` into the task name and its validated options."""
    from rnnlab.tasks import get_task

    if words and not words[0].startswith("-"):
        task, rest = words[0], words[1:]
        options: dict = {}
    else:
        task, rest, options = default_task, words, dict(default_options)
    return task, {**options, **get_task(task).parse_cli_args(rest)}


class _RichStudyProgress:
    """Study progress as a rich progress bar over runs, with a line per finished run."""

    def __init__(self, enabled: bool) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.bar = Progress(TextColumn("runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=self.console, disable=not enabled)
        self.task_id = None

    def start(self, total: int) -> None:
        self.bar.start()
        self.task_id = self.bar.add_task("runs", total=total)

    def run_done(self, message: str) -> None:
        self.console.print(message)
        self.bar.advance(self.task_id)

    def note(self, message: str) -> None:
        self.console.print(message)

    def stop(self) -> None:
        if self.task_id is not None:
            self.bar.stop()


def _study_options(f):
    for decorator in reversed([
        click.argument("task_args", nargs=-1, type=click.UNPROCESSED),
        click.option("--cells", default="rnn,lstm,gru", show_default=True,
                     help="Cells to compare: cell or cell:variant, comma-separated (e.g. lstm:peephole,gru:mut1)."),
        click.option("--budget", help="Training budget of every run: steps (2000), seconds (90s), or CPU seconds "
                                      "of the run's process (90cpu: the same work whatever the machine's load)."),
        click.option("--hidden", type=_POSITIVE, help="Hidden units of every cell (default: the task's)."),
        click.option("--match-params", type=_POSITIVE, help="Choose hidden sizes to give every cell ~N parameters."),
        click.option("--workers", type=_POSITIVE, default=2, show_default=True, help="Runs trained at once."),
        click.option("--quiet", "-q", is_flag=True, help="No progress bar."),
    ]):
        f = decorator(f)
    return f


def _fractions(text: str | None) -> tuple[float, ...]:
    from rnnlab.errors import InputError

    if text is None:
        return (1.0,)
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"--data-fractions expects shares in (0, 1], e.g. 0.1,0.3,1.0, got {text!r}") from None
    return values


@cli.command("compare", context_settings={**CONTEXT, "ignore_unknown_options": True})
@_study_options
@click.option("--tasks", help="Several tasks in one study: TASK[:option=value...],... (each with its defaults).")
@click.option("--tune", type=int, default=4, show_default=True,
              help="Tuning trials per cell (Optuna, the task's search space); 0: the task's defaults.")
@click.option("--tune-budget", help="Budget of each tuning trial: steps, seconds or CPU seconds (default: --budget).")
@click.option("--tune-batch", type=_POSITIVE, default=2, show_default=True,
              help="Trials of a cell proposed at once (results do not depend on --workers; raise it to use more "
                   "workers on few cells).")
@click.option("--space", help="Search space: name=low:high[:log] or name=a|b, comma-separated; replaces or adds "
                              "to the task's (e.g. lr=1e-4:1e-2:log,weight_drop=0:0.5).")
@click.option("--sampler", type=click.Choice(["tpe", "random"]), default="tpe", show_default=True)
@click.option("--prune/--no-prune", default=True, show_default=True,
              help="Stop hopeless trials early (median pruner on the validation metric).")
@click.option("--seeds", type=int, default=3, show_default=True, help="Final runs per cell (seeds 0..N-1).")
@click.option("--data-fractions", help="Also train on these shares of the training split, e.g. 0.1,0.3,1.0.")
@click.option("--test", "test_name", type=click.Choice(["welch", "mannwhitney"]), default="welch",
              show_default=True, help="Pairwise test across seeds (Holm-adjusted).")
@click.option("--alpha", type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True), default=0.05,
              show_default=True, help="Significance level.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where runs train: local processes, or Ray tasks (pip install 'rnnlab[ray]').")
@click.option("--address", help="Ray: join this running cluster (auto or HOST:PORT) instead of a local instance.")
@click.option("--out", type=click.Path(), default="study", show_default=True, help="Study directory.")
def compare_command(task_args, cells, budget, hidden, match_params, workers, quiet, tasks, tune, tune_budget,
                    tune_batch, space, sampler, prune, seeds, data_fractions, test_name, alpha, executor, address,
                    out) -> None:
    """Compare recurrent cells on a task: tune each cell equally, train the best configuration of each over
    seeds, test for significant differences, and write a report (tables, verdicts, plots).

    With no TASK it runs the default study, about 3 minutes on two cores: RNN, LSTM and GRU on the adding
    problem (T=100), 4 tuning trials per cell of 1,000 steps, then 3 seeds of 1,500 steps each. Rerun the same
    command to finish a study that was killed: finished runs and trials are kept, interrupted ones continue.

    A serious study (hours): more trials, more seeds, the task's full budget, all the cores, e.g.
    `rnnlab compare music --data jsb.json --cells lstm,gru --tune 30 --seeds 10 --workers 8`.

    \b
    Example:
      rnnlab compare
      rnnlab compare digits --cells rnn,lstm,gru,gru:mgu --tune 8 --seeds 5 --budget 300 --out studies/digits
      rnnlab compare adding --seq-len 100 --cells lstm,lstm:cifg,gru --match-params 20000 --tune 0
      rnnlab compare --tasks adding:seq-len=50,copy,digits --cells rnn,lstm,gru --out studies/three
      rnnlab compare digits --data-fractions 0.1,0.3,1.0 --executor ray --workers 4
    """
    from pathlib import Path

    from rnnlab.errors import InputError
    from rnnlab.study.cellspec import parse_cells
    from rnnlab.study.compare import DEFAULT_STUDY, Budget, StudyConfig, parse_tasks, run_study
    from rnnlab.tasks.search import parse_space

    zero = tasks is None and (not task_args or task_args[0].startswith("-"))
    if tasks is not None:
        if task_args:
            raise InputError("give either TASK or --tasks (each task of --tasks takes TASK:option=value)")
        specs = parse_tasks(tasks)
    else:
        task, task_options = _task_and_options(task_args, DEFAULT_STUDY["task"], DEFAULT_STUDY["task_options"])
        specs = None
    tune_budget_text = tune_budget or (DEFAULT_STUDY["tune_budget"] if zero and not budget else None)
    study = StudyConfig(
        task="" if specs else task, task_options={} if specs else task_options, tasks=specs or [],
        cells=parse_cells(cells), seeds=seeds,
        budget=Budget.parse(budget or (DEFAULT_STUDY["budget"] if zero else None)),
        tune_budget=Budget.parse(tune_budget_text, "--tune-budget") if tune_budget_text else None,
        match_params=match_params, hidden_size=hidden, workers=workers, out=Path(out), tune=tune,
        tune_batch=tune_batch, sampler=sampler, space=parse_space(space) if space else None, prune=prune,
        data_fractions=_fractions(data_fractions), test=test_name, alpha=alpha, executor=executor, address=address)
    progress = _RichStudyProgress(enabled=not quiet)
    try:
        summary = run_study(study, progress=progress)
    finally:
        progress.stop()
    for name, task_summary in summary["tasks"].items():
        _print_cells(name, task_summary)
    for line in summary["recommendation"]:
        click.echo(line)
    click.echo(f"report: {summary['report']}")
    if summary["failures"]:
        raise click.ClickException(f"{len(summary['failures'])} run(s) failed; rerun the command to retry them")


def _print_cells(task: str, summary) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = summary["cells"]
    if not rows:
        return
    table = Table(title=f"{task}: test {rows[0]['metric']} (mean, 95% bootstrap CI over seeds)")
    for name in ("cell", "test", "95% CI", "params", "ms/step", "solved", "beats baseline"):
        table.add_column(name, justify="left" if name == "cell" else "right")
    for r in rows:
        table.add_row(r["cell"], f"{r['mean']:.4g}", f"{r['ci_low']:.4g} .. {r['ci_high']:.4g}", f"{r['params']:,}",
                      f"{r['ms_per_step']:.1f}", r["reached_threshold"], r["beats_baseline"])
    Console().print(table)


@cli.command("diagnose", context_settings={**CONTEXT, "ignore_unknown_options": True})
@_study_options
@click.option("--init-only", is_flag=True, help="Only the freshly initialised models: no training.")
@click.option("--out", type=click.Path(), default="diagnostics", show_default=True, help="Output directory.")
def diagnose_command(task_args, cells, budget, hidden, match_params, workers, quiet, init_only, out) -> None:
    """Gradient flow (the vanishing gradient made visible) and gate saturation per cell, at initialisation and
    after training one seed; writes gradient_flow.png, gates.png and diagnostics.json.

    \b
    Example:
      rnnlab diagnose adding --seq-len 100 --cells rnn,lstm,gru --init-only
      rnnlab diagnose copy --cells rnn,lstm,gru --budget 300 --out diag/copy
    """
    from pathlib import Path

    from rnnlab.study.cellspec import parse_cells
    from rnnlab.study.compare import DEFAULT_STUDY, Budget, StudyConfig, diagnose_initial, run_study
    from rnnlab.study.report import write_diagnostics
    from rnnlab.train.rundir import write_json_atomic

    task, task_options = _task_and_options(task_args, DEFAULT_STUDY["task"], DEFAULT_STUDY["task_options"])
    default_budget = DEFAULT_STUDY["budget"] if not task_args or task_args[0].startswith("-") else None
    study = StudyConfig(task=task, task_options=task_options, cells=parse_cells(cells), seeds=1,
                        budget=Budget.parse(budget or default_budget), match_params=match_params,
                        hidden_size=hidden, workers=workers, out=Path(out))
    if init_only:
        study.validate()
        diagnostics = diagnose_initial(study)
        Path(out).mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(out) / "diagnostics.json", diagnostics)
    else:
        progress = _RichStudyProgress(enabled=not quiet)
        try:
            diagnostics = run_study(study, progress=progress)["diagnostics"]
        finally:
            progress.stop()
    for path in write_diagnostics(out, diagnostics):
        click.echo(f"wrote {path}")


@cli.command("runs")
@click.argument("directory", type=click.Path(), default="study")
def runs_command(directory: str) -> None:
    """List the finished runs of a study directory.

    \b
    Example:
      rnnlab runs studies/digits
    """
    from rnnlab.study.report import list_runs

    for r in list_runs(directory):
        monitor = r.get("monitor", "")
        value = r.get("metrics", {}).get(f"test_{monitor}")
        kind = "valid" if r.get("kind") == "trial" else "test"
        if kind == "valid":  # a tuning trial: its selection value, never its test metric
            value = r.get("best_valid")
        shown = f"{value:.4g}" if isinstance(value, (int, float)) else "–"
        click.echo(f"{r['run_id']:<36} {r.get('label', r['cell']):<16} seed {r['seed']:<6} {kind} {monitor} "
                   f"{shown}  {r['params']:,} params  {r['train_seconds']:.0f} s  {r.get('run_dir', '')}")


# --------------------------------------------------------------------------------------------------- generate
@cli.command("generate", no_args_is_help=True)
@click.argument("run_dir", type=click.Path())
@click.option("--length", type=_POSITIVE, help="Time steps (music) or tokens to generate (default: the task's).")
@click.option("--out", type=click.Path(), help="File to write (music: a MIDI file, FILE.mid; text: a copy).")
@click.option("--seed", type=click.IntRange(min=0), help="Seed of the sampling.  [default: 0]")
@click.option("--temperature", type=click.FloatRange(min=0.0, min_open=True), help="Sampling temperature.")
@click.option("--top-k", type=_POSITIVE, help="Sample among the K most probable tokens only (text tasks).")
@click.option("--prompt", help="Text to start from (text tasks).")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
def generate_command(run_dir: str, out, checkpoint: str, **options) -> None:
    """Sample from a trained run's model, one step at a time (the task's generate hook). Text is printed as
    it is produced.

    \b
    Example:
      rnnlab generate runs/shakespeare --prompt "ROMEO:" --length 300 --temperature 0.8
      rnnlab generate runs/kjv-words --prompt "And God said" --top-k 20 --seed 3
      rnnlab generate runs/music-lstm --length 128 --out sample.mid
    """
    from rnnlab.train.trained import generate_from_run

    streamed = []

    def emit(piece: str) -> None:
        streamed.append(piece)
        click.echo(piece, nl=False)
        sys.stdout.flush()

    result, path = generate_from_run(run_dir, out=out, checkpoint=checkpoint, emit=emit, **options)
    if streamed:
        click.echo()
    elif path is None:
        click.echo(result)
    if path is not None:
        click.echo(f"wrote {path}", err=bool(streamed))


# ---------------------------------------------------------------------------------------------------- predict
@cli.command("predict", no_args_is_help=True)
@click.argument("run_dir", type=click.Path())
@click.argument("texts", nargs=-1)
@click.option("--input", "input_file", type=click.Path(),
              help="More inputs from a file: one text per line, or a CSV/TSV/JSON Lines table.")
@click.option("--text-column", help="Column of the texts in an --input table.  [default: the run's, else text]")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
@click.option("--explain", is_flag=True, help="Also print each input's 5 most-attended words and their attention "
              "weights (a sentiment run trained with --readout attention).")
def predict_command(run_dir: str, texts: tuple[str, ...], input_file, text_column, checkpoint: str,
                    explain: bool) -> None:
    """Apply a trained run to new inputs (the task's predict hook): per input one line, the predicted label
    and its probability, tab-separated; with several inputs the input follows.

    \b
    Example:
      rnnlab predict runs/sentiment "Delicious, I would buy it again."
      rnnlab predict runs/sentiment --input reviews.txt
      rnnlab predict runs/sentiment-attention --explain "Stale, and the box was crushed."
    """
    from rnnlab.train.trained import predict_from_run

    results = predict_from_run(run_dir, list(texts), checkpoint=checkpoint, input_file=input_file,
                               text_column=text_column, explain=5 if explain else None)
    for result in results:
        if not (isinstance(result, dict) and "label" in result):
            click.echo(result)
            continue
        line = f"{result['label']}\t{result['probability']:.4f}"
        click.echo(line + (f"\t{_one_line(result.get('text', ''))[:100]}" if len(results) > 1 else ""))
        if "attended" in result:
            click.echo("  attended: " + ", ".join(f"{word} {weight:.3f}" for word, weight in result["attended"]))


# -------------------------------------------------------------------------------------------------- translate
@cli.command("translate", no_args_is_help=True)
@click.argument("run_dir", type=click.Path())
@click.argument("sentences", nargs=-1)
@click.option("--input", "input_file", type=click.Path(),
              help="More sentences from a file: one per line, or a CSV/TSV/JSON Lines table.")
@click.option("--text-column", help="Column of the sentences in an --input table.  [default: the run's source column]")
@click.option("--beam-size", type=int, help="Beam width (1: greedy).  [default: the run's]")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
def translate_command(run_dir: str, sentences: tuple[str, ...], input_file, text_column, beam_size,
                      checkpoint: str) -> None:
    """Translate sentences with a trained translation run: one translation per line, in order.

    \b
    Example:
      rnnlab train translate --out runs/en-es
      rnnlab translate runs/en-es "In the beginning God created the heavens and the earth."
      rnnlab translate runs/en-es --input sentences.txt --beam-size 10
    """
    from rnnlab.train.trained import translate_from_run

    for line in translate_from_run(run_dir, list(sentences), checkpoint=checkpoint, input_file=input_file,
                                   text_column=text_column, beam_size=beam_size):
        click.echo(line)


# --------------------------------------------------------------------------------------------------- forecast
@cli.command("forecast")
@click.argument("run_dir", type=click.Path())
@click.option("--data", type=click.Path(), help="A table with the run's columns (default: the run's series).")
@click.option("--horizon", type=int, help="Steps to forecast past the end (default: the run's horizon).")
@click.option("--plot", type=click.Path(), default="forecast.png", show_default=True,
              help="PNG of the history and the forecast.")
@click.option("--checkpoint", type=click.Choice(["best", "last"]), default="best", show_default=True)
def forecast_command(run_dir: str, data, horizon, plot: str, checkpoint: str) -> None:
    """Forecast the steps after the end of a series with a trained forecasting run; print them, plot them.

    \b
    Example:
      rnnlab train forecast --series sunspots --horizon 5 --out runs/sun
      rnnlab forecast runs/sun --horizon 20 --plot sunspots.png
      rnnlab forecast runs/sales --data sales-2024.csv --horizon 12
    """
    from rnnlab.train.trained import forecast_from_run

    result, path = forecast_from_run(run_dir, data=data, horizon=horizon, plot=plot, checkpoint=checkpoint)
    click.echo(result.table())
    click.echo(f"wrote {path}")


# ------------------------------------------------------------------------------------------------------ bench
@cli.command("bench")
@click.option("--quick", is_flag=True, help="A sub-minute smoke run: the small shape, vanilla variants only.")
@click.option("--workbench", is_flag=True,
              help="The workbench tasks' own default shapes (adding, copy, digits, mnist, music, ...), vanilla only.")
@click.option("--single-thread", is_flag=True,
              help="One thread, timed by process CPU time (how a study worker runs; steadier on a busy machine).")
@click.option("--families", default="rnn,lstm,gru", show_default=True, help="Cell families, comma-separated.")
@click.option("--shape", "shapes", multiple=True, help="T,B,I,H (repeatable); default: the standard grid.")
@click.option("--vanilla-only", is_flag=True, help="Only each family's vanilla variant.")
@click.option("--rounds", type=_POSITIVE, help="Interleaved timing rounds (medians are reported).")
@click.option("--threads", type=_POSITIVE, help="torch threads (default: torch's).")
@click.option("--json", "json_path", type=click.Path(), help="Also write the measurements as JSON here.")
def bench_command(quick, workbench, single_thread, families, shapes, vanilla_only, rounds, threads,
                  json_path) -> None:
    """Time torch's native layers, rnnlab's fused engine and the reference loop side by side, interleaved in
    one process: forward, forward+backward and inference ms, peak memory, GFLOP/s, ratio to torch, fraction
    of the machine's measured GEMM throughput, and streaming latency of a 2-layer LSTM at batch 1.

    \b
    Example:
      rnnlab bench --quick
      rnnlab bench --json bench.json
      rnnlab bench --families lstm --shape 100,16,64,64 --vanilla-only
      rnnlab bench --workbench --single-thread --json results.json
    """
    import dataclasses

    from rnnlab.errors import InputError
    from rnnlab.study.bench import BenchConfig, render, run_bench, write_json

    if quick and workbench:
        raise InputError("--quick and --workbench are two presets: choose one")
    if single_thread and threads not in (None, 1):
        raise InputError(f"--single-thread runs one thread; it cannot take --threads {threads}")
    cfg = BenchConfig.quick() if quick else BenchConfig.workbench() if workbench else BenchConfig()
    if single_thread:
        cfg = cfg.single_thread()
    changes: dict = {"families": tuple(f.strip() for f in families.split(",") if f.strip())}
    if shapes:
        try:
            changes["shapes"] = tuple(tuple(int(n) for n in s.split(",")) for s in shapes)
        except ValueError:
            raise InputError(f"--shape expects T,B,I,H as four integers, got {', '.join(shapes)}") from None
    if vanilla_only:
        changes["all_variants"] = False
    if rounds is not None:
        changes["rounds"] = rounds
    if threads is not None:
        changes["threads"] = threads
    result = run_bench(dataclasses.replace(cfg, **changes), progress=lambda m: click.echo(m, err=True))
    render(result)
    if json_path:
        click.echo(f"wrote {write_json(result, json_path)}")


# ------------------------------------------------------------------------------------------------------- main
def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """An :class:`~rnnlab.errors.InputWarning` as ``rnnlab: warning: ...`` on stderr; others as Python does."""
    if issubclass(category, InputWarning):
        click.echo(f"rnnlab: warning: {_one_line(message)}", err=True)
    else:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


_PYTHON_SHOWWARNING = warnings.showwarning
#: click >= 8.2 raises this for a command with ``no_args_is_help`` called without arguments (older click exits 0)
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv: list[str] | None = None) -> None:
    """The ``rnnlab`` entry point: run :func:`cli`; bad input gives one line on stderr and exit code 2.

    Only the user's mistakes are caught: :class:`~rnnlab.errors.InputError` (arguments, files, data) and
    ``OSError`` (a path that cannot be read or written). Any other exception is a bug and propagates with its
    traceback; with ``--debug`` input errors propagate too.
    """
    _debug["on"] = False
    try:
        with warnings.catch_warnings():  # warnings about the user's input: one line on stderr each
            warnings.simplefilter("always", InputWarning)
            warnings.showwarning = _show_warning
            code = cli.main(args=argv, prog_name="rnnlab", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:  # `rnnlab train` alone: the command's help, whole, as click itself shows it
        click.echo(exc.format_message(), err=True)
        code = EXIT_BAD_INPUT
    except click.UsageError as exc:  # bad option or argument, from click
        click.echo(f"rnnlab: error: {_one_line(exc.format_message())}", err=True)
        code = EXIT_BAD_INPUT
    except click.Abort:
        click.echo("rnnlab: aborted", err=True)
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("rnnlab: interrupted; continue with --resume (from the last checkpoint)", err=True)
        code = EXIT_INTERRUPTED
    except (InputError, OSError) as exc:
        if _debug["on"]:
            raise
        click.echo(f"rnnlab: error: {_one_line(exc) or type(exc).__name__}", err=True)
        code = EXIT_BAD_INPUT
    sys.exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
