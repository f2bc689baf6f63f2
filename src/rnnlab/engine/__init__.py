"""Running a cell over a whole sequence: the reference loop (the spec) and faster engines."""

from rnnlab.engine.reference import run_reference
from rnnlab.engine.zoneout import Zoneout

BACKENDS = ("reference",)


def run(cell, gx, state0, p, *, lengths=None, zoneout=None, all_states=False, backend="reference"):
    """Dispatch to the engine named by ``backend``; see :func:`run_reference` for the contract."""
    return run_reference(cell, gx, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)


__all__ = ["BACKENDS", "Zoneout", "run", "run_reference"]
