"""The copy-memory task (Hochreiter & Schmidhuber 1997, in the setting of Arjovsky et al. 2016).

The alphabet has 10 categories: 0 is the blank, 1..8 are data symbols, 9 is the delimiter. An input sequence
of ``T + 2K`` steps (``K = 10`` by default) holds ``K`` symbols drawn uniformly from 1..8, then ``T - 1``
blanks, the delimiter, and ``K`` blanks. The target is blank for the first ``T + K`` steps and then the ``K``
symbols, in order: after the delimiter the model must recall what it saw ``T`` steps earlier.

A model that outputs blanks and then guesses uniformly among the 8 symbols has a cross-entropy of
``K ln 8 / (T + 2K)`` nats per step, the chance baseline every result is compared with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from rnnlab.layers import has_keep_gate, length_options
from rnnlab.tasks.base import Batch, MetricSums, TaskOption, register_task
from rnnlab.tasks.heads import EveryStep
from rnnlab.tasks.streams import SyntheticTask

__all__ = ["CopyMemory"]

BLANK, DELIMITER, N_SYMBOLS, N_CATEGORIES = 0, 9, 8, 10


@register_task
class CopyMemory(SyntheticTask):
    """Copy memory: recall ``K`` symbols after ``T`` blanks; per-step cross-entropy."""

    name = "copy"
    summary = "copy memory: recall 10 symbols of 8 after T blanks (cross-entropy; chance 10 ln 8/(T+20))"
    options = (
        TaskOption("seq_len", int, 100, "number of blanks T between the symbols and their recall", min_value=1),
        TaskOption("copy_len", int, 10, "number of symbols K to remember", min_value=1),
    )
    monitor = "nll_nats"
    higher_is_better = False
    # Measured at T=100 on two shared CPU cores (chance 0.173 nats), with the chrono initialisation of
    # cell_defaults: GRU 0.018 nats, 91% of the symbols recalled (4000 steps, 243 s); LSTM 0.080 nats, 62%
    # (368 s); a tanh RNN stays at chance. Without chrono: GRU 0.069 nats after 4000 steps, LSTM 0.147 after 3000.
    defaults = {
        "hidden_size": 128,
        "steps": 4000,
        "batch_size": 64,
        "lr": 1e-2,
        "clip_norm": 1.0,
        "schedule": "cosine",
        "eval_every": 250,
    }
    input_size = N_CATEGORIES

    @classmethod
    def cell_defaults(cls, cell: str, variant: str | None, settings) -> dict:
        """Gated cells start with the chrono initialisation (Tallec & Ollivier 2018) for the task's span
        ``T + 2K``: the forget gates' time constants spread up to the delay to bridge. Without it an LSTM
        sits at the chance baseline for thousands of steps. ``--forget-bias`` replaces it."""
        span = settings["seq_len"] + 2 * settings["copy_len"]
        if not has_keep_gate(cell, variant):
            return {"layer_options": length_options(cell, span)}  # IndRNN: its bound for the span
        return {"layer_options": {"chrono_init": span}}

    def draw(self, n: int, generator: torch.Generator) -> TensorDataset:
        T, K = self.settings["seq_len"], self.settings["copy_len"]
        symbols = torch.randint(1, N_SYMBOLS + 1, (n, K), generator=generator)  # (n, K)
        inputs = torch.full((n, T + 2 * K), BLANK, dtype=torch.long)
        inputs[:, :K] = symbols
        inputs[:, T + K - 1] = DELIMITER
        targets = torch.full((n, T + 2 * K), BLANK, dtype=torch.long)
        targets[:, T + K :] = symbols
        return TensorDataset(inputs, targets)  # (n, T+2K) category ids each

    def make_batch(self, inputs: torch.Tensor, targets: torch.Tensor) -> Batch:
        one_hot = F.one_hot(inputs.t(), N_CATEGORIES).float()  # (T+2K, B, 10)
        return Batch(inputs=one_hot, targets=targets.t().contiguous())  # targets (T+2K, B)

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        return EveryStep(features, N_CATEGORIES)  # (T+2K, B, 10)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten())

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        """``nll_nats`` per step over the whole sequence; ``accuracy`` over the ``K`` recalled symbols."""
        K = self.settings["copy_len"]
        nll = F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten(), reduction="sum")
        recalled = outputs[-K:].argmax(dim=-1) == batch.targets[-K:]  # (K, B)
        return {
            "nll_nats": (nll.item(), batch.targets.numel()),
            "accuracy": (recalled.sum().item(), recalled.numel()),
        }

    def baseline(self) -> dict[str, float]:
        """Blanks until the delimiter's echo, then a uniform guess among the 8 symbols."""
        K = self.settings["copy_len"]

        def chance(batch: Batch) -> torch.Tensor:
            steps, size = batch.targets.shape
            logits = torch.full((steps, size, N_CATEGORIES), float("-inf"))
            logits[:-K, :, BLANK] = 0.0  # certain blank
            logits[-K:, :, 1 : N_SYMBOLS + 1] = 0.0  # uniform over the symbols
            return logits

        return self.evaluate_predictor(chance)
