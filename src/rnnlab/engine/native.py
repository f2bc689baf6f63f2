"""torch's own recurrent kernels (``torch._VF.lstm/gru/rnn_tanh/rnn_relu``: cuDNN on a GPU, oneDNN/ATen on the
CPU) for the configurations that are exactly torch's layers, and the routing around the fused engine:

- on a device of :data:`NATIVE_DEVICES` (CUDA) the fused engine has no kernel: a vanilla configuration (LSTM
  ``vanilla`` with or without ``proj_size``, GRU ``vanilla``, RNN ``tanh``/``relu``; no ``layer_norm``, no zoneout)
  runs torch's kernel, the same numbers as ``torch.nn``; any other variant runs the reference engine, with a
  one-time ``RuntimeWarning`` that names the cost;
- under the classic ONNX exporter (``torch.onnx.export(..., dynamo=False)``) a vanilla configuration runs torch's
  kernel too, which the exporter writes as ONNX's own ``LSTM``/``GRU``/``RNN`` op (dynamic batch and sequence
  length); any other variant raises :class:`OnnxExportError` (a traced loop would bake the sequence length in)
  and names the dynamo exporter (``dynamo=True``), under which every configuration exports through
  :mod:`rnnlab.engine.export`.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.cells.base import CellMath, Params, State
from rnnlab.engine import ops
from rnnlab.engine.zoneout import Zoneout
from rnnlab.errors import InputError

#: device types on which vanilla configurations run torch's own kernels (tests add "cpu")
NATIVE_DEVICES: tuple[str, ...] = ("cuda",)
_warned: set[str] = set()


class OnnxExportError(InputError, RuntimeError):
    """A configuration that the ONNX exporter cannot write with a dynamic sequence length."""


def is_torch_configuration(cell: CellMath, zoneout: Zoneout | None, all_states: bool) -> bool:
    """True if ``cell`` is exactly one of torch's layers (so torch's kernel computes it)."""
    vanilla = ((cell.family == "lstm" and cell.variant == "vanilla") or (cell.family == "gru" and cell.variant ==
                                                                            "vanilla") or cell.family == "rnn")
    return vanilla and not cell.layer_norm and zoneout is None and not all_states


def _onnx_exportable(cell: CellMath, zoneout: Zoneout | None, all_states: bool) -> bool:
    """A torch configuration that torch's ONNX exporter writes as one ONNX op (not LSTM projections)."""
    return is_torch_configuration(cell, zoneout, all_states) and cell.output_size == cell.hidden_size


def route(cell: CellMath, x: Tensor, zoneout: Zoneout | None, all_states: bool, *, backend: str = "fused") -> str:
    """``"native"`` (torch's kernel), ``"reference"`` or ``"fused"`` for one sequence of a layer with ``backend``.
    ONNX export routes either backend (the reference's traced loop would fix the sequence length too)."""
    onnx = torch.onnx.is_in_onnx_export()
    if backend == "reference" and not onnx:
        return "reference"
    on_device = x.device.type in NATIVE_DEVICES and any(family == cell.family for family, _ in ops.SUPPORT)
    if onnx or on_device:
        if (_onnx_exportable if onnx else is_torch_configuration)(cell, zoneout, all_states):
            return "native"
        if onnx:
            raise OnnxExportError(
                f"cannot export {cell.describe()}{' with zoneout' if zoneout is not None else ''} with the classic "
                "ONNX exporter: ONNX has no op for it, and a traced loop would fix the sequence length. Use "
                "torch.onnx.export(..., dynamo=True), which writes every configuration as an ONNX Scan with a "
                "dynamic sequence length")
        key = f"{x.device.type}:{cell.describe()}"
        if key not in _warned:
            _warned.add(key)
            warnings.warn(
                f"rnnlab: {cell.describe()} has no {x.device.type} kernel; it runs the reference engine (a Python "
                "loop of a few torch ops per step: several times slower than torch's cuDNN layers). Vanilla "
                "configurations run torch's own kernels", RuntimeWarning, stacklevel=4)
        return "reference"
    return "fused"


def run_native(cell: CellMath, x: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None):
    """:func:`rnnlab.engine.run_from_input`'s contract on torch's kernel: ``x`` ``(T, B, I)``, one layer and
    direction (the wrapper owns stacking and direction)."""
    weights = [p["weight_ih"], p["weight_hh"]]
    if cell.bias:
        weights += [p["bias_ih"], p["bias_hh"]]
    if "weight_hr" in p:
        weights.append(p["weight_hr"])
    hx = [s.unsqueeze(0) for s in state0]  # (1, B, n) each
    function = {"lstm": torch._VF.lstm, "gru": torch._VF.gru}.get(
        cell.family, torch._VF.rnn_relu if cell.variant == "relu" else torch._VF.rnn_tanh)
    state = hx if cell.family == "lstm" else hx[0]
    if lengths is None:
        out, *final = function(x, state, weights, cell.bias, 1, 0.0, False, False, False)
        return out, tuple(f.squeeze(0) for f in final)
    packed = pack_padded_sequence(x, lengths.cpu(), enforce_sorted=False)
    order = packed.sorted_indices
    if cell.family == "lstm":
        state = [s.index_select(1, order) for s in hx]
    else:
        state = hx[0].index_select(1, order)
    data, *final = function(packed.data, packed.batch_sizes, state, weights, cell.bias, 1, 0.0, False, False)
    out, _ = pad_packed_sequence(type(packed)(data, packed.batch_sizes, order, packed.unsorted_indices),
                                 total_length=x.shape[0])
    return out, tuple(f.index_select(1, packed.unsorted_indices).squeeze(0) for f in final)
