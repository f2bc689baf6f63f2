"""The fused engine: a whole sequence per call of compiled C++ (``engine/csrc``), with a hand-written BPTT.

Same contract as :func:`rnnlab.engine.reference.run_reference`, which stays the spec. Each family's kernel runs
the loop over time in C++ on the input projections ``gx = cell.project_input(x, p)``: given whole, or (affine
projections, :func:`run_from_input`) computed by the kernel a chunk of steps at a time. Per step one recurrent
GEMM into a preallocated buffer and the gate math as vectorised C++ loops; in the backward, per step the GEMM
of the state gradient, and after the loop the weight gradients as a few GEMMs over all ``T*B`` rows
(``dW_hh = sum_t dA_t^T h_{t-1}``).

- training (any input requires grad): :class:`FusedSequence`, a ``torch.autograd.Function`` that keeps the
  activated gates of every step for its backward;
- inference (no grad): the forward kernel alone, which keeps one step of buffers.

Every family and variant runs here: ``rnn`` (tanh, relu, clockwork), ``lstm`` (the eight variants,
``proj_size``, depth-gated), ``gru`` (the six variants), each with or without ``layer_norm``, packed lengths
and zoneout. Tensors on another device than the CPU, dtypes other than float32/float64, a failed build
(:mod:`rnnlab.engine.build` warns) and probed runs (:mod:`rnnlab.cells.probe`) go to the reference engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from rnnlab.cells import ClockworkMath, DepthGatedMath, GRUMath, LSTMMath, RNNMath
from rnnlab.cells.base import CellMath, Params, State
from rnnlab.cells.probe import active_probe
from rnnlab.engine import build
from rnnlab.engine.reference import run_reference
from rnnlab.engine.zoneout import Zoneout

# ---- what each kernel takes (must match the enums at the top of csrc/<family>.cpp) ---------------------------
INPUTS = {
    "lstm": ("gx", "h0", "c0", "weight_hh", "bias_hh", "ln_weight_hh", "weight_peephole", "weight_hr",
             "ln_weight_cell", "ln_bias_cell", "weight_depth"),
    "gru": ("gx", "h0", "weight_hh", "bias_hh", "ln_weight_hh"),
    "rnn": ("gx", "h0", "weight_hh", "bias_hh", "ln_weight_hh"),
}
#: aux (never differentiated): packed lengths, zoneout masks of state 0 and 1, clockwork periods and clock, and
#: in inference the layer input with the input weights (the kernel then projects a few steps at a time itself)
AUX = ("lengths", "mask_0", "mask_1", "periods", "clock0", "x", "weight_ih", "bias_ih")

# LSTM flags (csrc/lstm.cpp)
_LSTM_HAS_I, _LSTM_HAS_F, _LSTM_HAS_O, _LSTM_CIFG, _LSTM_NIAF, _LSTM_NOAF = 1, 2, 4, 8, 16, 32
_LSTM_PEEPHOLE, _LSTM_DEPTH, _LSTM_LN = 64, 128, 256
# GRU flags (csrc/gru.cpp): the variant's index in GRUMath.variants, plus layer norm
_GRU_LN = 256
# RNN flags (csrc/rnn.cpp)
_RNN_RELU, _RNN_CLOCKWORK, _RNN_LN = 1, 2, 256


@dataclass(frozen=True)
class Kernel:
    """One family's compiled forward/backward pair and the static options of a call."""

    family: str
    flags: int
    hidden: int
    zoneout_rate: float

    def forward(self, inputs: list, aux: list, *, all_states: bool, save: bool):
        op = getattr(torch.ops.rnnlab, f"{self.family}_forward")
        return op(inputs, aux, self.flags, self.hidden, all_states, self.zoneout_rate, save)

    def backward(self, grads: list, saved: list, inputs: list, aux: list):
        op = getattr(torch.ops.rnnlab, f"{self.family}_backward")
        return op(grads, saved, inputs, aux, self.flags, self.hidden, self.zoneout_rate)


