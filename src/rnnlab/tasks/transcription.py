"""What the CTC transcription tasks share (``transcribe``: spoken digits; ``handwriting``: handwritten digits):
strings of 1..N real items laid end to end in time, a recurrent layer reading them frame by frame, a CTC head
(:class:`rnnlab.layers.CTCHead`) and its loss, greedy decoding, and the label error rate.

A string of ``k`` digits is ``k`` items of the split's pool (recordings, images) drawn uniformly, joined with
gaps of a few *gap frames* (silence, blank columns) of random length. Training strings are drawn afresh for every
step from ``(seed, step)`` out of the training pool; the validation and test strings are fixed (drawn once from
seeds that do not depend on the run) out of their own pools, so every test string is made of items never seen
in training.

Metrics: ``label_error_rate`` (monitored): the edit distance (substitutions, insertions, deletions) between the
greedy CTC transcription and the true string, summed over the strings and divided by the number of true labels;
``string_accuracy``: the fraction of strings transcribed exactly; ``ctc_nats``: the CTC loss of a string divided
by its length, averaged over strings. The baseline answers every string with the training strings' most frequent
digit, repeated for their median length.
"""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_sequence

from rnnlab.errors import InputError
from rnnlab.layers.ctc import CTCHead, ctc_greedy_decode, ctc_loss
from rnnlab.tasks.base import SPLITS, Batch, MetricSums, Task, TaskOption
from rnnlab.tasks.heads import unpack
from rnnlab.tasks.streams import derive_generator

__all__ = ["CTCHeadOnLayer", "DigitStringTask", "edit_distance", "transcription_sums"]

N_LABELS = 10  # the digits; CTC label d + 1 is digit d, 0 is the blank


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance: the fewest substitutions, insertions and deletions that turn ``a`` into ``b``."""
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def transcription_sums(hypotheses: Sequence[Sequence[int]], references: Sequence[Sequence[int]]) -> MetricSums:
    """``label_error_rate`` (edits, reference labels) and ``string_accuracy`` (exact strings, strings)."""
    edits = sum(edit_distance(h, r) for h, r in zip(hypotheses, references, strict=True))
    exact = sum(list(h) == list(r) for h, r in zip(hypotheses, references, strict=True))
    return {"label_error_rate": (edits, sum(len(r) for r in references)), "string_accuracy": (exact, len(references))}


class CTCHeadOnLayer(nn.Module):
    """:class:`~rnnlab.layers.CTCHead` on the layer's output (a tensor or a ``PackedSequence``, padded here):
    ``(T, B, F) -> (T, B, 11)`` log-probabilities of the blank and the ten digits."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.ctc = CTCHead(features, N_LABELS)

    def forward(self, output: Any) -> torch.Tensor:
        padded, _ = unpack(output)  # (T, B, F)
        return self.ctc(padded)  # (T, B, 11)


