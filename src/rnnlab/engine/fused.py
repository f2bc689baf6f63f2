"""The fused engine: a whole sequence per call of compiled C++ (``engine/csrc``), with a hand-written BPTT.

Same contract as :func:`rnnlab.engine.reference.run_reference`, which stays the spec. Each family's kernel runs
the loop over time in C++ on the input projections ``gx = cell.project_input(x, p)``: given whole, or (affine
projections, :func:`run_from_input`) computed by the kernel a chunk of steps at a time. Per step one recurrent
GEMM into a preallocated buffer and the gate math as vectorised C++ loops; in the backward, per step the GEMM
of the state gradient, and after the loop the weight gradients as a few GEMMs over all ``T*B`` rows
(``dW_hh = sum_t dA_t^T h_{t-1}``).

Each family's kernel is one registered op, ``rnnlab::<family>_sequence`` (:mod:`rnnlab.engine.ops`: schemas,
fake implementations, autograd, vmap, and the table of what each kernel supports):

- training (any input requires grad): the op keeps the activated gates of every step for its backward;
- inference (no grad): the forward kernel alone, which keeps one step of buffers.

Every family and variant of the table runs here: ``rnn`` (tanh, relu, clockwork), ``lstm`` (the eight variants,
``proj_size``, depth-gated), ``gru`` (the six variants), each with or without ``layer_norm``, packed lengths
and zoneout. Tensors on another device than the CPU, dtypes other than float32/float64, a failed build
(:mod:`rnnlab.engine.build` warns) and probed runs (:mod:`rnnlab.cells.probe`) go to the reference engine.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells import ClockworkMath
from rnnlab.cells.base import CellMath, Params, State
from rnnlab.cells.probe import active_probe
from rnnlab.engine import build, ops
from rnnlab.engine.reference import run_reference
from rnnlab.engine.zoneout import Zoneout


def supports(cell: CellMath) -> bool:
    """True if a compiled kernel runs this cell (the table :data:`rnnlab.engine.ops.SUPPORT`)."""
    return not isinstance(ops.plan(cell), str)


class FusedLinear(torch.autograd.Function):
    """``x @ weight.T + bias`` over all leading dimensions at once, with the fused engine's GEMM
    (``csrc/linear.cpp``); the backward's ``dx`` on the same GEMM, ``dW`` one BLAS GEMM, ``db`` a sum."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None):
        ctx.save_for_backward(x, weight)  # the tensors themselves (views made here would have no history)
        ctx.has_bias = bias is not None
        return _linear_forward(x, weight, bias)

    @staticmethod
    def backward(ctx, dy: Tensor):
        x, weight = ctx.saved_tensors
        return ops.input_projection_grads(dy, x, weight, ctx.has_bias, ctx.needs_input_grad)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.linear`` on the fused engine's GEMM (CPU float32/float64; else torch's)."""
    if ops.traced((x,)) or not _usable(x, (weight, bias)) or not build.load():
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
    """The kernel's aux tensors by name (:data:`rnnlab.engine.ops.AUX`) and the zoneout rate of evaluation (0 if
    none or in training)."""
    aux: dict[str, Tensor | None] = {}
    if lengths is not None:
        aux["lengths"] = lengths.to(device="cpu", dtype=torch.int64).contiguous()
    rate = 0.0
    if zoneout is not None:
        if zoneout.masks is None:
            rate = zoneout.rate
        else:
            for i, mask in zoneout.masks.items():
                aux[("mask_h", "mask_c")[i]] = mask.contiguous()
    if isinstance(cell, ClockworkMath):
        aux["periods"] = p["unit_periods"].detach().contiguous()
        aux["clock0"] = state0[1].detach()[:, 0].contiguous()
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
    if (not supports(cell) or active_probe() is not None or ops.transformed()
            or not (ops.traced((gx,)) or build.load())):
        return run_reference(cell, gx, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)
    result = _run_kernel(cell, gx, None, state0, cell.prepare(p), lengths, zoneout, all_states)
    if result is None:
        return run_reference(cell, gx, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)
    return result


def run_from_input(cell: CellMath, x: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None,
                   zoneout: Zoneout | None = None, all_states: bool = False):
    """:func:`run_fused` on ``gx = cell.project_input(x, p)``, ``x`` ``(T, B, I)``.

    With an affine input projection the kernel projects the input itself a few steps at a time, so the
    projections stay in cache and ``gx`` is never stored whole; in training, the op's backward gives ``x`` and
    the input weights their gradients from the ``d gx`` of its kernel (:func:`rnnlab.engine.ops.call`: no
    autograd node of their own). Otherwise the projection of every step is hoisted into one GEMM
    (:func:`project_input`).
    """
    if (cell.input_is_affine() and supports(cell) and active_probe() is None and not ops.traced((x,))
            and build.load() and _usable(x, (p["weight_ih"], p.get("bias_ih")))):
        result = _run_kernel(cell, None, x, state0, cell.prepare(p), lengths, zoneout, all_states)
        if result is not None:
            return result
    return run_fused(cell, project_input(cell, x, p), state0, p, lengths=lengths, zoneout=zoneout,
                     all_states=all_states)


def _run_kernel(cell: CellMath, gx: Tensor | None, x: Tensor | None, state0: State, p: Params, lengths, zoneout,
                all_states: bool):
    """One call of the cell's registered op (:mod:`rnnlab.engine.ops`) on ``gx``, or on ``x`` with the input
    weights; None if the kernel cannot take these tensors (device, dtype)."""
    family, flags = ops.plan(cell)
    given = {"gx": gx, "h0": state0[0], "c0": state0[1] if family.states == 2 else None, **p}
    named = {name: given.get(name) for name in family.input_names}
    if not _usable(x if gx is None else gx, named.values()):
        return None
    named = {name: None if t is None else t.contiguous() for name, t in named.items()}
    aux, rate = _aux(cell, state0, lengths, zoneout, p)
    if gx is None:  # the kernel projects x itself
        aux.update(x=x.contiguous(), weight_ih=p["weight_ih"].contiguous(),
                   bias_ih=None if p.get("bias_ih") is None else p["bias_ih"].contiguous())
    grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                           for t in (*named.values(), *aux.values()))
    hseq, h_T, c_T, cseq, _ = ops.call(family, flags, cell.hidden_size, named, aux, all_states=all_states,
                                       zoneout_rate=rate, save=grad)
    if family.states == 2:
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
