"""The fused engine equals the reference engine (the spec) in float64: outputs, final states and every
gradient, for every family and variant, with layer norm, packed lengths, zoneout (training masks and
evaluation), all_states, proj_size, depth-gated and clockwork cells; and gradcheck of the fused Function."""

import pytest
import torch

from rnnlab.cells import ClockworkMath, DepthGatedMath, GRUMath, LSTMMath, RNNMath
from rnnlab.engine import build, fused, ops
from rnnlab.engine.fused import run_fused
from rnnlab.engine.reference import run_reference
from rnnlab.engine.zoneout import Zoneout

DT = torch.float64
T, B = 6, 3
LENGTHS = torch.tensor([6, 2, 4])


def cells():
    """(id, cell math, input size) for every kernel configuration."""
    out = []
    for v in LSTMMath.variants:
        for ln in (False, True):
            for proj in (0, 3):
                out.append((f"lstm:{v}{':ln' if ln else ''}{':proj' if proj else ''}",
                            LSTMMath(5, v, layer_norm=ln, proj_size=proj), 4))
    for v in GRUMath.variants:
        for ln in (False, True):
            out.append((f"gru:{v}{':ln' if ln else ''}", GRUMath(5, v, layer_norm=ln), 5))
    for v in RNNMath.variants:
        for ln in (False, True):
            out.append((f"rnn:{v}{':ln' if ln else ''}", RNNMath(5, v, layer_norm=ln), 4))
    for ln in (False, True):
        out.append((f"clockwork{':ln' if ln else ''}", ClockworkMath(7, periods=(1, 2, 4), layer_norm=ln), 4))
        out.append((f"dglstm{':ln' if ln else ''}", DepthGatedMath(5, layer_norm=ln), 5))
    return out


CELLS = cells()
MODES = {  # name: (lengths, zoneout rate, training, all_states)
    "plain": (None, 0.0, True, False),
    "packed+zoneout": (LENGTHS, 0.3, True, False),
    "zoneout-eval+all_states": (None, 0.3, False, True),
}


