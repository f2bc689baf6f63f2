"""The sLSTM's fused path: its compiled kernel (``csrc/slstm.cpp``), the registered op ``rnnlab::slstm_sequence``
of :mod:`rnnlab.engine.ops`, under the contract of :func:`rnnlab.engine.reference.run_reference`.

The op carries the cell state as ``[c | n | m]`` ``(B, 3H)`` (its ``c0``/``c_T``, and ``cseq`` with all_states);
this module packs the layer's four states ``(h, c, n, m)`` into that layout and unpacks the results. The input
projection ``W x_t + b`` of every step is one GEMM before the kernel (:func:`rnnlab.engine.fused.project_input`);
the kernel runs the loop over time with one small GEMM per gate and head per step (the block-diagonal ``R``)
and the pointwise math of :meth:`rnnlab.cells.slstm.SLSTMMath.step`, and its hand-written BPTT. Zoneout, probes,
``torch.func`` transforms, other devices and dtypes run the reference engine.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import Params, State
from rnnlab.cells.probe import active_probe
from rnnlab.cells.slstm import SLSTMMath
from rnnlab.engine import build, fused, ops
from rnnlab.engine.zoneout import Zoneout


def supports(cell, x: Tensor, state0: State, p: Params, zoneout: Zoneout | None = None) -> bool:
    """True if the sLSTM kernel runs ``cell`` here (an sLSTM in the support table, no zoneout or probe, CPU
    float32/float64, not inside a torch.func transform, the kernels built or the call traced)."""
    return (isinstance(cell, SLSTMMath) and zoneout is None and active_probe() is None and fused.supports(cell)
            and not ops.transformed() and fused._usable(x, (*state0, *p.values()))
            and (ops.traced((x,)) or build.load()))


def run_slstm(cell: SLSTMMath, gx: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None,
              all_states: bool = False):
    """Run the sLSTM over ``gx`` ``(T, B, 4H)`` from ``state0 = (h, c, n, m)``; ``run_reference``'s contract."""
    family, flags = ops.plan(cell)
    H = cell.hidden_size
    named = {"gx": gx.contiguous(), "h0": state0[0].contiguous(),
             "c0": torch.cat(state0[1:], dim=-1).contiguous(),  # (B, 3H) = [c | n | m]
             "weight_hh": p["weight_hh"].contiguous()}
    aux = {} if lengths is None else {"lengths": lengths.to(device="cpu", dtype=torch.int64).contiguous()}
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in named.values())
    hseq, h_T, s_T, sseq, _ = ops.call(family, flags, H, named, aux, all_states=all_states, zoneout_rate=0.0,
                                       save=grad)
    final = (h_T, *s_T.split(H, dim=-1))  # (B, H) each
    if all_states:
        return (hseq, *sseq.split(H, dim=-1)), final
    return hseq, final


def run_from_input(cell: SLSTMMath, x: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None,
                   all_states: bool = False):
    """:func:`run_slstm` on ``gx = cell.project_input(x, p)``, ``x`` ``(T, B, I)``."""
    return run_slstm(cell, fused.project_input(cell, x, p), state0, p, lengths=lengths, all_states=all_states)
