"""Diagnostics of the seeds' argument: the vanishing gradient made visible, and how gates saturate.

- **Gradient flow**: for one validation batch, the norm of the total derivative of the loss with respect to
  the first layer's state, ``||dL/dh_t||`` (mean over the batch; for cells whose output is not fed back, the
  state that is: the LRU's ``x_t``, the mLSTM's memory, see ``CellMath.flow_states``), against the distance
  ``T - 1 - t`` from the end of the sequence, where tasks like ``adding`` put their loss. A plain RNN's curve
  falls exponentially with the distance; gated cells keep it up.
- **Gate saturation**: histograms of every gate's activations over the batch and all steps, and the share
  of activations below 0.1 or above 0.9.

Both run the model with the reference engine inside :func:`rnnlab.cells.probe.probing`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rnnlab.cells.probe import probing
from rnnlab.layers import Recurrent
from rnnlab.train.config import RunConfig
from rnnlab.train.trainer import Trainer

HISTOGRAM_BINS = 20
SATURATION = 0.1  # an activation below this or above 1 - this counts as saturated


@contextlib.contextmanager
def reference_engine(model: torch.nn.Module):
    """Run every recurrent layer of ``model`` with the reference engine inside the block."""
    layers = [m for m in model.modules() if isinstance(m, Recurrent)]
    saved = [m.backend for m in layers]
    for m in layers:
        m.backend = "reference"
    try:
        yield
    finally:
        for m, backend in zip(layers, saved, strict=True):
            m.backend = backend


def diagnose(config: RunConfig, checkpoint: str | Path | None = None, batch_size: int = 64) -> dict[str, Any]:
    """Gradient flow and gate statistics of the model of ``config``: at its seeded initialisation, or with the
    weights of ``checkpoint``.

    Returns ``{"distance": [T-1, ..., 0], "grad_norm": [...], "gates": {name: {"edges", "counts",
    "saturated", "mean"}}}``; ``grad_norm[i]`` belongs to ``distance[i]``.
    """
    trainer = Trainer(config, None)  # seeds, builds the task and the model exactly as the run did
    if checkpoint is not None:
        trainer.load_model(checkpoint)
    model, task = trainer.model, trainer.task
    model.eval()  # no dropout: the deterministic network
    batch = next(iter(task.eval_batches("valid", batch_size)))
    with reference_engine(model), probing() as probe:
        outputs, _ = model(batch.inputs)
        loss = task.loss(outputs, batch)
    loss.backward()
    norms = probe.gradient_norms(0)  # the first layer, forward direction: t = 0 .. T-1
    T = len(norms)
    gates = {}
    for name, values in probe.gates.items():
        flat = torch.cat([v.flatten() for v in values]).numpy()
        counts, edges = np.histogram(flat, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
        gates[name] = {
            "edges": edges.tolist(),
            "counts": counts.tolist(),
            "saturated": float(np.mean((flat < SATURATION) | (flat > 1 - SATURATION))),
            "mean": float(flat.mean()),
        }
    return {"distance": [T - 1 - t for t in range(T)], "grad_norm": norms, "gates": gates, "loss": loss.item()}
