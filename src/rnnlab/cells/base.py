"""The contract every cell family implements: the math of one time step, apart from the loop over time.

A *cell math* object (``LSTMMath``, ``GRUMath``, ...) is stateless: it knows a family's gate layout, the
names and shapes of its parameters, how to initialise them, and how to advance the state by one step.
The parameters themselves live in ``nn.Module``\\ s (a layer or a cell module) under torch's names; the math
receives them as a dict with the layer/direction suffix stripped (``"weight_ih"``, ``"weight_hh"``, ...).

The step is split in two so that engines can hoist the input GEMM out of the loop over time:

- ``project_input(x, p)``: ``(..., I) -> (..., D_gx)``, independent per time step, so applied to all ``T``
  steps at once;
- ``step(gx_t, state, p)``: ``(B, D_gx), state -> state``; ``state[0]`` is the output ``h_t``.

Shape legend used in docstrings: ``T`` time steps, ``B`` batch, ``I`` input size, ``H`` hidden size,
``P`` projection size (LSTM ``proj_size``; ``P = H`` without projection), ``G`` number of gate blocks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from rnnlab.errors import ArgumentTypeError, InputError

Params = dict[str, Tensor]
State = tuple[Tensor, ...]

LAYER_NORM_EPS = 1e-5


def gate_layer_norm(z: Tensor, gain: Tensor, hidden_size: int) -> Tensor:
    """Layer normalisation of each gate block of ``z`` separately, scaled by ``gain`` (Ba et al. 2016).

    ``z``: ``(..., G*H)``; each of the ``G`` blocks of ``H`` units is normalised to zero mean and unit
    variance, then multiplied by its slice of ``gain`` ``(G*H,)``. The additive shift is the layer's own
    bias, added after this function.
    """
    if z.numel() == 0:  # an empty batch (torch warns about the variance of nothing)
        return z * gain
    blocks = z.unflatten(-1, (-1, hidden_size))  # (..., G, H)
    mean = blocks.mean(-1, keepdim=True)
    var = blocks.var(-1, unbiased=False, keepdim=True)
    normed = (blocks - mean) * torch.rsqrt(var + LAYER_NORM_EPS)
    return normed.flatten(-2) * gain


def layer_norm(z: Tensor, gain: Tensor, shift: Tensor) -> Tensor:
    """Plain layer normalisation over the last dimension with gain and shift, ``(..., H) -> (..., H)``."""
    if z.numel() == 0:
        return z * gain + shift
    mean = z.mean(-1, keepdim=True)
    var = z.var(-1, unbiased=False, keepdim=True)
    return (z - mean) * torch.rsqrt(var + LAYER_NORM_EPS) * gain + shift


def linear(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight.T + bias`` with an optional bias."""
    return torch.nn.functional.linear(x, weight, bias)


