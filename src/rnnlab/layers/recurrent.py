"""``Recurrent``: the one wrapper that owns time, direction, stacking, packing and regularisation for every
cell family. ``RNN``, ``LSTM``, ``GRU``, ``ClockworkRNN`` and ``DepthGatedLSTM`` are thin subclasses that
pick the cell math of each layer.

Shape legend: ``T`` steps, ``B`` batch, ``I`` input size, ``H`` hidden size, ``P`` output size of a step
(``proj_size`` or ``H``), ``L`` layers, ``D`` directions (2 if bidirectional else 1).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from rnnlab import engine
from rnnlab.cells.base import CellMath, check_positive_int, check_rate
from rnnlab.engine import Zoneout
from rnnlab.errors import InputError, NotATensorError, ShapeError, StateCountError
from rnnlab.layers.regularisers import locked_dropout

_autocast_warned = False


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x`` ``(T, B, F)`` within its length; padding stays in place.

    An involution: applying it twice gives ``x`` back.
    """
    if lengths is None:
        return x.flip(0)
    T = x.shape[0]
    t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
    rev = lengths.unsqueeze(0) - 1 - t  # (T, B)
    index = torch.where(rev >= 0, rev, t.expand_as(rev))
    return x.gather(0, index.unsqueeze(-1).expand_as(x))