def make_inputs(cell, input_size, steps=T, batch=B, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = {k: torch.randn(s, dtype=DT, generator=g).requires_grad_() for k, s in cell.param_shapes(input_size).items()}
    x = torch.randn(steps, batch, cell.input_width(input_size), dtype=DT, generator=g, requires_grad=True)
    state0 = [torch.randn(batch, n, dtype=DT, generator=g, requires_grad=True) for n in cell.state_sizes()]
    if isinstance(cell, ClockworkMath):  # the clock: steps already taken by each sequence
        state0[1] = torch.tensor([[0.0], [3.0], [5.0]][:batch], dtype=DT)
    return x, tuple(state0), p


def engines_outputs_and_grads(cell, x, state0, p, project=None, **options):
    """``[(outputs, grads)]`` of the reference engine, then the fused one: every output and the gradients of a
    fixed random weighting of them with respect to ``x``, the differentiable states and the parameters.
    ``project(cell, x, p)`` gives the engines' input (default: the cell's ``project_input``)."""
    leaves = [x, *(s for s in state0 if s.requires_grad), *p.values()]
    results = []
    for engine in (run_reference, run_fused):
        gx = cell.project_input(x, p) if project is None else project(cell, x, p)
        sequence, final = engine(cell, gx, state0, p, **options)
        outputs = [*(sequence if isinstance(sequence, tuple) else (sequence,)), *final]
        g = torch.Generator().manual_seed(1)
        loss = sum((o * torch.randn(o.shape, dtype=o.dtype, generator=g)).sum() for o in outputs)
        results.append((outputs, torch.autograd.grad(loss, leaves, allow_unused=True)))
    return results


def assert_engines_agree(results, rtol, atol, grad_rtol=None, grad_atol=None):
    """The fused engine's outputs and gradients equal the reference's (``results`` as from
    :func:`engines_outputs_and_grads`) within the tolerances; the same gradients are absent in both."""
    (ref_out, ref_grads), (out, grads) = results
    assert len(out) == len(ref_out)
    for a, b in zip(out, ref_out, strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
    for a, b in zip(grads, ref_grads, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=grad_rtol or rtol, atol=grad_atol or atol)


def run_both(cell, input_size, lengths, rate, training, all_states):
    """Outputs and gradients (of a random weighting of every output) from both engines."""
    x, state0, p = make_inputs(cell, input_size)
    zoneout = None
    if rate:
        zoneout = Zoneout.plan(rate, cell.zoneout_states, cell.state_sizes(), T, B, training=training, like=x)
    return engines_outputs_and_grads(cell, x, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)


@pytest.fixture(autouse=True, scope="module")
def _no_reference_fallback():
    """The fused engine must not quietly run the reference: fail if it does."""
    assert build.load(), f"the fused kernels failed to build: {build.error()}"
    original = fused.run_reference

    def forbidden(*args, **kwargs):
        raise AssertionError("the fused engine fell back to the reference engine")

    fused.run_reference = forbidden
    yield
    fused.run_reference = original


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("name,cell,input_size", CELLS, ids=[c[0] for c in CELLS])
def test_fused_equals_reference(name, cell, input_size, mode):
    assert_engines_agree(run_both(cell, input_size, *MODES[mode]), rtol=1e-9, atol=1e-11)


def test_inference_path_equals_training_path():
    cell = LSTMMath(6, "peephole", layer_norm=True, proj_size=4)
    x, state0, p = make_inputs(cell, 3)
    gx = cell.project_input(x, p)
    (seq, (h, c)) = run_fused(cell, gx, state0, p, lengths=LENGTHS)
    with torch.no_grad():
        (seq_ng, (h_ng, c_ng)) = run_fused(cell, gx, state0, p, lengths=LENGTHS)
    assert not seq_ng.requires_grad
    for a, b in ((seq, seq_ng), (h, h_ng), (c, c_ng)):
        torch.testing.assert_close(a.detach(), b, rtol=0, atol=0)


FLOAT32 = [c for c in CELLS if c[0] in ("lstm:vanilla", "lstm:peephole:proj", "gru:vanilla", "gru:mgu", "rnn:tanh")]


@pytest.mark.parametrize("name,cell,input_size", FLOAT32, ids=[c[0] for c in FLOAT32])
def test_float32_close_to_reference(name, cell, input_size):
    """The C++ activations (polynomial exp/tanh) agree with torch's to float32 precision."""
    x, state0, p = make_inputs(cell, input_size)
    x, p = x.float(), {k: v.float() for k, v in p.items()}
    state0 = tuple(s.float() for s in state0)
    gx = cell.project_input(x, p)
    ref, _ = run_reference(cell, gx, state0, p)
    out, _ = run_fused(cell, gx, state0, p)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


# ---- gradcheck of the autograd.Function itself (T=4, B=2: the finite differences are many forwards) ----------
GRADCHECK = [  # (cell id, mode): every family and each feature of the kernels at least once
    ("lstm:peephole:ln:proj", "packed+zoneout"), ("lstm:cifg", "plain"), ("lstm:nog:proj", "zoneout-eval+all_states"),
    ("lstm:niaf", "packed+zoneout"), ("lstm:noaf:ln", "plain"), ("gru:vanilla:ln", "packed+zoneout"),
    ("gru:reset_before", "plain"), ("gru:mut1", "zoneout-eval+all_states"), ("gru:mut3:ln", "plain"),
    ("gru:mgu", "packed+zoneout"), ("rnn:relu", "packed+zoneout"), ("rnn:tanh:ln", "zoneout-eval+all_states"),
    ("clockwork", "packed+zoneout"), ("dglstm:ln", "packed+zoneout"),
]
_BY_ID = {c[0]: c for c in CELLS}


@pytest.mark.parametrize("cell_id,mode", GRADCHECK, ids=[f"{c}-{m}" for c, m in GRADCHECK])
def test_gradcheck_fused_function(cell_id, mode):
    _, cell, input_size = _BY_ID[cell_id]
    steps, batch = 4, 2
    lengths, rate, training, _ = MODES[mode]
    lengths = None if lengths is None else torch.tensor([4, 2])
    x, state0, p = make_inputs(cell, input_size, steps, batch)
    p = cell.prepare(p)
    family, flags = ops.plan(cell)
    zoneout = None
    if rate:
        zoneout = Zoneout.plan(rate, cell.zoneout_states, cell.state_sizes(), steps, batch, training=training,
                               like=x)
    aux, zrate = fused._aux(cell, state0, lengths, zoneout, p)
    given = {"gx": cell.project_input(x, p), "h0": state0[0], "c0": state0[1] if family.states == 2 else None, **p}
    inputs = [given.get(n) for n in family.input_names]
    inputs = [None if t is None else t.detach().contiguous().requires_grad_() for t in inputs]

    def fn(*tensors):
        named = dict(zip(family.input_names, tensors, strict=True))
        outputs = ops.call(family, flags, cell.hidden_size, named, aux, all_states=True, zoneout_rate=zrate,
                           save=True)[:4]
        return tuple(o for o in outputs if o.numel())

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


# ---- a failed build falls back to the reference, with a warning ------------------------------------------------
def test_failed_build_warns_and_runs_the_reference(monkeypatch):
    from torch.utils import cpp_extension

    def broken(*args, **kwargs):
        raise RuntimeError("no compiler here")

    monkeypatch.setattr(cpp_extension, "load", broken)
    monkeypatch.setattr(build, "_status", {"loaded": None, "error": None})
    monkeypatch.setattr(fused, "run_reference", run_reference)
    cell = GRUMath(4)
    x, state0, p = make_inputs(cell, 4)
    with pytest.warns(RuntimeWarning, match="could not build the fused engine"):
        out, _ = run_fused(cell, cell.project_input(x, p), state0, p)
    ref, _ = run_reference(cell, cell.project_input(x, p), state0, p)
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert isinstance(build.error(), RuntimeError)


# ---- float32: the packed-panel GEMM path (brgemm) runs when enough rows share a weight -------------------------
F32 = [c for c in CELLS if c[0] in ("lstm:vanilla", "lstm:peephole:ln:proj", "lstm:cifg", "gru:vanilla",
                                     "gru:mut3", "gru:mgu:ln", "rnn:relu", "clockwork", "dglstm")]


@pytest.mark.parametrize("name,cell,input_size", F32, ids=[c[0] for c in F32])
def test_float32_outputs_and_gradients_close_to_reference(name, cell, input_size):
    steps, batch = 16, 8  # 128 rows: enough to pack the weights (csrc/common.h: kPackMinRows)
    x, state0, p = make_inputs(cell, input_size, steps, batch)
    if isinstance(cell, ClockworkMath):
        state0 = (state0[0], torch.zeros(batch, 1, dtype=DT))
    x = x.detach().float().requires_grad_()
    p = {k: v.detach().float().mul(0.5).requires_grad_() for k, v in p.items()}
    state0 = tuple(s.detach().float().requires_grad_(s.requires_grad) for s in state0)
    results = engines_outputs_and_grads(cell, x, state0, p, fused.project_input, lengths=torch.arange(16, 8, -1))
    assert_engines_agree(results, rtol=1e-4, atol=1e-5, grad_rtol=1e-3, grad_atol=1e-4)


# ---- the input projection on the engine's GEMM --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rows", [5, 300])  # below and above the packing threshold
@pytest.mark.parametrize("width", [3, 33])  # the one-pass backward of narrow inputs, and the GEMMs
def test_fused_linear_equals_torch_linear(dtype, rows, width):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(rows, 2, width, dtype=dtype, generator=g, requires_grad=True)
    w = torch.randn(70, width, dtype=dtype, generator=g, requires_grad=True)
    b = torch.randn(70, dtype=dtype, generator=g, requires_grad=True)
    dy = torch.randn(rows, 2, 70, dtype=dtype, generator=g)
    tol = dict(rtol=1e-5, atol=1e-4) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    y, y_ref = fused.linear(x, w, b), torch.nn.functional.linear(x, w, b)
    torch.testing.assert_close(y, y_ref, **tol)
    for a, c in zip(torch.autograd.grad(y, (x, w, b), dy), torch.autograd.grad(y_ref, (x, w, b), dy), strict=True):
        torch.testing.assert_close(a, c, **tol)
    with torch.no_grad():
        torch.testing.assert_close(fused.linear(x, w), torch.nn.functional.linear(x, w), **tol)


@pytest.mark.parametrize("width", [3, 33])
@pytest.mark.parametrize("wanted", ["x", "w", "b", "wb"])
def test_fused_linear_gradients_of_some_inputs(width, wanted):
    """Each subset of the gradients (a layer's input rarely requires grad) equals torch's."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, width, dtype=DT, generator=g)
    w = torch.randn(24, width, dtype=DT, generator=g)
    b = torch.randn(24, dtype=DT, generator=g)
    leaves = [t.requires_grad_() for name, t in zip("xwb", (x, w, b), strict=True) if name in wanted]
    dy = torch.randn(40, 24, dtype=DT, generator=g)
    ours = torch.autograd.grad(fused.linear(x, w, b), leaves, dy)
    theirs = torch.autograd.grad(torch.nn.functional.linear(x, w, b), leaves, dy)
    for a, c in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-12, atol=1e-12)


def test_gradcheck_fused_linear():
    x = torch.randn(4, 3, 6, dtype=DT, requires_grad=True)
    w = torch.randn(8, 6, dtype=DT, requires_grad=True)
    b = torch.randn(8, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(fused.FusedLinear.apply, (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w: fused.FusedLinear.apply(x, w, None), (x, w))


@pytest.mark.parametrize("name,cell,input_size", CELLS, ids=[c[0] for c in CELLS])
def test_project_input_equals_the_cells(name, cell, input_size):
    x, _, p = make_inputs(cell, input_size)
    torch.testing.assert_close(fused.project_input(cell, x, p), cell.project_input(x, p), rtol=1e-12, atol=1e-12)


# ---- the row-parallel steps: several threads, each running whole steps on its block of batch rows ---------------
THREADED = [  # H = 32 and B = 512: enough work per step to wake the other thread
    ("lstm:peephole:proj", LSTMMath(32, "peephole", proj_size=16), 8),
    ("lstm:noaf:ln", LSTMMath(32, "noaf", layer_norm=True), 8),
    ("gru:vanilla", GRUMath(32), 8), ("gru:mut3:ln", GRUMath(32, "mut3", layer_norm=True), 8),
    ("gru:mgu", GRUMath(32, "mgu"), 8), ("rnn:tanh", RNNMath(32), 8),
    ("clockwork", ClockworkMath(32, periods=(1, 2, 4)), 8), ("dglstm", DepthGatedMath(32), 32),
]


@pytest.mark.parametrize("name,cell,input_size", THREADED, ids=[c[0] for c in THREADED])
def test_threaded_steps_equal_reference(name, cell, input_size):
    """A batch large enough for the steps to run in parallel (csrc/common.h: for_step_rows)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        steps, batch = 3, 512
        x, state0, p = make_inputs(cell, input_size, steps, batch)
        if isinstance(cell, ClockworkMath):
            state0 = (state0[0], torch.zeros(batch, 1, dtype=DT))
        zoneout = Zoneout.plan(0.2, cell.zoneout_states, cell.state_sizes(), steps, batch, training=True, like=x)
        lengths = torch.randint(1, steps + 1, (batch,))
        results = engines_outputs_and_grads(cell, x, state0, p, lengths=lengths, zoneout=zoneout)
        assert_engines_agree(results, rtol=1e-9, atol=1e-10)
    finally:
        torch.set_num_threads(threads)


# ---- inference from the layer input: the kernel projects a few steps at a time -----------------------------------
@pytest.mark.parametrize("mode", ["plain", "zoneout-eval+all_states"])
@pytest.mark.parametrize("name,cell,input_size", CELLS, ids=[c[0] for c in CELLS])
def test_inference_from_input_equals_reference(name, cell, input_size, mode):
    _, rate, _, all_states = MODES[mode]
    x, state0, p = make_inputs(cell, input_size)
    zoneout = Zoneout.plan(rate, cell.zoneout_states, cell.state_sizes(), T, B, training=False, like=x) if rate \
        else None
    with torch.no_grad():
        ref_seq, ref_final = run_reference(cell, cell.project_input(x, p), state0, p, lengths=LENGTHS,
                                           zoneout=zoneout, all_states=all_states)
        seq, final = fused.run_from_input(cell, x, state0, p, lengths=LENGTHS, zoneout=zoneout,
                                          all_states=all_states)
    for a, b in zip([*(seq if all_states else (seq,)), *final], [*(ref_seq if all_states else (ref_seq,)),
                                                                 *ref_final], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell", [LSTMMath(64, "peephole", proj_size=32), GRUMath(64, "mgu"), RNNMath(64, "relu")],
                         ids=["lstm", "gru", "rnn"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_inference_projects_in_chunks(cell, dtype):
    """Long enough for several chunks of steps (csrc/common.h: StepInput)."""
    x, state0, p = make_inputs(cell, 48, steps=40, batch=32)
    # weights of torch's init scale: random ones of scale 1 make 40 steps chaotic, amplifying rounding
    x, p, state0 = x.to(dtype), {k: 0.1 * v.to(dtype) for k, v in p.items()}, tuple(s.to(dtype) for s in state0)
    with torch.no_grad():
        ref, _ = run_reference(cell, cell.project_input(x, p), state0, p)
        out, _ = fused.run_from_input(cell, x, state0, p)
    tol = dict(rtol=1e-10, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out, ref, **tol)


@pytest.mark.parametrize("cell", [GRUMath(64), GRUMath(64, layer_norm=True), GRUMath(64, "mut3")],
                         ids=["gru", "gru:ln", "gru:mut3"])
def test_backward_in_chunks_of_steps(cell):
    """Long enough for the backward to take weight gradients chunk by chunk (csrc/common.h: chunk_steps) and
    for the kernel to project the input in several chunks of steps in training (run_from_input)."""
    steps, batch = 40, 32
    x, state0, p = make_inputs(cell, 48, steps=steps, batch=batch)
    p = {k: 0.1 * v.detach() for k, v in p.items()}  # torch's init scale: 40 steps of scale-1 weights are chaotic
    for v in p.values():
        v.requires_grad_()
    leaves = [x, *state0, *p.values()]
    lengths = torch.randint(1, steps + 1, (batch,))
    results = []
    for run in (lambda: run_reference(cell, cell.project_input(x, p), state0, p, lengths=lengths),
                lambda: fused.run_from_input(cell, x, state0, p, lengths=lengths)):
        seq, final = run()
        g = torch.Generator().manual_seed(1)
        loss = sum((o * torch.randn(o.shape, dtype=DT, generator=g)).sum() for o in (seq, *final))
        results.append(torch.autograd.grad(loss, leaves, allow_unused=True))
    for a, b in zip(*results, strict=True):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mode", ["plain", "packed+zoneout"])
@pytest.mark.parametrize("name,cell,input_size", [c for c in CELLS if c[1].input_is_affine()][::3],
                         ids=[c[0] for c in CELLS if c[1].input_is_affine()][::3])
def test_training_from_input_equals_reference(name, cell, input_size, mode):
    """In training the kernel projects the input itself too (the op's backward differentiates x and the input
    weights through d gx): outputs and every gradient, the input weights' included, equal the reference's."""
    lengths, rate, training, all_states = MODES[mode]
    x, state0, p = make_inputs(cell, input_size)
    zoneout = None
    if rate:
        zoneout = Zoneout.plan(rate, cell.zoneout_states, cell.state_sizes(), T, B, training=training, like=x)
    leaves = [x, *(s for s in state0 if s.requires_grad), *p.values()]
    results = []
    for run in (lambda: run_reference(cell, cell.project_input(x, p), state0, p, lengths=lengths, zoneout=zoneout),
                lambda: fused.run_from_input(cell, x, state0, p, lengths=lengths, zoneout=zoneout)):
        seq, final = run()
        outputs = [seq, *final]
        g = torch.Generator().manual_seed(1)
        loss = sum((o * torch.randn(o.shape, dtype=DT, generator=g)).sum() for o in outputs)
        results.append([*outputs, *torch.autograd.grad(loss, leaves, allow_unused=True)])
    for a, b in zip(*results, strict=True):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("way", ["eager", "registered op"])
def test_gradcheck_fused_sequence_from_input(way):
    """The kernel projecting x in training: the op with x, weight_ih, bias_ih in aux and no gx, called as eager
    execution calls it (ops.call) and through the dispatcher (as graphs hold it)."""
    cell = LSTMMath(3, "peephole")
    x, state0, p = make_inputs(cell, 2, steps=3, batch=2)
    family, flags = ops.plan(cell)
    given = {"h0": state0[0], "c0": state0[1], **p}
    inputs = [given.get(name) for name in family.input_names[1:]]

    def f(x, w, b, *inputs):
        named = dict(zip(family.input_names, (None, *inputs), strict=True))
        aux = {"x": x, "weight_ih": w, "bias_ih": b}
        if way == "registered op":
            args = [named[n] for n in family.input_names] + [aux.get(n) for n in ops.AUX_NAMES]
            return ops.sequence_op(family.name)(*args, flags, cell.hidden_size, False, 0.0, True)[:3]
        return ops.call(family, flags, cell.hidden_size, named, aux, all_states=False, zoneout_rate=0.0,
                        save=True)[:3]

    assert torch.autograd.gradcheck(f, (x, p["weight_ih"], p["bias_ih"], *inputs))
