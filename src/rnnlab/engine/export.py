"""The engine under the dynamo ONNX exporter (``torch.onnx.export(..., dynamo=True)``): the reference step inside
torch's ``scan`` higher-order op, which the exporter writes as ONNX's ``Scan`` (opset 9+), so every family and
variant exports with a dynamic batch size and sequence length.

Equivalent to :func:`rnnlab.engine.reference.run_reference` (the same ``cell.step``, zoneout mix and length mask)::

    carry = state0
    for t in range(T):                              # ONNX Scan over the time axis of (gx, t, masks)
        new = cell.step(gx[t], carry, p)
        new = zoneout.mix(t, carry, new)            # if zoneout
        carry = where(t < lengths, new, carry)      # if packed
        emit carry (all state tensors, or h only)

A Python loop, as in the reference, would be traced once per example step and bake the example's length into
the graph; torch's own recurrent layers are unrolled by this exporter the same way, so the vanilla configurations
take this path too. The fused engine's registered ops stay in ``torch.export`` programs (no ONNX translation).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch._higher_order_ops.scan import scan

from rnnlab.cells.base import CellMath, Params, State
from rnnlab.engine.zoneout import Zoneout


def exporting_to_onnx() -> bool:
    """True while the dynamo ONNX exporter traces a model (torch.export under ``torch.onnx.export``)."""
    return torch.onnx.is_in_onnx_export() and torch.compiler.is_compiling()


def scan_steps(step: Callable[[State, list[Tensor]], State], state0: State, xs: list[Tensor], *,
               emit_all: bool = False) -> tuple[State, list[Tensor]]:
    """``state_t = step(state_{t-1}, [x[t] for x in xs])`` for ``t < T`` (every ``x`` ``(T, ...)``), as one ``scan``.

    Returns ``(final state, [stacked state[0] (T, ...)])``, or every state tensor stacked with ``emit_all``.
    ``step`` must close over detached tensors only: ONNX models are for inference, and torch's scan cannot
    trace its autograd with symbolic sizes (the exporter's type-promotion pass runs the graph with gradients).
    """

    def body(carry: list[Tensor], x_t: list[Tensor]):
        new = step(tuple(carry), x_t)
        emitted = new if emit_all else new[:1]
        return list(new), [e.clone() for e in emitted]  # scan's outputs may not alias its carry

    # cloned: the carries may not alias each other (a zero initial state is often one tensor used twice)
    final, sequence = scan(body, [s.detach().clone() for s in state0], [x.detach() for x in xs])
    return tuple(final), sequence


def run_scan(cell: CellMath, gx: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None,
             zoneout: Zoneout | None = None, all_states: bool = False):
    """:func:`rnnlab.engine.reference.run_reference`'s contract (``gx`` ``(T, B, D_gx)``, ``state0`` a tuple
    of ``(B, n)``), computed as one ``scan`` over time."""
    # detached (see scan_steps) and cloned: the scan's inputs may not alias each other, and a prepared entry
    # can be a view of a parameter
    p = {name: value.detach().clone() for name, value in cell.prepare(p).items()}
    masks = sorted(zoneout.masks.items()) if zoneout is not None and zoneout.masks is not None else []
    step_index = torch.arange(gx.shape[0], device=gx.device)  # (T,): the scan's view of t

    def step(old: State, x_t: list[Tensor]) -> State:
        gx_t, t, *step_masks = x_t
        new = cell.step(gx_t, old, p)
        if zoneout is not None:  # this step's masks as a one-step plan (None in evaluation: the expectation)
            step_plan = Zoneout(zoneout.rate, zoneout.state_indices, {i: m.unsqueeze(0) for (i, _), m in
                                                                      zip(masks, step_masks, strict=True)} or None)
            new = step_plan.mix(0, old, new)
        if lengths is not None:
            active = (t < lengths).unsqueeze(1)  # (B, 1)
            new = tuple(torch.where(active, n, o) for n, o in zip(new, old, strict=True))
        return new

    final, sequence = scan_steps(step, state0, [gx, step_index, *(m for _, m in masks)], emit_all=all_states)
    return (tuple(sequence) if all_states else sequence[0]), final
