"""Next-frame video prediction on Moving MNIST: from 10 frames of 64x64, the next 10 (Srivastava et al. 2015;
Shi et al. 2015).

Data: :func:`rnnlab.data.video.moving_mnist` over the mnist task's real digits: fresh training sequences every
step from the training digits, fixed validation (128) and test (500) sequences from the validation and test
digits.

Model (Shi et al.'s patch trick): each 64x64 frame is cut into 4x4 patches, a ``(16, 16, 16)`` map
(``pixel_unshuffle``), plus one channel that is 1 on observed frames and 0 on the frames to predict; a
convolutional recurrent layer of the cell's family (``lstm``: :class:`rnnlab.ConvLSTM`; ``gru``:
:class:`rnnlab.ConvGRU`; ``rnn``: :class:`rnnlab.ConvRNN`) reads the 10 observed frames, then 10 blank ones (the
model never sees a frame it must predict, nor its own predictions); a 1x1 convolution of its state at each of the
last 10 steps gives the 16 pixel logits of every patch, put back in place (``pixel_shuffle``).

Loss and metrics, per predicted frame as in the papers: ``bce_per_frame_nats``, the binary cross-entropy of the
pixel intensities in [0, 1] summed over the 4,096 pixels (Shi et al. 2015 report the sum over the 10 frames of a
sequence: ConvLSTM 3,670.85, i.e. 367.1 per frame, on their 10,000 test sequences of the full MNIST), and
``mse_per_frame``, the summed squared error of the intensities. Baseline: the last observed frame copied to every
future step, blended with the mean intensity of training frames so that its cross-entropy is finite (the blend
weight chosen on the validation sequences); ``mean_frame_*``: the mean intensity everywhere.

``save_predictions`` writes ``predictions.png`` into the run directory: for 3 test sequences, rows of the 10
observed frames, the 10 true next frames and the 10 predicted ones.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from rnnlab.data.video import FRAME_SIDE, mnist_digits, moving_mnist
from rnnlab.errors import InputError
from rnnlab.layers import ConvGRU, ConvLSTM, ConvRNN, default_variant
from rnnlab.tasks.base import Batch, MetricSums, TaskOption, register_task
from rnnlab.tasks.streams import SyntheticTask, derive_generator

__all__ = ["Video"]

FRAMES_IN = 10
FRAMES_OUT = 10
PATCH = 4
PIXELS = FRAME_SIDE * FRAME_SIDE
CONV_LAYERS = {"lstm": ConvLSTM, "gru": ConvGRU, "rnn": ConvRNN}
BLENDS = (0.01, 0.03, 0.1, 0.2, 0.3)  # weights of the mean intensity in the copy baseline, chosen on valid


class _FrameEncoder(nn.Module):
    """``(T, B, 1, 64, 64)`` frames -> ``(T, B, 17, 16, 16)``: 4x4 patches as channels, and the observed flag."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        T, B = frames.shape[:2]
        patches = F.pixel_unshuffle(frames.flatten(0, 1), PATCH).unflatten(0, (T, B))  # (T, B, 16, 16, 16)
        observed = (torch.arange(T, device=frames.device) < FRAMES_IN).to(frames.dtype)  # (T,)
        flag = observed.view(T, 1, 1, 1, 1).expand(T, B, 1, *patches.shape[-2:])  # (T, B, 1, 16, 16)
        return torch.cat([patches, flag], dim=2)


