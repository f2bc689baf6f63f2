"""The model every task trains: the task's encoder, an optional input projection, a recurrent layer from
:meth:`~rnnlab.tasks.Task.build_layer` (:func:`rnnlab.layers.build_layer` unless the task says otherwise), and the
task's head.

``SequenceModel.forward(inputs, state)`` returns ``(outputs, state)``: ``outputs`` is whatever the task's head
returns and ``state`` the layer's final state (opaque: a tensor or a tuple of tensors), which the trainer
carries between truncated-BPTT chunks and generation carries between steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence

from rnnlab.errors import InputError
from rnnlab.layers import needs_input_projection
from rnnlab.tasks.base import Task

__all__ = ["SequenceModel", "build_model", "count_parameters", "map_packed"]


def map_packed(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor | PackedSequence):
    """Apply a per-element module to a tensor ``(T, B, *)`` or to a ``PackedSequence``'s data ``(N, *)``."""
    if isinstance(x, PackedSequence):
        return x._replace(data=fn(x.data))
    return fn(x)


class SequenceModel(nn.Module):
    """``head(layer(projection(encoder(inputs)), state))``.

    Attributes:
        encoder: the task's input module, ``(T, B, *) -> (T, B, input_size)`` (identity for features).
        projection: ``nn.Linear(input_size, hidden_size)`` when the cell needs a square input, else identity.
        layer: the recurrent layer (time-major).
        head: the task's output module.
    """

    def __init__(self, encoder: nn.Module, projection: nn.Module, layer: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.projection = projection
        self.layer = layer
        self.head = head

    def features(self, inputs: torch.Tensor | PackedSequence, state: Any = None) -> tuple[Any, Any]:
        """``(layer output (T, B, D*H) or packed, state)``: everything but the head (for heads that explain
        themselves, e.g. attention weights)."""
        x = map_packed(self.encoder, inputs)  # (T, B, input_size) or packed
        x = map_packed(self.projection, x)  # (T, B, hidden_size) when projected
        return self.layer(x, state)  # (T, B, D*H) or packed

    def forward(self, inputs: torch.Tensor | PackedSequence, state: Any = None) -> tuple[torch.Tensor, Any]:
        output, state = self.features(inputs, state)
        return self.head(output), state


def build_model(
    task: Task,
    cell: str,
    hidden_size: int,
    num_layers: int = 1,
    *,
    variant: str | None = None,
    dropout: float = 0.0,
    bidirectional: bool = False,
    **layer_options: Any,
) -> nn.Module:
    """The model for ``task`` with a ``cell`` layer of ``hidden_size`` units: the task's own
    (:meth:`~rnnlab.tasks.Task.build_model`, an encoder-decoder) if it has one, else a :class:`SequenceModel`.

    Raises:
        InputError: unknown cell or variant, a bad size or layer option. The layers raise torch's exception
            types for bad arguments (``ValueError``, ``TypeError``); here the arguments are the user's options,
            so they become an :class:`~rnnlab.errors.InputError` with the same message.
    """
    try:
        custom = task.build_model(cell, hidden_size, num_layers, variant=variant, dropout=dropout,
                                  bidirectional=bidirectional, **layer_options)
    except (ValueError, TypeError) as exc:  # a bad option of the user's, from the layers' own checks
        raise exc if isinstance(exc, InputError) else InputError(str(exc)) from exc
    if custom is not None:  # the task's own design (an encoder-decoder)
        return custom
    encoder = task.build_encoder()
    layer_input = task.input_size
    projection: nn.Module = nn.Identity()
    if needs_input_projection(cell, variant):
        projection = nn.Linear(task.input_size, hidden_size)
        layer_input = hidden_size
    try:
        layer = task.build_layer(
            cell,
            layer_input,
            hidden_size,
            num_layers,
            variant=variant,
            dropout=dropout,
            bidirectional=bidirectional,
            **layer_options,
        )
    except (ValueError, TypeError) as exc:  # a bad option of the user's, from the layer's own checks
        raise exc if isinstance(exc, InputError) else InputError(str(exc)) from exc
    directions = 2 if bidirectional else 1
    head = task.build_head(directions * hidden_size, directions)
    return SequenceModel(encoder, projection, layer, head)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
