"""Running a cell over a whole sequence: the reference loop (the spec) and the fused engine.

- ``"fused"`` (default): :func:`rnnlab.engine.fused.run_fused`, compiled C++ with a hand-written backward;
- ``"reference"``: :func:`rnnlab.engine.reference.run_reference`, the autograd loop every engine is tested
  against.

Cells whose recurrence is linear in the state (minGRU, minLSTM, LRU) run on the ``"fused"`` backend as a
parallel scan (:mod:`rnnlab.engine.scan`), unless zoneout or a probe needs the steps one by one; IndRNN runs
on its compiled kernel like the classic cells (a registered op of :mod:`rnnlab.engine.ops`), and the sLSTM on its
own (:mod:`rnnlab.engine.slstm`, which packs its four states into the op's layout). With ``"fused"``
on a CUDA device, and under the classic ONNX exporter, :mod:`rnnlab.engine.native` routes torch's own
configurations to torch's kernels (see there). Under the dynamo ONNX exporter every configuration runs the
reference step inside torch's ``scan`` (:mod:`rnnlab.engine.export`), which becomes ONNX's ``Scan`` with a
dynamic sequence length.
"""

from rnnlab.cells.probe import active_probe
from rnnlab.engine import export, fused, native, scan, slstm
from rnnlab.engine.fused import run_fused
from rnnlab.engine.reference import run_reference
from rnnlab.engine.zoneout import Zoneout

BACKENDS = ("fused", "reference")
DEFAULT_BACKEND = "fused"


def run(cell, gx, state0, p, *, lengths=None, zoneout=None, all_states=False, backend=DEFAULT_BACKEND):
    """Dispatch to the engine named by ``backend``; see :func:`run_reference` for the contract."""
    if backend != "reference" and slstm.supports(cell, gx, state0, p, zoneout):
        return slstm.run_slstm(cell, gx, state0, p, lengths=lengths, all_states=all_states)
    engine = run_reference if backend == "reference" else run_fused
    return engine(cell, gx, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)


def run_from_input(cell, x, state0, p, *, lengths=None, zoneout=None, all_states=False, backend=DEFAULT_BACKEND):
    """:func:`run` on ``gx = cell.project_input(x, p)`` (``x`` ``(T, B, I)``), projected by the engine: the
    reference projects every step at once; the fused engine too in training, and in inference a few steps
    at a time inside its kernel."""
    if export.exporting_to_onnx():
        return export.run_scan(cell, cell.project_input(x, p), state0, p, lengths=lengths, zoneout=zoneout,
                               all_states=all_states)
    way = native.route(cell, x, zoneout, all_states, backend=backend)
    if way == "native":
        return native.run_native(cell, x, state0, p, lengths=lengths)
    if way == "reference":
        return run_reference(cell, cell.project_input(x, p), state0, p, lengths=lengths, zoneout=zoneout,
                             all_states=all_states)
    if zoneout is None and active_probe() is None and scan.supports(cell, all_states):
        return scan.run_scan(cell, x, state0, p, lengths=lengths, all_states=all_states)
    if slstm.supports(cell, x, state0, p, zoneout):
        return slstm.run_from_input(cell, x, state0, p, lengths=lengths, all_states=all_states)
    if isinstance(cell, slstm.SLSTMMath):  # zoneout, a probe, a transform, another device: the spec itself
        return run_reference(cell, cell.project_input(x, p), state0, p, lengths=lengths, zoneout=zoneout,
                             all_states=all_states)
    return fused.run_from_input(cell, x, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)


__all__ = ["BACKENDS", "DEFAULT_BACKEND", "Zoneout", "run", "run_from_input", "run_fused", "run_reference"]