class _FrameDecoder(nn.Module):
    """The layer's maps at the last 10 steps ``(10, B, K, 16, 16)`` -> pixel logits ``(10, B, 64, 64)``."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.to_patches = nn.Conv2d(features, PATCH * PATCH, kernel_size=1)

    def forward(self, output: torch.Tensor) -> torch.Tensor:
        future = output[-FRAMES_OUT:]  # (10, B, K, 16, 16)
        T, B = future.shape[:2]
        patches = self.to_patches(future.flatten(0, 1))  # (10 B, 16, 16, 16)
        return F.pixel_shuffle(patches, PATCH).view(T, B, FRAME_SIDE, FRAME_SIDE)  # (10, B, 64, 64)


@register_task
class Video(SyntheticTask):
    """Moving MNIST next-frame prediction with a convolutional recurrent layer; cross-entropy per frame."""

    name = "video"
    summary = (
        "Moving MNIST (2 real MNIST digits bouncing in 64x64): the next 10 frames from 10, with a ConvLSTM "
        "(ConvGRU, ConvRNN for gru, rnn); cross-entropy per frame beside copying the last frame"
    )
    options = (
        TaskOption("digits", int, 2, "digits per sequence", min_value=1),
        TaskOption("kernel_size", int, 3, "side of the convolution kernels (odd; Shi et al. use 5)", min_value=1),
    )
    monitor = "bce_per_frame_nats"
    higher_is_better = False
    allows_bidirectional = False  # the layer reads the observed frames forward, then predicts
    eval_sizes = {"train": 128, "valid": 128, "test": 500}
    epoch_size = 10_000
    defaults = {
        "hidden_size": 16,
        "steps": 1500,
        "batch_size": 16,
        "lr": 2e-3,
        "clip_norm": 1.0,
        "eval_every": 100,
        "eval_batch_size": 64,
        "schedule": "cosine",
    }
    input_size = PATCH * PATCH + 1

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if self.settings["kernel_size"] % 2 == 0:
            raise InputError(f"--kernel-size must be odd (frames keep their size), got {self.settings['kernel_size']}")
        self._digits: dict[str, np.ndarray] = {}

    # --------------------------------------------------------------------------------------------------- data
    def digits(self, split: str) -> np.ndarray:
        """The digit images that sequences of ``split`` are made of."""
        if split not in self._digits:
            self._digits[split] = mnist_digits(split)
        return self._digits[split]

    def draw_split(self, split: str, n: int, generator: torch.Generator) -> TensorDataset:
        """``n`` sequences ``(n, 20, 64, 64) uint8`` of the digits of ``split``."""
        frames = moving_mnist(self.digits(split), n, generator, frames=FRAMES_IN + FRAMES_OUT,
                              n_digits=self.settings["digits"])
        return TensorDataset(torch.from_numpy(frames))

    def draw(self, n: int, generator: torch.Generator) -> TensorDataset:
        return self.draw_split("train", n, generator)

    def load_split(self, split: str) -> TensorDataset:
        # fixed sets from the split's own digits, never from the run's seed
        return self.draw_split(split, self.eval_sizes[split], derive_generator("fixed", self.name, split))

    def make_batch(self, frames: torch.Tensor) -> Batch:
        video = frames.transpose(0, 1).float().div_(255.0)  # (20, B, 64, 64) in [0, 1]
        inputs = video.clone()
        inputs[FRAMES_IN:] = 0.0  # the frames to predict are never shown
        return Batch(inputs=inputs.unsqueeze(2), targets=video[FRAMES_IN:])  # (20, B, 1, 64, 64), (10, B, 64, 64)

    # -------------------------------------------------------------------------------------------------- model
    def build_encoder(self) -> nn.Module:
        return _FrameEncoder()  # (T, B, 17, 16, 16)

    def build_layer(self, cell: str, input_size: int, hidden_size: int, num_layers: int = 1,
                    **options: Any) -> nn.Module:
        variant = options.pop("variant", None)
        if cell not in CONV_LAYERS:
            raise InputError(f"task video has convolutional layers of the cells {', '.join(CONV_LAYERS)}; got {cell!r}")
        if variant not in (None, default_variant(cell)):
            raise InputError(f"task video takes the vanilla {cell} only (convolutional); got variant {variant!r}")
        unknown = sorted(set(options) - {"dropout", "bidirectional", "forget_bias"})
        if unknown:
            raise InputError(f"the convolutional layers of task video do not take {', '.join(unknown)}")
        return CONV_LAYERS[cell](input_size, hidden_size, num_layers, kernel_size=self.settings["kernel_size"],
                                 **options)

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        return _FrameDecoder(features)  # (10, B, 64, 64) logits

    # -------------------------------------------------------------------------------------- loss and metrics
    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(outputs, batch.targets)

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        return _frame_sums(F.binary_cross_entropy_with_logits(outputs, batch.targets, reduction="none"),
                           torch.sigmoid(outputs), batch.targets)

    def baseline(self) -> dict[str, float]:
        """The copied last frame (blended with the mean intensity; the blend chosen on valid) under the plain
        names, and the mean intensity everywhere as ``mean_frame_<metric>``."""
        mean = float(self.data("train").tensors[0].double().mean() / 255.0)

        def copy_last(blend: float):
            def predict(batch: Batch) -> torch.Tensor:
                last = batch.inputs[FRAMES_IN - 1, :, 0]  # (B, 64, 64)
                p = (1 - blend) * last + blend * mean
                return torch.logit(p).expand(FRAMES_OUT, *last.shape)  # (10, B, 64, 64) logits
            return predict

        best = min(BLENDS, key=lambda b: self.evaluate_predictor(copy_last(b), "valid", 100)["bce_per_frame_nats"])
        out = self.evaluate_predictor(copy_last(best), "test", 100)
        out["copy_blend"] = best
        logit = float(np.log(mean / (1 - mean)))
        flat = self.evaluate_predictor(lambda batch: torch.full_like(batch.targets, logit), "test", 100)
        out.update({f"mean_frame_{k}": v for k, v in flat.items()})
        return out

    # ---------------------------------------------------------------------------------------------- samples
    def save_predictions(self, model: nn.Module, directory: str | Path) -> None:
        """``predictions.png``: for 3 test sequences, the observed, the true and the predicted frames."""
        from PIL import Image

        batch = self.collate("test", torch.arange(3))
        was_training = model.training
        model.eval()
        with torch.no_grad():
            logits, _ = model(batch.inputs.to(next(model.parameters()).device))
        model.train(was_training)
        observed = batch.inputs[:FRAMES_IN, :, 0]  # (10, 3, 64, 64)
        rows = []
        for s in range(3):
            for frames in (observed[:, s], batch.targets[:, s], torch.sigmoid(logits[:, s].cpu())):
                rows.append(torch.cat(list(frames), dim=1))  # (64, 640)
        strip = torch.cat(rows, dim=0)  # (9 * 64, 640)
        image = (strip.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
        Image.fromarray(image).save(Path(directory) / "predictions.png")


def _frame_sums(bce: torch.Tensor, probabilities: torch.Tensor, targets: torch.Tensor) -> MetricSums:
    """Per-frame sums over pixels of ``(10, B, 64, 64)`` pixel cross-entropies and squared errors."""
    frames = bce.shape[0] * bce.shape[1]
    return {
        "bce_per_frame_nats": (bce.sum().item(), frames),
        "mse_per_frame": ((probabilities - targets).pow(2).sum().item(), frames),
    }
