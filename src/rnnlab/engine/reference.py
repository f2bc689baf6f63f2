"""The reference engine: a plain loop over time with autograd. It is the spec every faster engine is tested
against, so it stays as simple as the math allows.

Equivalent to::

    p = cell.prepare(p)
    state = state0
    for t in range(T):
        new = cell.step(gx[t], state, p)          # (B, n) per state tensor
        new = zoneout.mix(t, state, new)          # if zoneout
        state = where(t < lengths, new, state)    # if packed: finished sequences keep their state
        outputs.append(state[0])
"""

from __future__ import annotations

import torch
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State
from rnnlab.cells.probe import active_probe
from rnnlab.engine.zoneout import Zoneout


def run_reference(cell: CellMath, gx: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None,
                  zoneout: Zoneout | None = None, all_states: bool = False):
    """Run ``cell`` over ``gx`` ``(T, B, D_gx)`` from ``state0`` (tuple of ``(B, n)``).

    Returns ``(sequence, final_state)``: ``sequence`` is ``(T, B, n_0)`` (``h_t`` at every step), or with
    ``all_states`` a tuple with every state tensor at every step; ``final_state`` is a tuple of ``(B, n)``.
    With ``lengths`` ``(B,)``, batch element ``b`` stops updating after ``lengths[b]`` steps.
    """
    p = cell.prepare(p)
    probe = active_probe()
    if probe is not None:
        probe.begin_sequence()
    state = state0
    steps = []
    for t in range(gx.shape[0]):
        new = cell.step(gx[t], state, p)
        if zoneout is not None:
            new = zoneout.mix(t, state, new)
        if lengths is not None:
            active = (t < lengths).unsqueeze(1)  # (B, 1)
            new = tuple(torch.where(active, n, o) for n, o in zip(new, state, strict=True))
        state = new
        if probe is not None:
            carried = tuple(state[i] for i in cell.flow_states)
            for part in carried:
                if part.requires_grad:
                    part.retain_grad()
            probe.states[-1].append(carried)
        steps.append(state)
    if all_states:
        sequence = tuple(torch.stack(s) for s in zip(*steps, strict=True))
    else:
        sequence = torch.stack([s[0] for s in steps])
    return sequence, state
