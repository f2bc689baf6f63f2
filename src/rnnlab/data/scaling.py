"""The one scaler: per-channel standardisation, fitted on training data only.

Loaders fit it on the training split and apply it to every split, so nothing about the validation or test data
reaches the inputs; ``to_dict``/``from_dict`` let a run directory store it, and ``inverse_transform`` brings
predictions back to the data's units.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rnnlab.errors import InputError


@dataclass(frozen=True)
class Standardizer:
    """``(x - mean) / scale`` per channel (the last axis). ``mean``, ``scale``: ``(C,) float64``.

    A channel that is constant on the training data gets ``scale = 1`` (it is centred, not blown up).
    """

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, data: np.ndarray | Sequence[np.ndarray]) -> Standardizer:
        """Fit on ``(..., C)`` values, or on a list of ``(T_i, C)`` arrays (all their rows pooled).

        NaN values are ignored; a channel with no finite value raises InputError.
        """
        arrays = list(data) if isinstance(data, (list, tuple)) else [data]
        if not arrays:
            raise InputError("cannot fit a scaler on no rows; the training split is empty")
        rows = np.concatenate([np.asarray(a, np.float64).reshape(-1, np.shape(a)[-1]) for a in arrays])
        if rows.shape[0] == 0:
            raise InputError("cannot fit a scaler on no rows; the training split is empty")
        finite = np.isfinite(rows)
        if not finite.any(axis=0).all():
            channel = int(np.flatnonzero(~finite.any(axis=0))[0])
            raise InputError(f"cannot fit a scaler: channel {channel} has no finite value in the training data")
        mean = np.nanmean(rows, axis=0)
        std = np.nanstd(rows, axis=0)
        return cls(mean=mean, scale=np.where(std > 0, std, 1.0))

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(..., C)`` -> standardised ``(..., C)``, same dtype as ``x`` if floating, else float64."""
        x = np.asarray(x)
        if x.shape[-1] != len(self.mean):
            raise InputError(f"expected {len(self.mean)} channels in the last axis, got shape {x.shape}")
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return ((x - self.mean) / self.scale).astype(dtype, copy=False)

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        """Standardised ``(..., C)`` -> original units ``(..., C)``."""
        x = np.asarray(x)
        if x.shape[-1] != len(self.mean):
            raise InputError(f"expected {len(self.mean)} channels in the last axis, got shape {x.shape}")
        dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
        return (x * self.scale + self.mean).astype(dtype, copy=False)

    def to_dict(self) -> dict[str, list[float]]:
        """A JSON-ready dict: ``{"mean": [...], "scale": [...]}``."""
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, state: dict[str, list[float]]) -> Standardizer:
        """The inverse of :meth:`to_dict`."""
        try:
            mean = np.asarray(state["mean"], np.float64)
            scale = np.asarray(state["scale"], np.float64)
        except (KeyError, TypeError, ValueError):
            raise InputError(f"expected a scaler dict with 'mean' and 'scale' lists, got {state!r:.80}") from None
        if mean.shape != scale.shape or mean.ndim != 1:
            raise InputError(f"scaler 'mean' and 'scale' must be lists of one length, got {mean.shape}, {scale.shape}")
        return cls(mean=mean, scale=scale)