def _flags(cell: CellMath) -> tuple[str, int]:
    """The kernel family and flags of a cell math."""
    ln = cell.layer_norm
    if isinstance(cell, LSTMMath):  # DepthGatedMath too
        gates = set(cell.gates_hh)
        v = cell.variant
        flags = ((_LSTM_HAS_I if "i" in gates else 0) | (_LSTM_HAS_F if "f" in gates else 0)
                 | (_LSTM_HAS_O if "o" in gates else 0) | (_LSTM_CIFG if v == "cifg" else 0)
                 | (_LSTM_NIAF if v == "niaf" else 0) | (_LSTM_NOAF if v == "noaf" else 0)
                 | (_LSTM_PEEPHOLE if v == "peephole" else 0)
                 | (_LSTM_DEPTH if isinstance(cell, DepthGatedMath) else 0) | (_LSTM_LN if ln else 0))
        return "lstm", flags
    if isinstance(cell, GRUMath):
        return "gru", GRUMath.variants.index(cell.variant) | (_GRU_LN if ln else 0)
    if isinstance(cell, ClockworkMath):
        return "rnn", _RNN_CLOCKWORK | (_RNN_LN if ln else 0)
    if isinstance(cell, RNNMath):
        return "rnn", (_RNN_RELU if cell.variant == "relu" else 0) | (_RNN_LN if ln else 0)
    raise TypeError(f"the fused engine has no kernel for {type(cell).__name__}")


def supports(cell: CellMath) -> bool:
    """True if a compiled kernel runs this cell (every built-in family)."""
    return isinstance(cell, (LSTMMath, GRUMath, RNNMath, ClockworkMath))


class FusedSequence(torch.autograd.Function):
    """Whole-sequence forward and BPTT of one kernel. Differentiable arguments: ``inputs`` (a kernel's
    :data:`INPUTS`, None where absent). Outputs ``(sequence of h, h_T, c_T, sequence of c)``; the last two
    are empty tensors for cells without a cell state. With the layer input in ``aux`` (x, W_ih, b_ih), the
    kernel projects it itself and ``gx`` is :class:`DeferredLinear`'s stand-in."""

    @staticmethod
    def forward(ctx, kernel: Kernel, aux: list, *inputs):
        projects = aux[5] is not None
        outputs, saved = kernel.forward([None, *inputs[1:]] if projects else list(inputs), aux, all_states=True,
                                        save=True)
        ctx.kernel, ctx.aux = kernel, [*aux[:5], None, None, None]  # the backward reads no x
        # the backward needs gx's shape and dtype, not its values: keep a one-element stand-in, so that the
        # projections of every step (T, B, D_gx) are freed as soon as the layer drops them
        gx = inputs[0]
        ctx.save_for_backward(gx.new_empty(1).expand(gx.shape), *inputs[1:], outputs[0], *saved)
        ctx.set_materialize_grads(False)
        return tuple(outputs)

    @staticmethod
    def backward(ctx, *grads):
        tensors = ctx.saved_tensors
        n = len(INPUTS[ctx.kernel.family])
        inputs, saved = list(tensors[:n]), list(tensors[n:])
        grads = [None if g is None else g.contiguous() for g in grads]
        result = ctx.kernel.backward(grads, saved, inputs, ctx.aux)
        needs = ctx.needs_input_grad[2:]
        return (None, None, *(g if (need and g.numel()) else None for g, need in zip(result, needs, strict=True)))


