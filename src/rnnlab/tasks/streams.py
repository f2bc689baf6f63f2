"""Batching helpers for tasks: finite datasets held in memory, and synthetic generators.

:class:`IndexedTask` implements the data half of :class:`~rnnlab.tasks.base.Task` for a dataset whose splits
can be indexed: each epoch visits the training split in an order drawn from ``(seed, epoch)``, so batch ``s``
is a pure function of ``(seed, s)``. :class:`SyntheticTask` draws a fresh training batch for every step from
``(seed, step)`` and fixes its validation and test sets once, from seeds that do not depend on the run's seed
(every run of a task is tested on the same examples).
"""

from __future__ import annotations

import abc
import hashlib
import math
from collections.abc import Iterator, Sized
from typing import Any, ClassVar

import torch
from torch.utils.data import TensorDataset

from rnnlab.errors import InputError
from rnnlab.tasks.base import SPLITS, Batch, Task

__all__ = ["IndexedTask", "SyntheticTask", "derive_generator", "derive_seed"]


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed that is a pure function of ``parts`` (ints and strings), well mixed."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def derive_generator(*parts: Any) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded with :func:`derive_seed` of ``parts``."""
    return torch.Generator().manual_seed(derive_seed(*parts))


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InputError(f"expected a split among {', '.join(SPLITS)}, got {split!r}")


class IndexedTask(Task):
    """A task whose splits are finite, indexable datasets loaded on first use.

    Subclasses implement :meth:`load_split` and either :meth:`make_batch` (when the split is a
    ``TensorDataset`` of batch-first tensors) or :meth:`collate` (anything else, e.g. a list of variable-length
    examples).
    """

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._splits: dict[str, Sized] = {}
        self._train_fraction = 1.0  # of the training split used (restrict_train)

    def restrict_train(self, fraction: float) -> None:
        if not 0.0 < fraction <= 1.0:
            raise InputError(f"expected a training fraction in (0, 1], got {fraction!r}")
        if "train" in self._splits:
            raise RuntimeError("restrict_train must be called before the training split is loaded")
        self._train_fraction = fraction

    @abc.abstractmethod
    def load_split(self, split: str) -> Sized:
        """Load (read, generate, tokenise) the examples of ``split``; called once per split, lazily."""

    def data(self, split: str) -> Sized:
        """The examples of ``split``, loaded on first use and cached."""
        _check_split(split)
        if split not in self._splits:
            examples = self.load_split(split)
            if split == "train" and self._train_fraction < 1.0:
                examples = self._subset(examples, self._train_fraction)
            self._splits[split] = examples
        return self._splits[split]

    def _subset(self, examples: Sized, fraction: float) -> Sized:
        """The first ``ceil(fraction * N)`` examples of a permutation fixed per task: nested across fractions."""
        n = len(examples)
        order = torch.randperm(n, generator=derive_generator("train-fraction", self.name))  # (n,)
        keep = order[: max(1, math.ceil(fraction * n))].sort().values  # (n_keep,) in the split's own order
        if isinstance(examples, TensorDataset):
            return TensorDataset(*(t[keep] for t in examples.tensors))
        return [examples[i] for i in keep.tolist()]

    def split_size(self, split: str) -> int:
        """Number of examples in ``split``."""
        return len(self.data(split))

    def collate(self, split: str, indices: torch.Tensor) -> Batch:
        """The batch of the examples ``indices`` (``(B,)`` int64) of ``split``.

        The default indexes every tensor of a ``TensorDataset`` and hands the rows to :meth:`make_batch`.
        """
        dataset = self.data(split)
        if not isinstance(dataset, TensorDataset):
            raise NotImplementedError(f"task {self.name} must implement collate() for its split type")
        return self.make_batch(*(t[indices] for t in dataset.tensors))

    def make_batch(self, *rows: torch.Tensor) -> Batch:
        """Build a time-major :class:`Batch` from batch-first rows of a ``TensorDataset``."""
        raise NotImplementedError(f"task {self.name} must implement make_batch() or collate()")

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(self.split_size("train") / batch_size)

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        per_epoch = self.steps_per_epoch(batch_size)
        size = self.split_size("train")
        step, epoch, order = start_step, -1, torch.empty(0, dtype=torch.long)
        while True:
            this_epoch, k = divmod(step, per_epoch)
            if this_epoch != epoch:
                epoch = this_epoch
                order = torch.randperm(size, generator=derive_generator("epoch", seed, epoch))
            yield self.collate("train", order[k * batch_size : (k + 1) * batch_size])
            step += 1

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        size = self.split_size(split)
        for start in range(0, size, batch_size):
            yield self.collate(split, torch.arange(start, min(start + batch_size, size)))


class SyntheticTask(IndexedTask):
    """A task whose examples are drawn from a generator: fresh training examples at every step, fixed
    validation and test sets.

    Subclasses implement :meth:`draw` and :meth:`make_batch`.

    Class attributes:
        eval_sizes: examples in the fixed ``valid``, ``test`` and (for evaluation only) ``train`` sets.
        epoch_size: the nominal number of training examples per epoch, which ``--epochs`` counts in.
    """

    eval_sizes: ClassVar[dict[str, int]] = {"train": 2000, "valid": 1000, "test": 2000}
    epoch_size: ClassVar[int] = 10_000

    @abc.abstractmethod
    def draw(self, n: int, generator: torch.Generator) -> TensorDataset:
        """``n`` fresh examples as batch-first tensors, drawn only from ``generator``."""

    def restrict_train(self, fraction: float) -> None:
        raise InputError(f"task {self.name} draws fresh training examples at every step: --data-fractions needs a "
                         "task with a finite training split")

    def load_split(self, split: str) -> TensorDataset:
        # The fixed sets depend on the task's options but never on the run's seed.
        return self.draw(self.eval_sizes[split], derive_generator("fixed", self.name, split))

    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(self.epoch_size / batch_size)

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        step = start_step
        while True:
            rows = self.draw(batch_size, derive_generator("train", seed, step)).tensors
            yield self.make_batch(*rows)
            step += 1