class CellMath:
    """Base class of a family's one-step math. Subclasses set the class attributes and implement ``step``.

    Attributes:
        family: ``"rnn"``, ``"lstm"``, ``"gru"``, ``"clockwork"`` or ``"dglstm"``.
        variants: the public variant names of the family; ``variant`` is one of them.
        gates_ih: names of the row blocks of ``weight_ih`` / ``bias_ih``, in torch's order.
        gates_hh: names of the row blocks of ``weight_hh`` / ``bias_hh``.
        zoneout_states: indices of the state tensors that zoneout mixes.
        flow_states: indices of the state tensors that carry the past into the next step, whose gradients
            :class:`~rnnlab.cells.probe.Probe` records as the gradient flow through time: the output ``h_t`` for
            most cells; the LRU's complex state and the mLSTM's memory, whose output ``h_t`` is not fed back.
    """

    family: str = ""
    variants: tuple[str, ...] = ()
    default_variant: str = "vanilla"
    gates_ih: tuple[str, ...] = ()
    gates_hh: tuple[str, ...] = ()
    zoneout_states: tuple[int, ...] = (0,)
    flow_states: tuple[int, ...] = (0,)
    #: the gate whose bias ``forget_bias`` sets, and the sign that means "keep the previous state"
    forget_gate: tuple[str, float] | None = None
    #: the gate whose bias ``chrono_init`` sets to minus the forget gate's (the LSTM input gate), and its sign
    chrono_input_gate: tuple[str, float] | None = None
    #: True for cells fed ``[h_t, c_t]`` of the layer below (depth-gated LSTM)
    takes_lower_cell: bool = False

    def __init__(self, hidden_size: int, variant: str | None = None, *, layer_norm: bool = False,
                 bias: bool = True):
        variant = self.default_variant if variant is None else variant
        if variant not in self.variants:
            raise InputError(
                f"unknown {self.family} variant {variant!r}; expected one of: {', '.join(self.variants)}")
        check_positive_int("hidden_size", hidden_size)
        self.hidden_size = hidden_size
        self.variant = variant
        self.layer_norm = bool(layer_norm)
        self.bias = bool(bias)
        self.configure()

    def configure(self) -> None:
        """Hook for subclasses: derive the gate layout from ``self.variant``."""

    # ---- sizes -------------------------------------------------------------------------------------------
    @property
    def output_size(self) -> int:
        """Size of ``h_t``, the output at each step (``P`` for a projected LSTM, else ``H``)."""
        return self.hidden_size

    def state_sizes(self) -> tuple[int, ...]:
        """Feature size of each state tensor; ``state[0]`` is ``h_t``."""
        return (self.output_size,)

    def input_width(self, input_size: int) -> int:
        """Size of ``x_t`` the math is fed (some cells take extra features beside the layer input)."""
        return input_size

    def check_input_size(self, input_size: int) -> None:
        """Raise if the equations cannot take inputs of this size (see the MUT variants)."""

    # ---- parameters --------------------------------------------------------------------------------------
    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        """Suffix-free parameter names and shapes, in registration order."""
        H = self.hidden_size
        shapes: dict[str, tuple[int, ...]] = {
            "weight_ih": (len(self.gates_ih) * H, input_size),
            "weight_hh": (len(self.gates_hh) * H, self.output_size),
        }
        if self.bias:
            shapes["bias_ih"] = (len(self.gates_ih) * H,)
            shapes["bias_hh"] = (len(self.gates_hh) * H,)
        if self.layer_norm:
            shapes["ln_weight_ih"] = (len(self.gates_ih) * H,)
            shapes["ln_weight_hh"] = (len(self.gates_hh) * H,)
        return shapes

    @torch.no_grad()
    def reset_parameters(self, p: Params, *, forget_bias: float | None = None,
                         recurrent_init: str | None = None, chrono_init: int | None = None) -> None:
        """Initialise ``p`` in place: torch's default, then the options.

        torch's default: every parameter uniform in ``(-1/sqrt(H), 1/sqrt(H))``. Layer-norm gains are 1 and
        shifts 0. ``recurrent_init="orthogonal"`` makes each ``H x H`` gate block of ``weight_hh``
        orthogonal (Saxe et al. 2014); ``"identity"`` makes it the identity (IRNN, Le et al. 2015).
        ``forget_bias`` sets the total bias of the gate that keeps the previous state: ``bias_ih`` of that
        gate becomes ``forget_bias`` (with the sign that means "remember") and ``bias_hh`` of it 0.
        ``chrono_init=T_max`` is the chrono initialisation (Tallec & Ollivier 2018): that bias is drawn per unit
        as :math:`b_f = \\log u,\\ u \\sim U(1, T_{max} - 1)`, so the units' memory time constants spread
        over ``1..T_max`` steps, and the LSTM input gate's bias is :math:`-b_f` (where the variant has one).
        """
        bound = self.init_bound(p)
        for name, tensor in p.items():
            if name.startswith("ln_weight"):
                tensor.fill_(1.0)
            elif name.startswith("ln_bias"):
                tensor.zero_()
            else:
                tensor.uniform_(-bound, bound)
        if recurrent_init is not None:
            w = p["weight_hh"]
            for block in w.split(self.hidden_size, dim=0):
                if recurrent_init == "orthogonal":
                    torch.nn.init.orthogonal_(block)
                else:  # identity
                    torch.nn.init.eye_(block)
        keep = self.keep_gate_bias(forget_bias, chrono_init)
        if keep is not None:
            self._set_gate_bias(p, self.forget_gate, keep)
            if chrono_init is not None and self.chrono_input_gate is not None \
                    and self.chrono_input_gate[0] in self.gates_ih:
                self._set_gate_bias(p, self.chrono_input_gate, -keep)

    def keep_gate_bias(self, forget_bias: float | None, chrono_init: int | None) -> Tensor | None:
        """The bias ``(H,)`` that ``forget_bias`` or ``chrono_init`` give the keep gate, or None for neither."""
        if forget_bias is not None:
            return torch.full((self.hidden_size,), float(forget_bias))
        if chrono_init is not None:
            u = torch.empty(self.hidden_size, dtype=torch.float64).uniform_(1.0, chrono_init - 1.0)
            return u.log()  # (H,)
        return None

    def init_bound(self, p: Params) -> float:
        """The half-width of the default uniform initialisation: torch's ``1/sqrt(H)``."""
        return 1.0 / math.sqrt(self.hidden_size)

    def _set_gate_bias(self, p: Params, gate_and_sign: tuple[str, float], value: Tensor) -> None:
        """Total bias of one gate: ``bias_ih`` rows of the gate = ``sign * value`` ``(H,)``, ``bias_hh`` rows 0."""
        gate, sign = gate_and_sign
        H = self.hidden_size
        k = self.gates_ih.index(gate)
        p["bias_ih"][k * H:(k + 1) * H] = sign * value.to(p["bias_ih"].dtype)
        if gate in self.gates_hh and "bias_hh" in p:
            k = self.gates_hh.index(gate)
            p["bias_hh"][k * H:(k + 1) * H] = 0.0

    def has_keep_gate(self) -> bool:
        """Whether a gate keeps the previous state (the gate whose bias ``forget_bias``/``chrono_init`` set)."""
        return self.forget_gate is not None and self.forget_gate[0] in self.gates_ih

    def check_options(self, *, forget_bias: float | None, recurrent_init: str | None,
                      chrono_init: int | None = None) -> None:
        """Raise ``InputError`` for an option that does not apply to this family/variant."""
        for name, value in (("forget_bias", forget_bias), ("chrono_init", chrono_init)):
            if value is None:
                continue
            if not self.has_keep_gate():
                raise InputError(
                    f"{name} does not apply to {self.family} variant {self.variant!r}: it has no gate "
                    "that keeps the previous state")
            if not self.bias:
                raise InputError(f"{name} needs bias=True")
        if forget_bias is not None and (not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool)):
            raise InputError(f"forget_bias must be a number, got {type(forget_bias).__name__}")
        if chrono_init is not None:
            if forget_bias is not None:
                raise InputError("give forget_bias or chrono_init, not both: each sets the forget gate's bias")
            if not isinstance(chrono_init, int) or isinstance(chrono_init, bool) or chrono_init < 3:
                raise InputError(f"chrono_init must be an int T_max >= 3 (the longest dependency in steps), "
                                 f"got {chrono_init!r}")
        if recurrent_init not in (None, "orthogonal", "identity"):
            raise InputError(
                f"recurrent_init must be None, 'orthogonal' or 'identity', got {recurrent_init!r}")
        if recurrent_init == "identity" and self.output_size != self.hidden_size:
            raise InputError("recurrent_init='identity' needs square recurrent blocks (no proj_size)")

    # ---- the step ----------------------------------------------------------------------------------------
    def project_input(self, x: Tensor, p: Params) -> Tensor:
        """``(..., I) -> (..., G_ih*H)``: ``LN(x W_ih^T) * gain + b_ih`` (no LN unless ``layer_norm``)."""
        if self.layer_norm:
            gx = gate_layer_norm(linear(x, p["weight_ih"], None), p["ln_weight_ih"], self.hidden_size)
            return gx if p.get("bias_ih") is None else gx + p["bias_ih"]
        return linear(x, p["weight_ih"], p.get("bias_ih"))

    def input_is_affine(self) -> bool:
        """True if ``project_input(x, p)`` is exactly ``linear(x, p["weight_ih"], p.get("bias_ih"))``, so that
        an engine may compute the input projection with its own GEMM."""
        return type(self).project_input is CellMath.project_input and not self.layer_norm

    def recurrent(self, h: Tensor, p: Params, rows: slice | None = None) -> Tensor:
        """``LN(h W_hh[rows]^T) * gain[rows] + b_hh[rows]`` for a slice of gate rows (all by default)."""
        rows = slice(None) if rows is None else rows
        w, b = p["weight_hh"][rows], p.get("bias_hh")
        b = None if b is None else b[rows]
        if self.layer_norm:
            gh = gate_layer_norm(linear(h, w, None), p["ln_weight_hh"][rows], self.hidden_size)
            return gh if b is None else gh + b
        return linear(h, w, b)

    def rows(self, gates: Sequence[str], *names: str) -> slice:
        """The contiguous row slice of ``names`` (adjacent gate blocks) in a gate layout."""
        first = gates.index(names[0])
        return slice(first * self.hidden_size, (first + len(names)) * self.hidden_size)

    def prepare(self, p: Params) -> Params:
        """Derive per-sequence constants from the parameters once, before the loop (e.g. masked weights)."""
        return p

    def initial_state(self, batch_size: int, *, dtype: torch.dtype, device: torch.device) -> State:
        """Zeros for every state tensor, ``(B, size)`` each."""
        return tuple(torch.zeros(batch_size, n, dtype=dtype, device=device) for n in self.state_sizes())

    def step(self, gx: Tensor, state: State, p: Params) -> State:  # pragma: no cover - abstract
        """Advance one time step: ``gx`` ``(B, D_gx)`` from ``project_input``, ``state`` -> new state."""
        raise NotImplementedError

    def describe(self) -> str:
        ln = ", layer_norm" if self.layer_norm else ""
        return f"{self.family}:{self.variant}{ln}"


def check_positive_int(name: str, value: object) -> None:
    """Raise ``InputError`` unless ``value`` is a positive int (bools are not sizes)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be an int, got {type(value).__name__}")
    if value <= 0:
        raise InputError(f"{name} must be positive, got {value}")


def check_rate(name: str, value: object, *, allow_one: bool = False) -> float:
    """Validate a probability-like rate in ``[0, 1)`` (or ``[0, 1]``) and return it as a float."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise InputError(f"{name} must be a number in [0, 1), got {type(value).__name__}")
    upper_ok = value <= 1 if allow_one else value < 1
    if not (value >= 0 and upper_ok):
        interval = "[0, 1]" if allow_one else "[0, 1)"
        raise InputError(f"{name} must be in {interval}, got {value}")
    return float(value)
