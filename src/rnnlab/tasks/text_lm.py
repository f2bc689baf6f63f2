"""Language-model pretraining of a text classifier's encoder (Dai & Le 2015; ULMFiT, Howard & Ruder 2018, in
small): the classifier's own embedding and recurrent layer learn to predict words from unlabelled texts before
they learn the labels.

:class:`EncoderPretraining` is a task that the one :class:`~rnnlab.train.Trainer` trains like any other (it is
not registered: a classification task hands it over through :meth:`~rnnlab.tasks.Task.pretraining_task`, and
the trainer copies the encoder and layer weights into the classifier before fine-tuning).

Objective. For a text of ids ``w_0..w_{L-1}`` and layer outputs ``h_t``, the forward half of ``h_t`` predicts
``w_{t+1}`` and, with a bidirectional layer, the backward half predicts ``w_{t-1}`` (each direction has read
only the words on its own side, so a single bidirectional layer is a pair of language models, as in ELMo; a
stack of bidirectional layers would see the target and is refused). The loss is the mean cross-entropy over
both directions' predictions.

Cost of the softmax. The output layer covers a capped vocabulary: the ``n_classes - 1`` most frequent ids of
the classifier's vocabulary (``<pad>`` and ``<unk>`` included, so ``<unk>`` is predicted like a word) and one
class for every rarer word. With 1,000 classes and a 128-unit layer the output layer costs about as much as
the recurrent layer; a full 20,000-word softmax would cost twenty times that.

Batches. A text longer than ``window`` tokens contributes a random window of ``window`` tokens, drawn afresh
each epoch; batches are packed sequences, as the classifier's. A seeded 5% of the texts (at most 500) is held
out: the best checkpoint on it is the one copied into the classifier.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from rnnlab.data.batching import pad_sequences
from rnnlab.errors import InputError
from rnnlab.tasks.base import Batch, MetricSums, Task
from rnnlab.tasks.heads import unpack, valid_steps
from rnnlab.tasks.streams import derive_generator

__all__ = ["EncoderPretraining", "LanguageModelHead", "lm_targets"]

#: share of the texts held out to pick the best pretraining checkpoint, and its cap
HELD_OUT_FRACTION = 0.05
HELD_OUT_MAX = 500


def lm_targets(ids: torch.Tensor, lengths: torch.Tensor, num_directions: int, n_classes: int) -> torch.Tensor:
    """The targets ``(N,)`` of :class:`LanguageModelHead`'s logits, in the same order: every next word of the
    padded ids ``(T, B)``, then (two directions) every previous word; ids ``>= n_classes - 1`` become the class
    ``n_classes - 1`` (a rare word)."""
    m = valid_steps(ids, lengths)[1:]  # (T-1, B): both t and t+1 are real
    parts = [ids[1:][m]]  # next words
    if num_directions == 2:
        parts.append(ids[:-1][m])  # previous words
    return torch.cat(parts).clamp(max=n_classes - 1)  # (N,)


class LanguageModelHead(nn.Module):
    """Word logits ``(N, n_classes)`` from the layer's output: ``Linear_f(dropout(forward half of h_t))`` at every
    real step ``t`` followed by a real one (predicting ``w_{t+1}``), then, with two directions,
    ``Linear_b(dropout(backward half of h_{t+1}))`` (predicting ``w_t``). Targets: :func:`lm_targets`."""

    def __init__(self, features: int, num_directions: int, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_directions = num_directions
        self.half = features // num_directions
        self.dropout = nn.Dropout(dropout)
        self.directions = nn.ModuleList(nn.Linear(self.half, n_classes) for _ in range(num_directions))

    def forward(self, output: Any) -> torch.Tensor:
        padded, lengths = unpack(output)  # (T, B, D*H)
        m = valid_steps(padded, lengths)[1:]  # (T-1, B)
        logits = [self.directions[0](self.dropout(padded[:-1, :, : self.half][m]))]  # (N_f, K)
        if self.num_directions == 2:
            logits.append(self.directions[1](self.dropout(padded[1:, :, self.half :][m])))  # (N_b, K)
        return torch.cat(logits)  # (N, K)


class EncoderPretraining(Task):
    """Bidirectional (or forward) word-level language modelling over unlabelled texts, with the encoder of a
    classification task (see the module docstring).

    Args:
        texts: one ``(L,) int64`` array of token ids per text (``<pad>`` = 0 never occurs), in the classifier's
            vocabulary.
        build_encoder: the classifier task's encoder factory (the same embedding and initialisation).
        input_size: features per step that the encoder gives.
        vocab_size: ids in the vocabulary; ``n_classes``: size of the capped output layer.
        window: the longest piece of a text in one batch.
        dropout: on the layer's outputs before the output layer.
        defaults: the training settings of the pretraining run (``steps``, ``lr``, ...), flat names.
        seed: draws the held-out texts.
    """

    name = "text_lm"
    summary = "language-model pretraining of a text classifier's encoder (not registered)"
    monitor = "nll_nats"
    higher_is_better = False

    def __init__(
        self,
        texts: Sequence[np.ndarray],
        build_encoder: Callable[[], nn.Module],
        input_size: int,
        vocab_size: int,
        *,
        n_classes: int = 1000,
        window: int = 64,
        dropout: float = 0.0,
        defaults: dict[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        texts = [np.asarray(t, dtype=np.int64) for t in texts if len(t) >= 2]
        if len(texts) < 2:
            raise InputError("language-model pretraining needs at least 2 texts of 2 or more tokens")
        if n_classes < 2 or window < 2:
            raise InputError(f"pretraining needs at least 2 output classes and a window of 2, got {n_classes}, "
                             f"{window}")
        self.input_size = input_size
        self.n_classes = min(n_classes, vocab_size + 1)
        self.window = window
        self.dropout = dropout
        self.defaults = dict(defaults or {})
        self._build_encoder = build_encoder
        self.num_directions = 1
        held = min(HELD_OUT_MAX, max(1, int(len(texts) * HELD_OUT_FRACTION)))
        order = torch.randperm(len(texts), generator=derive_generator("pretrain-held-out", seed)).tolist()
        self.held_out = [texts[i] for i in order[:held]]
        self.texts = [texts[i] for i in order[held:]]

    # -------------------------------------------------------------------------------------------------- data
    def steps_per_epoch(self, batch_size: int) -> int:
        return math.ceil(len(self.texts) / batch_size)

    def _collate(self, pieces: list[np.ndarray]) -> Batch:
        ids, lengths = pad_sequences(pieces, pad_id=0)  # (B, L), (B,)
        ids_t, lengths_t = torch.from_numpy(ids), torch.from_numpy(lengths)
        padded = ids_t.t().contiguous()  # (T, B)
        return Batch(inputs=pack_padded_sequence(padded, lengths_t, enforce_sorted=False), targets=padded,
                     lengths=lengths_t)

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        per_epoch = self.steps_per_epoch(batch_size)
        step, epoch, order, starts = start_step, -1, [], []
        while True:
            this_epoch, k = divmod(step, per_epoch)
            if this_epoch != epoch:
                epoch = this_epoch
                g = derive_generator("pretrain-epoch", seed, epoch)
                order = torch.randperm(len(self.texts), generator=g).tolist()
                room = [max(len(t) - self.window, 0) + 1 for t in self.texts]
                starts = [int(torch.randint(r, (1,), generator=g)) for r in room]
            index = order[k * batch_size : (k + 1) * batch_size]
            yield self._collate([self.texts[i][starts[i] : starts[i] + self.window] for i in index])
            step += 1

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        """The held-out texts (their first ``window`` tokens), whatever the split."""
        for start in range(0, len(self.held_out), batch_size):
            yield self._collate([t[: self.window] for t in self.held_out[start : start + batch_size]])

    # ------------------------------------------------------------------------------------------------- model
    def build_encoder(self) -> nn.Module:
        return self._build_encoder()

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        self.num_directions = num_directions
        return LanguageModelHead(features, num_directions, self.n_classes, self.dropout)

    def _targets(self, batch: Batch) -> torch.Tensor:
        assert batch.lengths is not None
        return lm_targets(batch.targets, batch.lengths, self.num_directions, self.n_classes).to(batch.targets.device)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs, self._targets(batch))

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        targets = self._targets(batch)
        return {"nll_nats": (F.cross_entropy(outputs, targets, reduction="sum").item(), targets.numel())}

    def baseline(self) -> dict[str, float]:
        """The unigram model of the capped classes (training texts' frequencies, add-one smoothed)."""
        counts = torch.ones(self.n_classes, dtype=torch.float64)
        for t in self.texts:
            counts += torch.bincount(torch.from_numpy(t).clamp(max=self.n_classes - 1), minlength=self.n_classes)
        log_probs = torch.log(counts / counts.sum()).float()  # (K,)
        return self.evaluate_predictor(lambda batch: log_probs.expand(len(self._targets(batch)), -1))
