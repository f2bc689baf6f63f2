"""What every classification task shares: the metric sums of ``(B, C)`` logits and the majority baseline."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from rnnlab.tasks.base import MetricSums

__all__ = ["class_prior_logits", "classification_sums"]


def classification_sums(logits: torch.Tensor, labels: torch.Tensor) -> MetricSums:
    """``accuracy`` and ``nll_nats`` sums of ``(B, C)`` logits against ``(B,)`` class ids."""
    nll = F.cross_entropy(logits, labels, reduction="sum")
    correct = (logits.argmax(dim=-1) == labels).sum()
    n = labels.numel()
    return {"accuracy": (correct.item(), n), "nll_nats": (nll.item(), n)}


def class_prior_logits(labels: np.ndarray | torch.Tensor, n_classes: int) -> torch.Tensor:
    """``(C,)`` log class frequencies of the training labels (the majority-class baseline's outputs)."""
    counts = torch.bincount(torch.as_tensor(labels, dtype=torch.long), minlength=n_classes).float()
    return torch.log(counts / counts.sum())
