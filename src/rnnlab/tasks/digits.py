"""Handwritten digits read row by row: scikit-learn's 8x8 digits (1,797 images shipped with the package).

Each image is a sequence of 8 steps (its rows) of 8 features (pixel intensities scaled to ``[0, 1]``); the model
classifies the whole sequence into 10 classes. Real, tiny and fast: the smoke task of the test suite.
The splits are fixed (a seeded permutation): 1,257 training, 180 validation and 360 test images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from rnnlab.tasks.base import Batch, MetricSums, register_task
from rnnlab.tasks.classification import class_prior_logits, classification_sums
from rnnlab.tasks.heads import LastStep
from rnnlab.tasks.streams import IndexedTask, derive_generator

__all__ = ["Digits"]

N_CLASSES = 10
SPLIT_SIZES = {"valid": 180, "test": 360}  # the rest is "train"


def _load_all() -> tuple[torch.Tensor, torch.Tensor]:
    """Images ``(N, 8, 8)`` in ``[0, 1]`` and labels ``(N,)``."""
    from sklearn.datasets import load_digits  # imported here: scikit-learn is slow to import

    data = load_digits()
    images = torch.tensor(data.images, dtype=torch.float32) / 16.0  # (N, 8, 8)
    return images, torch.tensor(data.target, dtype=torch.long)


@register_task
class Digits(IndexedTask):
    """8x8 handwritten digits, row by row: whole-sequence classification, cross-entropy."""

    name = "digits"
    summary = "8x8 handwritten digits read row by row (8 steps x 8 features), 10 classes (accuracy)"
    monitor = "accuracy"
    higher_is_better = True
    defaults = {
        "hidden_size": 64,
        "steps": 1000,
        "batch_size": 32,
        "lr": 1e-2,
        "clip_norm": 1.0,
        "eval_every": 100,
        "schedule": "cosine",
    }
    input_size = 8

    def load_split(self, split: str) -> TensorDataset:
        images, labels = _load_all()
        order = torch.randperm(len(labels), generator=derive_generator("digits-split"))
        n_valid, n_test = SPLIT_SIZES["valid"], SPLIT_SIZES["test"]
        ranges = {"test": order[:n_test], "valid": order[n_test : n_test + n_valid], "train": order[n_test + n_valid :]}
        index = ranges[split]
        return TensorDataset(images[index], labels[index])

    def make_batch(self, images: torch.Tensor, labels: torch.Tensor) -> Batch:
        return Batch(inputs=images.transpose(0, 1).contiguous(), targets=labels)  # (8, B, 8), (B,)

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        return LastStep(features, N_CLASSES, num_directions)  # (B, 10)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs, batch.targets)

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        return classification_sums(outputs, batch.targets)

    def baseline(self) -> dict[str, float]:
        """The training split's class frequencies, whatever the image (accuracy of the majority class)."""
        log_prior = class_prior_logits(self.data("train").tensors[1], N_CLASSES)  # (10,)
        return self.evaluate_predictor(lambda batch: log_prior.expand(batch.size, N_CLASSES))