class FusedLinear(torch.autograd.Function):
    """``x @ weight.T + bias`` over all leading dimensions at once, with the fused engine's GEMM
    (``csrc/linear.cpp``); the backward's ``dx`` on the same GEMM, ``dW`` one BLAS GEMM, ``db`` a sum."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None):
        x2 = x.reshape(-1, x.shape[-1]).contiguous()  # (R, K)
        ctx.save_for_backward(x2, weight.contiguous())
        ctx.has_bias, ctx.shape = bias is not None, x.shape
        return _linear_forward(x2, weight, bias).view(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, dy: Tensor):
        x2, weight = ctx.saved_tensors
        needs = list(ctx.needs_input_grad)
        dx, dw, db = torch.ops.rnnlab.linear_backward(dy.reshape(-1, weight.shape[0]).contiguous(), x2, weight,
                                                      ctx.has_bias, *needs)
        return (dx.view(ctx.shape) if needs[0] else None, dw if needs[1] else None,
                db if (needs[2] and ctx.has_bias) else None)


class DeferredLinear(FusedLinear):
    """The input projection of a sequence whose kernel projects the input itself, a few steps at a time (in
    cache; ``gx`` ``(T, B, D_gx)`` is never stored whole). The forward computes nothing: it returns a stand-in
    of ``gx``'s shape (one element, expanded) that holds the projection's place in the autograd graph; the
    backward is :class:`FusedLinear`'s, on the ``d gx`` that the kernel's backward returns. A node of its own,
    so that the sequence's saved buffers are freed before it runs."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None):
        ctx.save_for_backward(x.reshape(-1, x.shape[-1]).contiguous(), weight.contiguous())
        ctx.has_bias, ctx.shape = bias is not None, x.shape
        return x.new_empty(1).expand(*x.shape[:-1], weight.shape[0])


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.linear`` on the fused engine's GEMM (CPU float32/float64; else torch's)."""
    if not _usable(x, (weight, bias)) or not build.load():
        return torch.nn.functional.linear(x, weight, bias)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (x, weight, bias)):
        return FusedLinear.apply(x, weight, bias)
    return _linear_forward(x, weight, bias)


def _linear_forward(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``x @ weight.T + bias`` on the engine's GEMM, ``(..., K) -> (..., N)``; no autograd."""
    x2 = x.reshape(-1, x.shape[-1]).contiguous()  # (R, K)
    y = torch.ops.rnnlab.linear_forward(x2, weight.contiguous(), None if bias is None else bias.contiguous())
    return y.view(*x.shape[:-1], weight.shape[0])  # (..., N)


def project_input(cell: CellMath, x: Tensor, p: Params) -> Tensor:
    """``cell.project_input(x, p)``, with the fused engine's GEMM where the projection is a plain affine map."""
    if cell.input_is_affine():
        return linear(x, p["weight_ih"], p.get("bias_ih"))
    return cell.project_input(x, p)


def _aux(cell: CellMath, state0: State, lengths: Tensor | None, zoneout: Zoneout | None, p: Params):
    """The kernel's aux list and the zoneout rate of evaluation (0 if none or in training)."""
    aux: list = [None] * len(AUX)
    if lengths is not None:
        aux[0] = lengths.to(device="cpu", dtype=torch.int64).contiguous()
    rate = 0.0
    if zoneout is not None:
        if zoneout.masks is None:
            rate = zoneout.rate
        else:
            for i, mask in zoneout.masks.items():
                aux[1 + i] = mask.contiguous()
    if isinstance(cell, ClockworkMath):
        aux[3] = p["unit_periods"].detach().contiguous()
        aux[4] = state0[1].detach()[:, 0].contiguous()
    return aux, rate


def _usable(gx: Tensor, tensors) -> bool:
    if gx.device.type != "cpu" or gx.dtype not in (torch.float32, torch.float64):
        return False
    return all(t is None or (t.device == gx.device and t.dtype == gx.dtype) for t in tensors)


