"""Optimizers, learning-rate schedules and gradient clipping, from an :class:`OptimConfig`."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from rnnlab.train.config import OptimConfig

__all__ = ["build_optimizer", "build_scheduler", "clip_gradients", "lr_factor"]


def build_optimizer(params: Iterable[nn.Parameter], config: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` at ``config.lr``."""
    params = list(params)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum
        )
    return torch.optim.SGD(params, lr=config.lr, weight_decay=config.weight_decay, momentum=config.momentum)


def lr_factor(config: OptimConfig, step: int, total_steps: int) -> float:
    """The multiplier of ``config.lr`` for optimizer step ``step`` (0-based) of ``total_steps``.

    Linear warmup over ``warmup_steps``, then ``constant`` 1, ``cosine`` from 1 down to ``min_lr_ratio`` at
    the last step, or ``step``: ``step_gamma`` to the power of the number of ``step_every`` periods done.
    """
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    if config.schedule == "cosine":
        span = max(total_steps - 1 - config.warmup_steps, 1)
        progress = min((step - config.warmup_steps) / span, 1.0)
        return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    if config.schedule == "step":
        return config.step_gamma ** ((step - config.warmup_steps) // config.step_every)
    return 1.0


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: OptimConfig, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` applying :func:`lr_factor`; call ``scheduler.step()`` after every optimizer step.

    Its ``state_dict`` holds only the step counter and the learning rates (the schedule is rebuilt from the
    config), so checkpoints stay free of code.
    """
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(config, step, total_steps))


def clip_gradients(params: Iterable[nn.Parameter], clip_norm: float | None) -> float:
    """Clip the global gradient norm to ``clip_norm`` (no clipping when ``None`` or 0); the norm before."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    max_norm = clip_norm if clip_norm else float("inf")
    return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
