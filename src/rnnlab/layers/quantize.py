"""Dynamic int8 quantization of models with rnnlab layers: torch's ``quantize_dynamic``, plus rnnlab's vanilla
LSTM and GRU layers, which become torch's own dynamic quantized modules (the same weights; int8 weights with
float activations, as ``torch.ao.nn.quantized.dynamic.LSTM/GRU``).

torch's ``torch.ao.quantization.quantize_dynamic`` has no mapping for rnnlab's layers and would leave them float
without a word; rnnlab's layers raise an :class:`~rnnlab.errors.InputError` pointing here instead.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from rnnlab.errors import InputError
from rnnlab.layers.recurrent import Recurrent
from rnnlab.layers.torch_like import GRU, LSTM

_TORCH_TWIN = {LSTM: nn.LSTM, GRU: nn.GRU}


def _torch_twin(layer: Recurrent) -> nn.Module:
    """The ``torch.nn`` layer that computes exactly what ``layer`` does (vanilla configurations only)."""
    cell = layer.cells[-1]
    if (type(layer) not in _TORCH_TWIN or cell.variant != "vanilla" or cell.layer_norm or layer.zoneout
            or layer.weight_drop or layer.variational_dropout):
        raise InputError(
            f"cannot quantize {cell.describe()} (rnnlab.{type(layer).__name__}): int8 dynamic quantization exists for "
            "torch's own LSTM and GRU (variant='vanilla', no layer_norm, zoneout, weight_drop or variational_dropout);"
            " keep this layer float by leaving its type out of qconfig_spec")
    options = dict(num_layers=layer.num_layers, bias=layer.bias, batch_first=layer.batch_first,
                   dropout=layer.dropout, bidirectional=layer.bidirectional)
    if isinstance(layer, LSTM):
        options["proj_size"] = layer.proj_size
    twin = _TORCH_TWIN[type(layer)](layer.input_size, layer.hidden_size, **options)
    twin.load_state_dict(layer.state_dict())
    return twin.train(layer.training)


def quantize_dynamic(model: nn.Module, qconfig_spec=None, dtype=torch.qint8, inplace: bool = False) -> nn.Module:
    """``torch.ao.quantization.quantize_dynamic`` that also converts rnnlab's vanilla ``LSTM``/``GRU`` layers.

    ``qconfig_spec``: as torch's (None: torch's default set, which includes LSTM and GRU; a set of module types
    may name ``rnnlab.LSTM``/``rnnlab.GRU``). A rnnlab layer that the spec selects but that has no int8 kernel (a
    variant, ``layer_norm``, regularisers, ``rnnlab.RNN``) raises :class:`~rnnlab.errors.InputError`.
    """
    model = model if inplace else copy.deepcopy(model)
    selected = None if qconfig_spec is None else set(qconfig_spec) if not isinstance(qconfig_spec, dict) else None
    if isinstance(qconfig_spec, dict):
        raise InputError("rnnlab.quantize_dynamic takes qconfig_spec as a set of module types (or None)")

    def wanted(module: nn.Module) -> bool:
        return selected is None or type(module) in selected or _TORCH_TWIN.get(type(module)) in selected

    def convert(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, Recurrent) and wanted(child):
                setattr(parent, name, _torch_twin(child))
            else:
                convert(child)

    if isinstance(model, Recurrent) and wanted(model):
        model = _torch_twin(model)
    else:
        convert(model)
    torch_spec = None if selected is None else {_TORCH_TWIN.get(t, t) for t in selected}
    return torch.ao.quantization.quantize_dynamic(model, torch_spec, dtype=dtype, inplace=True)