class DigitStringTask(Task):
    """Digit strings of real items, transcribed with CTC. Subclasses implement :meth:`pool` and
    :meth:`gap_frame`, and set ``input_size``."""

    options = (
        TaskOption("min_digits", int, 1, "fewest digits in a string", min_value=1),
        TaskOption("max_digits", int, 7, "most digits in a string", min_value=1),
        TaskOption("min_gap", int, 1, "fewest gap frames between two items", min_value=0),
        TaskOption("max_gap", int, 4, "most gap frames between two items", min_value=0),
    )
    monitor = "label_error_rate"
    higher_is_better = False
    eval_sizes: ClassVar[dict[str, int]] = {"train": 500, "valid": 500, "test": 1000}
    epoch_size: ClassVar[int] = 2000  # nominal strings per epoch (training strings are drawn afresh)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        s = self.settings
        if s["min_digits"] > s["max_digits"]:
            raise InputError(f"--min-digits ({s['min_digits']}) must not exceed --max-digits ({s['max_digits']})")
        if s["min_gap"] > s["max_gap"]:
            raise InputError(f"--min-gap ({s['min_gap']}) must not exceed --max-gap ({s['max_gap']})")
        self._fixed: dict[str, list[tuple[torch.Tensor, list[int]]]] = {}

    @abc.abstractmethod
    def pool(self, split: str) -> tuple[list[np.ndarray], np.ndarray]:
        """The real items of ``split``: ``([(T_i, input_size) float32], digits (N,) int64)``."""

    @abc.abstractmethod
    def gap_frame(self) -> np.ndarray:
        """``(input_size,)`` the frame that fills the gaps between items (silence, a blank column)."""

    def augment(self, item: np.ndarray, generator: torch.Generator) -> np.ndarray:
        """A training item as it enters a training string (``(T_i, input_size)``): unchanged here; a subclass
        may distort it with draws from ``generator``. Evaluation strings are never augmented."""
        return item

    # ---------------------------------------------------------------------------------------------- strings
    def draw_strings(self, split: str, n: int, generator: torch.Generator, *, augment: bool = False
                     ) -> list[tuple[torch.Tensor, list[int]]]:
        """``n`` strings of ``split``'s items: ``(frames (T, input_size), digits)`` each, drawn from ``generator``;
        with ``augment`` every item passes through :meth:`augment` (training strings)."""
        items, digits = self.pool(split)
        s = self.settings
        gap = torch.from_numpy(self.gap_frame()).unsqueeze(0)  # (1, input_size)
        lengths = torch.randint(s["min_digits"], s["max_digits"] + 1, (n,), generator=generator)
        strings = []
        for k in lengths.tolist():
            chosen = torch.randint(len(items), (k,), generator=generator).tolist()
            gaps = torch.randint(s["min_gap"], s["max_gap"] + 1, (k + 1,), generator=generator).tolist()
            pieces = [gap.expand(gaps[0], -1)]
            for i, g in zip(chosen, gaps[1:], strict=True):
                item = self.augment(items[i], generator) if augment else items[i]
                pieces += [torch.from_numpy(item), gap.expand(g, -1)]
            strings.append((torch.cat(pieces), [int(digits[i]) for i in chosen]))  # (T, input_size)
        return strings

    def fixed_strings(self, split: str) -> list[tuple[torch.Tensor, list[int]]]:
        """The fixed evaluation strings of ``split`` (the same for every run of these options)."""
        if split not in SPLITS:
            raise InputError(f"expected a split among {', '.join(SPLITS)}, got {split!r}")
        if split not in self._fixed:
            self._fixed[split] = self.draw_strings(split, self.eval_sizes[split],
                                                   derive_generator("fixed", self.name, split))
        return self._fixed[split]

    def collate(self, strings: Sequence[tuple[torch.Tensor, list[int]]]) -> Batch:
        """A packed batch: inputs ``PackedSequence`` of ``(T_i, input_size)``, targets the CTC labels (digit + 1)
        of every string concatenated, ``extra["target_lengths"]`` ``(B,)`` and ``extra["digits"]``."""
        frames = [f for f, _ in strings]
        digits = [d for _, d in strings]
        targets = torch.tensor([d + 1 for ds in digits for d in ds], dtype=torch.long)
        return Batch(inputs=pack_sequence(frames, enforce_sorted=False), targets=targets,
                     lengths=torch.tensor([len(f) for f in frames], dtype=torch.long),
                     extra={"target_lengths": torch.tensor([len(d) for d in digits], dtype=torch.long),
                            "digits": digits})

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        step = start_step
        while True:
            yield self.collate(self.draw_strings("train", batch_size, derive_generator("train", seed, step),
                                                 augment=True))
            step += 1

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        strings = self.fixed_strings(split)
        order = sorted(range(len(strings)), key=lambda i: len(strings[i][0]))
        for start in range(0, len(order), batch_size):
            yield self.collate([strings[i] for i in order[start:start + batch_size]])

    def steps_per_epoch(self, batch_size: int) -> int:
        return -(-self.epoch_size // batch_size)

    # ------------------------------------------------------------------------------------ head, loss, metrics
    def build_head(self, features: int, num_directions: int) -> nn.Module:
        return CTCHeadOnLayer(features)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return ctc_loss(outputs, batch.lengths, batch.targets, batch.extra["target_lengths"])

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        decoded = ctc_greedy_decode(outputs, batch.lengths)
        hypotheses = [[label - 1 for label in labels] for labels in decoded]
        sums = transcription_sums(hypotheses, batch.extra["digits"])
        per_label = ctc_loss(outputs, batch.lengths, batch.targets, batch.extra["target_lengths"])  # mean of strings
        B = len(batch.extra["digits"])
        sums["ctc_nats"] = (float(per_label) * B, B)
        return sums

    def baseline(self) -> dict[str, float]:
        """The training strings' most frequent digit, repeated for their median length, for every test string."""
        train = self.fixed_strings("train")
        digit = Counter(d for _, ds in train for d in ds).most_common(1)[0][0]
        length = int(np.median([len(ds) for _, ds in train]))
        references = [ds for _, ds in self.fixed_strings("test")]
        sums = transcription_sums([[digit] * length] * len(references), references)
        return {name: total / count for name, (total, count) in sums.items()}