def run_fused(cell: CellMath, gx: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None,
              zoneout: Zoneout | None = None, all_states: bool = False):
    """Run ``cell`` over ``gx`` ``(T, B, D_gx)`` from ``state0``; the contract of :func:`run_reference`.

    Inside :func:`rnnlab.cells.probe.probing` it runs the reference engine, which reports every gate and state.
    """
    if not supports(cell) or active_probe() is not None or not build.load():
        return run_reference(cell, gx, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)
    result = _run_kernel(cell, gx, None, state0, cell.prepare(p), lengths, zoneout, all_states)
    if result is None:
        return run_reference(cell, gx, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)
    return result


def run_from_input(cell: CellMath, x: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None,
                   zoneout: Zoneout | None = None, all_states: bool = False):
    """:func:`run_fused` on ``gx = cell.project_input(x, p)``, ``x`` ``(T, B, I)``.

    With an affine input projection the kernel projects the input itself a few steps at a time, so the
    projections stay in cache and ``gx`` is never stored whole; in training, :class:`DeferredLinear` stands in
    for ``gx`` in the graph and gives ``x`` and the input weights their gradients. Otherwise the projection of
    every step is hoisted into one GEMM (:func:`project_input`).
    """
    if (cell.input_is_affine() and supports(cell) and active_probe() is None and build.load()
            and _usable(x, (p["weight_ih"], p.get("bias_ih")))):
        result = _run_kernel(cell, None, x, state0, cell.prepare(p), lengths, zoneout, all_states)
        if result is not None:
            return result
    return run_fused(cell, project_input(cell, x, p), state0, p, lengths=lengths, zoneout=zoneout,
                     all_states=all_states)


def _run_kernel(cell: CellMath, gx: Tensor | None, x: Tensor | None, state0: State, p: Params, lengths, zoneout,
                all_states: bool):
    """One kernel call on ``gx``, or on ``x`` with the input weights; None if the kernel cannot take these
    tensors (device, dtype)."""
    family, flags = _flags(cell)
    given = {"gx": gx, "h0": state0[0], "c0": state0[1] if family == "lstm" else None, **p}
    inputs = [given.get(name) for name in INPUTS[family]]
    if not _usable(x if gx is None else gx, inputs):
        return None
    inputs = [None if t is None else t.contiguous() for t in inputs]
    aux, rate = _aux(cell, state0, lengths, zoneout, p)
    kernel = Kernel(family, flags, cell.hidden_size, rate)
    if gx is None:  # the kernel projects x itself
        aux[5:8] = [t if t is None else t.contiguous() for t in (x, p["weight_ih"], p.get("bias_ih"))]
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in (*aux[5:8], *inputs)):
        if gx is None:  # a stand-in of gx in the graph (T, B, D_gx), whose backward gives x and W_ih theirs
            inputs[0] = DeferredLinear.apply(*aux[5:8])
        hseq, h_T, c_T, cseq = FusedSequence.apply(kernel, aux, *inputs)
    else:
        (hseq, h_T, c_T, cseq), _ = kernel.forward(inputs, aux, all_states=all_states, save=False)
    if family == "lstm":
        return ((hseq, cseq) if all_states else hseq), (h_T, c_T)
    if isinstance(cell, ClockworkMath):
        return _clockwork_outputs(hseq, h_T, state0[1], lengths, all_states)
    return ((hseq,) if all_states else hseq), (h_T,)


def _clockwork_outputs(hseq: Tensor, h_T: Tensor, clock0: Tensor, lengths: Tensor | None, all_states: bool):
    """The clock of a clockwork state counts the steps each sequence has taken: ``clock0 + min(t+1, len)``."""
    T = hseq.shape[0]
    steps = torch.arange(1, T + 1, device=hseq.device, dtype=hseq.dtype).view(T, 1, 1)  # (T, 1, 1)
    if lengths is not None:
        steps = torch.minimum(steps, lengths.to(hseq.device, hseq.dtype).view(1, -1, 1))  # (T, B, 1)
    clocks = clock0.unsqueeze(0) + steps  # (T, B, 1)
    final = (h_T, clocks[-1])
    return ((hseq, clocks) if all_states else hseq), final
