"""The ``rnnlab`` command line: parse, call into train/ and tasks/, print. No logic of its own.

Each command is one small function registered on the :func:`cli` group; add a command by writing another.
Errors on bad input (:class:`~rnnlab.errors.InputError`, ``ValueError``, ``TypeError``, ``OSError`` and
click's usage errors) print one line on stderr and exit with code 2, never a traceback (:func:`main`).
"""

from __future__ import annotations

import sys

import click

from rnnlab import __version__
from rnnlab.layers import CELLS

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="rnnlab")
def cli() -> None:
    """rnnlab: recurrent neural networks on PyTorch, and a workbench to train and compare them.

    \b
    Example:
      rnnlab tasks
      rnnlab train digits --cell gru
    """


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
_LAYER_OPTIONS = ("layer_norm", "forget_bias", "zoneout", "weight_drop", "variational_dropout")

_POSITIVE = click.IntRange(min=1)
_RATE = click.FloatRange(min=0.0, max=1.0, max_open=True)


@cli.command(
    "train", context_settings={**CONTEXT, "ignore_unknown_options": True}, no_args_is_help=True
)
@click.argument("task")
@click.argument("task_args", nargs=-1, type=click.UNPROCESSED)
@click.option("--cell", type=click.Choice(CELLS), help="Recurrent cell family.  [default: lstm]")
@click.option("--variant", help="Variant of the cell (e.g. peephole, cifg, mut1, relu); default: vanilla.")
@click.option("--hidden", type=_POSITIVE, help="Hidden units per layer (default: the task's).")
@click.option("--layers", type=_POSITIVE, help="Stacked recurrent layers.  [default: 1]")
@click.option("--dropout", type=_RATE, help="Dropout between stacked layers.")
@click.option("--bidirectional/--no-bidirectional", default=None, help="Also read sequences backwards.")
@click.option("--layer-norm/--no-layer-norm", default=None, help="Layer-normalised gates (Ba et al. 2016).")
@click.option("--forget-bias", type=float, help="Initial bias of the LSTM forget gate.")
@click.option("--zoneout", type=_RATE, help="Zoneout rate of the state (Krueger et al. 2017).")
@click.option("--weight-drop", type=_RATE, help="DropConnect rate of the recurrent weights.")
@click.option("--variational-dropout", type=_RATE, help="Dropout mask shared over time, inputs and outputs.")
@click.option("--seq-len", type=_POSITIVE, help="Sequence length, for tasks that take one.")
@click.option("--steps", type=_POSITIVE, help="Optimizer steps (default: the task's budget).")
@click.option("--epochs", type=click.FloatRange(min=0.0, min_open=True), help="Budget in epochs instead.")
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
def train_command(task: str, task_args: tuple[str, ...], seq_len, out, resume, quiet, **options) -> None:
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

    task_cls = get_task(task)
    task_options = task_cls.parse_cli_args(task_args)
    if seq_len is not None:
        task_options["seq_len"] = seq_len
    overrides = {_TRAIN_FIELDS[k]: v for k, v in options.items() if k in _TRAIN_FIELDS and v is not None}
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


# ------------------------------------------------------------------------------------------------------- main
def _one_line(message: object) -> str:
    return " ".join(str(message).split())


def main(argv: list[str] | None = None) -> None:
    """The ``rnnlab`` entry point: run :func:`cli`; bad input gives one line on stderr and exit code 2."""
    try:
        code = cli.main(args=argv, prog_name="rnnlab", standalone_mode=False)
    except click.UsageError as exc:  # bad option or argument, from click
        click.echo(f"rnnlab: error: {_one_line(exc.format_message())}", err=True)
        code = EXIT_BAD_INPUT
    except click.Abort:
        click.echo("rnnlab: aborted", err=True)
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        click.echo("rnnlab: interrupted; continue with --resume (from the last checkpoint)", err=True)
        code = EXIT_INTERRUPTED
    except (ValueError, TypeError, OSError) as exc:  # InputError is a ValueError
        click.echo(f"rnnlab: error: {_one_line(exc) or type(exc).__name__}", err=True)
        code = EXIT_BAD_INPUT
    sys.exit(code or 0)


if __name__ == "__main__":  # pragma: no cover
    main()
