"""IndRNN's fused path: the whole sequence in compiled C++ (``csrc/indrnn.cpp``), forward and hand-written BPTT.

Each (batch element, unit) is its own scalar recurrence :math:`h_t = \\mathrm{ReLU}(g_t + u h_{t-1})`, so the kernel
runs the columns in parallel threads with no synchronisation between steps; the backward walks each column back
in time: :math:`\\delta_t = [h_t > 0] (\\partial L / \\partial h_t)`, :math:`\\partial L / \\partial g_t =
\\delta_t`, :math:`\\partial L / \\partial u = \\sum_t \\delta_t h_{t-1}`, :math:`\\partial L / \\partial h_{t-1}
\\mathrel{+}= u \\delta_t`. The input projection ``W x_t + b`` of every step is one GEMM before the kernel
(:func:`rnnlab.engine.fused.project_input`). Same contract as :func:`rnnlab.engine.reference.run_reference`,
which stays the spec (tests hold the two together in float64 with ``gradcheck``).
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import Params, State
from rnnlab.cells.indrnn import IndRNNMath
from rnnlab.engine import build


def supports(cell, x: Tensor, p: Params) -> bool:
    """True if the compiled IndRNN kernel runs this cell on these tensors (CPU, float32/float64, built)."""
    return (isinstance(cell, IndRNNMath) and x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
            and all(t.dtype == x.dtype and t.device == x.device for t in p.values()) and build.load())


class IndRNNSequence(torch.autograd.Function):
    """``(gx (T, B, H), h0 (B, H), u (H,), lengths) -> (hseq (T, B, H), h_T (B, H))`` and its BPTT."""

    @staticmethod
    def forward(ctx, gx: Tensor, h0: Tensor, u: Tensor, lengths: Tensor | None):
        hseq, h_last = torch.ops.rnnlab.indrnn_forward(gx, h0, u, lengths)
        ctx.save_for_backward(hseq, h0, u)
        ctx.lengths = lengths
        ctx.set_materialize_grads(False)
        return hseq, h_last

    @staticmethod
    def backward(ctx, grad_seq: Tensor | None, grad_last: Tensor | None):
        hseq, h0, u = ctx.saved_tensors
        grads = [None if g is None else g.contiguous() for g in (grad_seq, grad_last)]
        dgx, dh0, du = torch.ops.rnnlab.indrnn_backward(*grads, hseq, h0, u, ctx.lengths)
        return dgx, dh0, du, None


def run_indrnn(cell: IndRNNMath, gx: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None,
               all_states: bool = False):
    """Run IndRNN over ``gx`` ``(T, B, H)`` from ``state0`` ``(h0,)``; the contract of ``run_reference``."""
    p = cell.prepare(p)  # the bounded u
    lengths = None if lengths is None else lengths.to(device="cpu", dtype=torch.int64).contiguous()
    args = (gx.contiguous(), state0[0].contiguous(), p["weight_hh"].contiguous(), lengths)
    if torch.is_grad_enabled() and any(t.requires_grad for t in args[:3]):
        hseq, h_last = IndRNNSequence.apply(*args)
    else:
        hseq, h_last = torch.ops.rnnlab.indrnn_forward(*args)
    return ((hseq,) if all_states else hseq), (h_last,)