class Recurrent(nn.Module):
    """A stack of recurrent layers of one cell family, with torch's ``nn.RNN/LSTM/GRU`` interface.

    Subclasses implement :meth:`make_cell` (the math of layer ``k``). Parameters are registered under
    torch's names: ``{name}_l{k}`` and ``{name}_l{k}_reverse`` for each name of the cell's
    ``param_shapes`` (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``, ...).

    Inputs: ``input`` ``(T, B, I)`` (``(B, T, I)`` with ``batch_first``), ``(T, I)`` unbatched, or a
    ``PackedSequence``; ``hx`` the initial state as the family defines it (zeros if omitted), each tensor
    ``(L*D, B, n)`` (``(L*D, n)`` unbatched). Outputs: ``output`` ``(T, B, D*P)`` (same layout as the
    input; a ``PackedSequence`` if the input was one) and the final state in the layout of ``hx``.

    Stepping: calling the layer on one step at a time (``x[t:t+1]``) with the returned state gives the same
    outputs as one call on the whole sequence (in evaluation mode, or in training without regularisers).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, *, forget_bias: float | None = None,
                 recurrent_init: str | None = None, chrono_init: int | None = None, zoneout: float = 0.0,
                 weight_drop: float = 0.0,
                 variational_dropout: float = 0.0, backend: str = engine.DEFAULT_BACKEND):
        super().__init__()
        check_positive_int("input_size", input_size)
        check_positive_int("hidden_size", hidden_size)
        check_positive_int("num_layers", num_layers)
        for name, flag in (("bias", bias), ("batch_first", batch_first), ("bidirectional", bidirectional)):
            if not isinstance(flag, bool):
                raise InputError(f"{name} must be a bool, got {type(flag).__name__}")
        self.dropout = check_rate("dropout", dropout, allow_one=True)
        self.zoneout = check_rate("zoneout", zoneout)
        self.weight_drop = check_rate("weight_drop", weight_drop)
        self.variational_dropout = check_rate("variational_dropout", variational_dropout)
        if backend not in engine.BACKENDS:
            raise InputError(f"backend must be one of {', '.join(engine.BACKENDS)}, got {backend!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.forget_bias, self.recurrent_init, self.backend = forget_bias, recurrent_init, backend
        self.chrono_init = chrono_init
        self.num_directions = 2 if bidirectional else 1

        self.cells: list[CellMath] = [self.make_cell(k) for k in range(num_layers)]
        self._param_names: list[list[dict[str, str]]] = []  # [layer][direction] {short name: attribute}
        layer_input = input_size
        for k, cell in enumerate(self.cells):
            cell.check_input_size(layer_input)
            cell.check_options(forget_bias=forget_bias, recurrent_init=recurrent_init, chrono_init=chrono_init)
            if self.weight_drop > 0 and "weight_hh" not in cell.param_shapes(layer_input):
                raise InputError(f"weight_drop drops recurrent weights, and {cell.family} has none (weight_hh)")
            names_k = []
            for d in range(self.num_directions):
                sfx = "_reverse" if d == 1 else ""
                names = {}
                for name, shape in cell.param_shapes(layer_input).items():
                    attr = f"{name}_l{k}{sfx}"
                    self.register_parameter(attr, nn.Parameter(torch.empty(shape, device=device, dtype=dtype)))
                    names[name] = attr
                names_k.append(names)
            self._param_names.append(names_k)
            layer_input = self.num_directions * cell.output_size
        self.output_size = self.cells[-1].output_size
        self.reset_parameters()

    def make_cell(self, layer: int) -> CellMath:  # pragma: no cover - abstract
        """The cell math of layer ``layer``."""
        raise NotImplementedError

    # ---- parameters --------------------------------------------------------------------------------------
    def direction_params(self, layer: int, direction: int) -> dict[str, Tensor]:
        """The parameters of one layer and direction under the cell's suffix-free names."""
        return {name: getattr(self, attr) for name, attr in self._param_names[layer][direction].items()}

    def reset_parameters(self) -> None:
        """torch's default initialisation, then ``forget_bias``, ``chrono_init`` and ``recurrent_init`` if given."""
        for k, cell in enumerate(self.cells):
            for d in range(self.num_directions):
                cell.reset_parameters(self.direction_params(k, d), forget_bias=self.forget_bias,
                                      recurrent_init=self.recurrent_init, chrono_init=self.chrono_init)

    @property
    def all_weights(self) -> list[list[Tensor]]:
        """Parameters grouped per layer and direction, as ``torch.nn.RNNBase.all_weights``."""
        return [list(self.direction_params(k, d).values())
                for k in range(self.num_layers) for d in range(self.num_directions)]

    def flatten_parameters(self) -> None:
        """No-op, for drop-in compatibility with ``torch.nn.RNNBase``."""

    # ---- inputs ------------------------------------------------------------------------------------------
    def _prepare_input(self, input):
        """-> ``x`` ``(T, B, I)``, ``lengths`` ``(B,)`` or None, ``batched``."""
        if isinstance(input, PackedSequence):
            x, lengths = pad_packed_sequence(input)  # (T, B, I), original batch order
            return x, lengths.to(x.device), True
        if not isinstance(input, Tensor):
            raise NotATensorError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
        if input.dim() not in (2, 3):
            raise InputError(f"expected input of 2 (unbatched) or 3 (batched) dimensions, got {input.dim()}")
        if input.dim() == 2:
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        if x.shape[-1] != self.input_size:
            raise ShapeError(f"expected input with input_size {self.input_size} features, got {x.shape[-1]}")
        if x.shape[0] == 0:
            raise ShapeError("expected a sequence of at least 1 step, got 0")
        weight = next(iter(self.parameters()), None)
        if weight is not None and x.dtype != weight.dtype:
            raise InputError(f"expected input of dtype {weight.dtype} (the layer's), got {x.dtype}: convert the input "
                             f"(input.to({weight.dtype})) or the layer (layer.to({x.dtype}))")
        return x, None, input.dim() == 3

    def state_layout(self) -> tuple[int, ...]:
        """Feature size of each state tensor the layer takes and returns (``h``, then ``c`` if any)."""
        return self.cells[-1].state_sizes()

    def _initial_states(self, hx, batch_size: int, batched: bool, x: Tensor) -> list[tuple[Tensor, ...]]:
        """-> per layer and direction (index ``k*D + d``), a tuple of ``(B, n)`` state tensors."""
        LD = self.num_layers * self.num_directions
        if hx is None:
            return [self.cells[j // self.num_directions].initial_state(batch_size, dtype=x.dtype,
                                                                        device=x.device)
                    for j in range(LD)]
        sizes = self.state_layout()
        tensors = (hx,) if isinstance(hx, Tensor) else tuple(hx) if isinstance(hx, (tuple, list)) else None
        kind = "a Tensor" if len(sizes) == 1 else f"a tuple of {len(sizes)} Tensors"
        if tensors is None or not all(isinstance(t, Tensor) for t in tensors) or (len(sizes) == 1 and
                                                                                  not isinstance(hx, Tensor)):
            raise NotATensorError(f"expected hx to be {kind}, got {type(hx).__name__}")
        if len(tensors) != len(sizes):
            got = "Tensor" if isinstance(hx, Tensor) else f"a {type(hx).__name__} of {len(tensors)} Tensors"
            raise StateCountError(f"expected hx to be {kind}, got {got}")
        names = ("h0", "c0", "s2", "s3")
        per_state = []
        for name, t, n in zip(names, tensors, sizes, strict=False):
            expected = (LD, batch_size, n) if batched else (LD, n)
            if tuple(t.shape) != expected:
                raise ShapeError(f"expected {name} of shape {expected}, got {tuple(t.shape)}")
            per_state.append(t if batched else t.unsqueeze(1))  # (L*D, B, n)
        return [tuple(s[j] for s in per_state) for j in range(LD)]

    # ---- forward -----------------------------------------------------------------------------------------
    def forward(self, input, hx=None):
        """See the class docstring. Under ``torch.autocast`` the layer runs in its parameters' dtype (float32:
        the kernels have no bf16/fp16 path) with autocast off inside, and says so once (``RuntimeWarning``)."""
        device = input.data.device.type if isinstance(input, (Tensor, PackedSequence)) else "cpu"
        if torch.is_autocast_enabled(device):
            global _autocast_warned
            if not _autocast_warned:
                _autocast_warned = True
                warnings.warn(
                    f"rnnlab: {type(self).__name__} ignores autocast({torch.get_autocast_dtype(device)}): it runs "
                    "in float32 (its parameters' dtype) and returns float32 outputs", RuntimeWarning, stacklevel=2)
            with torch.autocast(device, enabled=False):
                return self._forward(input, hx)
        return self._forward(input, hx)

    def __setattr__(self, name, value):
        if name == "qconfig" and value is not None:  # torch.ao.quantization is preparing this layer
            raise InputError(
                f"torch.ao.quantization cannot convert rnnlab.{type(self).__name__} (torch has no quantized module "
                "for it; it would stay float silently). Use rnnlab.quantize_dynamic(model, ...), which converts "
                "vanilla rnnlab LSTM/GRU layers to torch's dynamic int8 modules, or leave the layer's type out of "
                "the qconfig spec")
        super().__setattr__(name, value)

    def _forward(self, input, hx):
        x, lengths, batched = self._prepare_input(input)  # x (T, B, I)
        T, B, _ = x.shape
        states0 = self._initial_states(hx, B, batched, x)
        finals: list[tuple[Tensor, ...]] = []
        layer_x, lower = x, None
        for k, cell in enumerate(self.cells):
            layer_x = locked_dropout(layer_x, self.variational_dropout, self.training)
            cell_x = torch.cat([layer_x, lower], dim=-1) if cell.takes_lower_cell else layer_x
            feeds_lower = k + 1 < self.num_layers and self.cells[k + 1].takes_lower_cell
            outputs = []
            for d in range(self.num_directions):
                sequence, final = self._run_direction(k, d, cell, cell_x, states0[k * self.num_directions + d],
                                                      lengths, all_states=feeds_lower)
                outputs.append(sequence)
                finals.append(final)
            if feeds_lower:  # unidirectional: sequence holds every state (h, c)
                layer_x, lower = outputs[0][0], outputs[0][1]
            else:
                layer_x = outputs[0] if len(outputs) == 1 else torch.cat(outputs, dim=-1)  # (T, B, D*P)
            if k + 1 < self.num_layers and self.dropout > 0:
                layer_x = F.dropout(layer_x, self.dropout, self.training)
        output = locked_dropout(layer_x, self.variational_dropout, self.training)
        state = tuple(torch.stack(s) for s in zip(*finals, strict=True))  # each (L*D, B, n)
        return self._format_output(input, output, lengths, batched), self._format_state(state, batched)

    def _run_direction(self, k: int, d: int, cell: CellMath, cell_x: Tensor, state0, lengths, *,
                       all_states: bool):
        p = self.direction_params(k, d)
        if self.weight_drop > 0:
            p["weight_hh"] = F.dropout(p["weight_hh"], self.weight_drop, self.training)
        if d == 1:  # the backward direction reads each sequence reversed (projections are per step)
            cell_x = reverse_padded(cell_x, lengths)
        T, B = cell_x.shape[:2]
        zoneout = Zoneout.plan(self.zoneout, cell.zoneout_states, cell.state_sizes(), T, B,
                               training=self.training, like=cell_x)
        # gx = cell.project_input(cell_x, p) (T, B, D_gx), then the loop over time; the engine does both
        sequence, final = engine.run_from_input(cell, cell_x, state0, p, lengths=lengths, zoneout=zoneout,
                                                all_states=all_states, backend=self.backend)
        if d == 1:
            sequence = reverse_padded(sequence, lengths)
        return sequence, final

    def _format_output(self, input, output: Tensor, lengths, batched: bool):
        if isinstance(input, PackedSequence):
            sorted_indices = input.sorted_indices
            if sorted_indices is None:
                data = pack_padded_sequence(output, lengths.cpu(), enforce_sorted=True).data
            else:
                data = pack_padded_sequence(output[:, sorted_indices], lengths[sorted_indices].cpu(),
                                            enforce_sorted=True).data
            return PackedSequence(data, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
        if not batched:
            return output.squeeze(1)
        return output.transpose(0, 1) if self.batch_first else output

    def _format_state(self, state: tuple[Tensor, ...], batched: bool):
        if not batched:
            state = tuple(s.squeeze(1) for s in state)
        return state[0] if len(state) == 1 else state

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}, cell={self.cells[-1].describe()}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("zoneout", 0.0), ("weight_drop", 0.0),
                              ("variational_dropout", 0.0), ("forget_bias", None), ("recurrent_init", None),
                              ("chrono_init", None)):
            value = getattr(self, name)
            if value != default:
                s += f", {name}={value}"
        return s
