"""Training: config dataclasses, the one Trainer, checkpoints, run directories, loggers.

``start_run``/``resume_run``/``evaluate_run`` are what the CLI calls; ``Trainer`` is the loop itself.
"""

from rnnlab.train.checkpoint import load_checkpoint, save_checkpoint
from rnnlab.train.config import LoopConfig, ModelConfig, OptimConfig, RunConfig, build_config
from rnnlab.train.run import evaluate_run, resume_run, start_run, summarize
from rnnlab.train.rundir import RunDir
from rnnlab.train.trainer import Trainer

__all__ = [
    "LoopConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "RunDir",
    "Trainer",
    "build_config",
    "evaluate_run",
    "load_checkpoint",
    "resume_run",
    "save_checkpoint",
    "start_run",
    "summarize",
]
