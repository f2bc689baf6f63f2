"""Regularisers of recurrent layers, applied by :class:`rnnlab.layers.recurrent.Recurrent`.

- ``dropout`` (as torch): dropout on the outputs of every layer but the last, fresh mask at every step.
- ``variational_dropout`` (Gal & Ghahramani 2016; AWD-LSTM's locked dropout): one mask per sequence and
  feature, shared across time, on the input of every layer and on the output of the last one.
- ``zoneout`` (Krueger et al. 2016): see :mod:`rnnlab.engine.zoneout`.
- ``weight_drop`` (Wan et al. 2013, DropConnect; AWD-LSTM): dropout on the elements of ``weight_hh``,
  one mask per forward call, shared by all time steps.

All are active in training mode only; in evaluation dropout and weight drop are the identity and zoneout
uses its expectation. Each rate must be in ``[0, 1)`` (``dropout`` in ``[0, 1]`` as torch).
"""

from __future__ import annotations

from torch import Tensor


def locked_dropout(x: Tensor, rate: float, training: bool) -> Tensor:
    """``x`` ``(T, B, F)`` times a ``(1, B, F)`` Bernoulli(1 - rate) mask scaled by ``1 / (1 - rate)``."""
    if not training or rate == 0.0:
        return x
    mask = x.new_empty(1, x.shape[1], x.shape[2]).bernoulli_(1.0 - rate) / (1.0 - rate)
    return x * mask
