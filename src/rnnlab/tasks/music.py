"""Polyphonic music modelling (Boulanger-Lewandowski et al. 2012; Chung et al. 2014; Bai et al. 2018).

A piece is a piano roll ``(T, 88)`` of 0/1 (:mod:`rnnlab.data.music`). The model reads steps ``0..T-2`` and
predicts, at every step, the 88 keys of the next step as independent Bernoulli variables (one sigmoid per key).

The metric is the published one: **negative log-likelihood per time step, in nats**, the Bernoulli NLL summed
over the 88 keys, averaged over every predicted time step of every sequence of the split (total NLL of the split
divided by its number of predicted steps, so a long piece weighs by its length). As in Bai, Kolter & Koltun's
code (``locuslab/TCN``, ``poly_music/music_test.py``) the first step of each piece is given, not predicted: a
piece of ``T`` steps contributes ``T - 1`` predictions. Published figures on JSB Chorales: LSTM 8.45, GRU 8.43,
tanh RNN 8.91 (Bai et al. 2018); Chung et al. (2014): 8.67 / 8.54 / 9.19.

Data: the user's JSON file of the Boulanger-Lewandowski format (``--data FILE.json``, its own split), or by
default the Bach chorales of music21's corpus, converted once and cached. The baseline is the independent
Bernoulli model: each key sounds with its frequency in the training frames (add-one smoothed), whatever the past.

``generate`` samples a new piece step by step, carrying the layer's state, from the first chord of a training
piece; ``write_generated`` saves it as a MIDI file.

Defaults (``Music.defaults`` and the dropout options) are tuned on JSB Chorales-sized data (a few hundred pieces
of ~60 steps): 256 units, DropConnect 0.5 on the recurrent weights, input/output dropout 0.2/0.5, 1,500 steps
of 8 pieces with the learning rate cut tenfold after 900. A larger file wants less regularisation and a longer
budget; on Nottingham (694 pieces of ~250 steps): ``--input-dropout 0.1 --output-dropout 0.3 --weight-drop 0.2
--steps 6000 --schedule cosine --eval-every 300`` (``--weight-drop`` replaces the default 0.5; other layer options
add to it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.data.music import N_KEYS, PolyphonicData, load_polyphonic
from rnnlab.errors import InputError
from rnnlab.tasks.base import Batch, MetricSums, TaskOption, register_task
from rnnlab.tasks.heads import EveryStep, unpack
from rnnlab.tasks.search import Float, Param
from rnnlab.tasks.streams import derive_generator
from rnnlab.tasks.variable import VariableLengthTask

__all__ = ["Music", "bernoulli_nll_nats", "key_frequencies"]


def bernoulli_nll_nats(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """The Bernoulli NLL summed over keys, per time step: ``(T, B, K)`` logits and 0/1 targets -> ``(T, B)``
    nats, zero where ``mask (T, B)`` is false."""
    nll = F.binary_cross_entropy_with_logits(logits, targets, reduction="none").sum(dim=-1)  # (T, B)
    return nll if mask is None else nll * mask


def key_frequencies(rolls: list[np.ndarray]) -> torch.Tensor:
    """``(88,)`` probability of each key sounding in the frames of ``rolls``, add-one smoothed
    (``(count + 1) / (frames + 2)``: a key never heard in training still has a finite likelihood)."""
    frames = sum(len(r) for r in rolls)
    counts = np.sum([r.sum(axis=0) for r in rolls], axis=0)  # (88,)
    return torch.tensor((counts + 1.0) / (frames + 2.0), dtype=torch.float32)


class _Dropout(nn.Module):
    """Dropout applied before an inner module (``p = 0``: the inner module alone)."""

    def __init__(self, p: float, inner: nn.Module | None = None) -> None:
        super().__init__()
        self.dropout = nn.Dropout(p) if p > 0 else nn.Identity()
        self.inner = inner if inner is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(self.dropout(x))


class _DropoutEveryStep(EveryStep):
    """:class:`EveryStep` with dropout on the layer's output before the linear map."""

    def __init__(self, features: int, out_features: int, p: float) -> None:
        super().__init__(features, out_features)
        self.dropout = nn.Dropout(p) if p > 0 else nn.Identity()

    def forward(self, output):
        padded, _ = unpack(output)  # (T, B, F)
        return self.linear(self.dropout(padded))  # (T, B, 88)


