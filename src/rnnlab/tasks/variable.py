"""Tasks over variable-length sequences: training batches of similar lengths (bucketing), evaluation sorted by
length.

Padding a batch to its longest sequence wastes the steps past every shorter one; drawing the batches of an
epoch from groups of similar length wastes little. :class:`VariableLengthTask` keeps the contract of
:class:`~rnnlab.tasks.streams.IndexedTask` (batch ``s`` is a pure function of ``(batch_size, seed, s)``, every
training example once per epoch, ``ceil(N / B)`` batches per epoch) and changes only which examples share a
batch: the epoch's random order is cut into pools of ``pool_batches`` batches, each pool is sorted by length
and cut into batches, and the batches are shuffled.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import ClassVar

import torch

from rnnlab.tasks.base import Batch
from rnnlab.tasks.streams import IndexedTask, derive_generator

__all__ = ["VariableLengthTask", "bucketed_batches"]


def bucketed_batches(
    lengths: torch.Tensor, batch_size: int, generator: torch.Generator, pool_batches: int = 50
) -> list[torch.Tensor]:
    """One epoch's batches of example indices, each of similar lengths, in random order.

    Args:
        lengths: ``(N,)`` length of every example.
        batch_size: examples per batch (the last batch of the last pool may be short).
        generator: the only source of randomness (seed it from ``(seed, epoch)``).
        pool_batches: batches per pool of examples sorted together (1: no bucketing).

    Returns:
        ``ceil(N / batch_size)`` int64 index tensors that together hold every index once.
    """
    n = len(lengths)
    order = torch.randperm(n, generator=generator)  # (N,)
    pool = batch_size * pool_batches
    batches: list[torch.Tensor] = []
    for start in range(0, n, pool):
        members = order[start : start + pool]
        members = members[torch.argsort(lengths[members], stable=True)]
        batches.extend(members[k : k + batch_size] for k in range(0, len(members), batch_size))
    shuffle = torch.randperm(len(batches), generator=generator)
    return [batches[i] for i in shuffle.tolist()]


class VariableLengthTask(IndexedTask):
    """An :class:`IndexedTask` whose examples vary in length: bucketed training batches, evaluation batches
    of sequences sorted by length (metrics are sums, so the order does not change them).

    Subclasses implement :meth:`example_lengths` besides :meth:`load_split` and :meth:`collate`.
    """

    pool_batches: ClassVar[int] = 50  # batches per pool sorted by length (see bucketed_batches)

    @abc.abstractmethod
    def example_lengths(self, split: str) -> torch.Tensor:
        """``(N,)`` int64: the length of every example of ``split`` (what a batch pads to)."""

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        per_epoch = self.steps_per_epoch(batch_size)
        lengths = self.example_lengths("train")
        step, epoch, batches = start_step, -1, []
        while True:
            this_epoch, k = divmod(step, per_epoch)
            if this_epoch != epoch:
                epoch = this_epoch
                generator = derive_generator("bucketed-epoch", seed, epoch)
                batches = bucketed_batches(lengths, batch_size, generator, self.pool_batches)
            yield self.collate("train", batches[k])
            step += 1

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        order = torch.argsort(self.example_lengths(split), stable=True)
        for start in range(0, len(order), batch_size):
            yield self.collate(split, order[start : start + batch_size])