@register_task
class Music(VariableLengthTask):
    """Next-step prediction of piano rolls: 88 sigmoid outputs, NLL per time step in nats."""

    name = "music"
    summary = (
        "polyphonic music (88-key piano rolls): next-step NLL per time step in nats; "
        "default music21's Bach chorales, or --data FILE.json (JSB Chorales, Nottingham, ...)"
    )
    options = (
        TaskOption("data", str, "", "JSON file in the Boulanger-Lewandowski format (default: Bach chorales)"),
        TaskOption("steps_per_quarter", int, 1, "built-in chorales: time steps per quarter note", choices=(1, 2, 4)),
        TaskOption("input_dropout", float, 0.2, "dropout on the input piano roll (training only)", min_value=0.0),
        TaskOption("output_dropout", float, 0.5, "dropout on the recurrent output before the sigmoid layer",
                   min_value=0.0),
    )
    monitor = "nll_nats"
    higher_is_better = False
    allows_bidirectional = False  # the next step must not be seen
    # The budget that beats the published JSB Chorales figures on two shared CPU cores in under 2 minutes
    # (test NLL, seeds 0/1: LSTM 8.33/8.31, GRU 8.39/8.37, tanh RNN 8.83 nats): DropConnect on the recurrent
    # weights (weight_drop, Merity et al. 2018) and the input/output dropout of the options hold off
    # over-fitting, and the learning rate drops tenfold after 900 steps (about 30 epochs of JSB Chorales).
    defaults = {
        "hidden_size": 256,
        "steps": 1500,
        "batch_size": 8,
        "lr": 3e-3,
        "clip_norm": 5.0,
        "schedule": "step",
        "step_every": 900,
        "step_gamma": 0.1,
        "eval_every": 30,
        "patience": 15,
        "eval_batch_size": 128,
        "layer_options": {"weight_drop": 0.5},
    }
    input_size = N_KEYS

    @classmethod
    def search_space(cls) -> dict[str, Param]:
        """The generic space (learning rate, hidden size) and the regularisers that decide the outcome on data
        sets of a few hundred pieces: DropConnect on the recurrent weights and dropout before the sigmoids."""
        return {**super().search_space(), "weight_drop": Float(0.0, 0.6), "output_dropout": Float(0.0, 0.6)}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for key in ("input_dropout", "output_dropout"):
            if not self.settings[key] < 1.0:
                raise InputError(f"--{key.replace('_', '-')} expects a value in [0, 1), got {self.settings[key]}")
        self._music: PolyphonicData | None = None
        if self.settings["data"]:
            _ = self.music  # read and check the user's file now: a bad file fails before any run directory exists

    # ------------------------------------------------------------------------------------------------ data
    @property
    def music(self) -> PolyphonicData:
        """The piano rolls of every split (read on first use)."""
        if self._music is None:
            path = self.settings["data"] or None
            music = load_polyphonic(path, steps_per_quarter=self.settings["steps_per_quarter"])
            for split in ("train", "valid", "test"):
                for i, roll in enumerate(getattr(music, split)):
                    if len(roll) < 2:
                        source = Path(path).name if path else music.name
                        raise InputError(
                            f"{source}: {split}[{i}] has {len(roll)} time step; next-step prediction needs at least 2"
                        )
            self._music = music
        return self._music

    @property
    def steps_per_quarter(self) -> int:
        """Time steps per quarter note of the data (1 when a file does not say: the standard files' grid)."""
        return self.music.steps_per_quarter or 1

    def load_split(self, split: str) -> list[torch.Tensor]:
        return [torch.from_numpy(roll) for roll in getattr(self.music, split)]  # [(T_i, 88)]

    def example_lengths(self, split: str) -> torch.Tensor:
        return torch.tensor([len(r) for r in self.data(split)], dtype=torch.long)

    def collate(self, split: str, indices: torch.Tensor) -> Batch:
        rolls = [self.data(split)[i] for i in indices.tolist()]
        lengths = torch.tensor([len(r) - 1 for r in rolls], dtype=torch.long)  # predicted steps per piece
        T, B = int(lengths.max()), len(rolls)
        inputs = torch.zeros(T, B, N_KEYS)
        targets = torch.zeros(T, B, N_KEYS)
        for b, roll in enumerate(rolls):
            inputs[: len(roll) - 1, b] = roll[:-1]
            targets[: len(roll) - 1, b] = roll[1:]
        mask = torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)  # (T, B)
        return Batch(inputs=inputs, targets=targets, lengths=lengths, mask=mask)

    # ----------------------------------------------------------------------------------------------- model
    def build_encoder(self) -> nn.Module:
        return _Dropout(self.settings["input_dropout"])

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        """Dropout, then a linear map to 88 logits per step, its bias starting at the logits of the training
        key frequencies (the baseline), so training starts from the baseline's NLL instead of ``88 log 2``."""
        head = _DropoutEveryStep(features, N_KEYS, self.settings["output_dropout"])  # (T, B, 88) logits
        with torch.no_grad():
            head.linear.bias.copy_(torch.logit(key_frequencies(self.music.train)))
        return head

    # ------------------------------------------------------------------------------------ loss and metrics
    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        """Mean over predicted steps of the NLL summed over keys: the metric itself."""
        nll = bernoulli_nll_nats(outputs, batch.targets, batch.mask)  # (T, B)
        return nll.sum() / batch.mask.sum()

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        nll = bernoulli_nll_nats(outputs, batch.targets, batch.mask)
        return {"nll_nats": (nll.sum().item(), batch.mask.sum().item())}

    def baseline(self) -> dict[str, float]:
        """Independent Bernoulli keys with their training frequencies."""
        logits = torch.logit(key_frequencies(self.music.train))  # (88,)
        return self.evaluate_predictor(lambda batch: logits.expand_as(batch.targets))

    # -------------------------------------------------------------------------------------------- generate
    def generate(
        self, model: nn.Module, *, length: int = 64, seed: int = 0, temperature: float = 1.0, **kwargs: Any
    ) -> np.ndarray:
        """Sample a piece of ``length`` steps, ``(length, 88) float32`` of 0/1.

        Step 0 is the first chord of a training piece drawn with ``seed``; every later step samples each key
        from the model's sigmoid (logits divided by ``temperature``) given the steps before, carrying the
        layer's state one step at a time.
        """
        if kwargs:
            raise InputError(f"task music does not take {', '.join(sorted(kwargs))} for generate")
        if not isinstance(length, int) or length < 1:
            raise InputError(f"--length expects a positive number of time steps, got {length!r}")
        if not temperature > 0:
            raise InputError(f"--temperature expects a value > 0, got {temperature!r}")
        generator = derive_generator("music-generate", seed)
        train = self.data("train")
        first = train[int(torch.randint(len(train), (1,), generator=generator))][0]  # (88,)
        roll = torch.zeros(length, N_KEYS)
        roll[0] = first
        was_training = model.training
        model.eval()
        state = None
        try:
            with torch.no_grad():
                for t in range(1, length):
                    logits, state = model(roll[t - 1].view(1, 1, N_KEYS), state)  # (1, 1, 88)
                    probs = torch.sigmoid(logits.view(N_KEYS) / temperature)
                    roll[t] = torch.bernoulli(probs, generator=generator)
        finally:
            model.train(was_training)
        return roll.numpy()

    def write_generated(self, generated: np.ndarray, path: str | Path) -> Path:
        """Save a generated piano roll as a MIDI file at ``path`` (one step per ``1/steps_per_quarter``
        quarter note, at 100 quarter notes per minute)."""
        from rnnlab.data.midi import write_midi

        return write_midi(generated, path, steps_per_quarter=self.steps_per_quarter)
