"""The kernels of the families beyond the classic cells on the registered-op interface (``rnnlab.engine.ops``):
IndRNN (``rnnlab::indrnn_sequence``) and the sLSTM (``rnnlab::slstm_sequence``). Each equals the reference engine in
float64 (outputs, final states, every gradient) with packed lengths and all_states (IndRNN also with zoneout:
training masks and evaluation); gradcheck of the op; its fake implementation gives the kernel's exact shapes; the
registered op (what tracing and torch.func see) equals the eager path; the inference path equals training."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import rnnlab
from rnnlab import engine
from rnnlab.cells.indrnn import IndRNNMath
from rnnlab.cells.slstm import SLSTMMath
from rnnlab.engine import build, fused, ops
from rnnlab.engine.reference import run_reference
from rnnlab.engine.zoneout import Zoneout
from tests.engine.test_fused import MODES, assert_engines_agree, make_inputs
from tests.engine.test_ops import assert_registered_op_equals_the_eager_path

pytestmark = pytest.mark.skipif(not build.load(), reason="the fused engine did not build")

#: (id, cell, input size, modes); IndRNN with a bound below some of the random weights, so the clamp is covered;
#: the sLSTM with two heads (its kernel takes no zoneout: the engine runs the reference then)
CELLS = [("indrnn", IndRNNMath(5, recurrent_max=1.2), 4, tuple(MODES)),
         ("slstm", SLSTMMath(6, num_heads=2), 4, ("plain", "packed")),
         ("slstm:exp_forget", SLSTMMath(4, "exp_forget"), 3, ("plain", "packed"))]
_BY_ID = {c[0]: c for c in CELLS}
_MODES = {**MODES, "packed": (MODES["packed+zoneout"][0], 0.0, True, True)}
CASES = [(c[0], m) for c in CELLS for m in c[3]]


@pytest.fixture(autouse=True)
def _no_reference_fallback(monkeypatch):
    """The fused engine must run the kernel, never quietly the reference."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the fused engine fell back to the reference engine")

    monkeypatch.setattr(fused, "run_reference", forbidden)


def _outputs_and_grads(cell, x, state0, p, **options):
    """[(outputs, grads)] of the reference engine, then the default one (rnnlab.engine.run), which must run the
    family's kernel."""
    leaves = [x, *state0, *p.values()]
    results = []
    for run in (run_reference, engine.run):
        with torch.profiler.profile() as prof:
            sequence, final = run(cell, cell.project_input(x, p), state0, p, **options)
        ran_kernel = any(f"rnnlab::{cell.family}_forward" in e.name for e in prof.events())
        assert ran_kernel == (run is engine.run)
        outputs = [*(sequence if isinstance(sequence, tuple) else (sequence,)), *final]
        g = torch.Generator().manual_seed(1)
        loss = sum((o * torch.randn(o.shape, dtype=o.dtype, generator=g)).sum() for o in outputs)
        results.append((outputs, torch.autograd.grad(loss, leaves, allow_unused=True)))
    return results


def _inputs(cell, input_size, steps=6, batch=3):
    x, state0, p = make_inputs(cell, input_size, steps, batch)
    if isinstance(cell, SLSTMMath):  # a normaliser state n > 0, as the cell keeps it
        state0 = (state0[0], state0[1], (state0[2].detach().abs() + 0.5).requires_grad_(), state0[3])
    return x, state0, p


def _call_args(cell, input_size, *, project: bool, lengths: bool, zoneout: str | None, steps=4, batch=3):
    """(family, flags, named inputs, aux, zoneout rate) of one kernel call on random inputs."""
    x, state0, p = _inputs(cell, input_size, steps, batch)
    p = cell.prepare({k: v.detach() for k, v in p.items()})
    family, flags = ops.plan(cell)
    zo = None
    if zoneout is not None:
        zo = Zoneout.plan(0.3, cell.zoneout_states, cell.state_sizes(), steps, batch, training=zoneout == "train",
                          like=x)
    lens = torch.tensor([steps, 2, 1][:batch]) if lengths else None
    aux, rate = fused._aux(cell, tuple(s.detach() for s in state0), lens, zo, p)
    state = [s.detach() for s in state0]
    c0 = torch.cat(state[1:], -1) if isinstance(cell, SLSTMMath) else None  # the op's [c | n | m]
    named = {"h0": state[0], "c0": c0, **p}
    if project:
        aux.update(x=x.detach(), weight_ih=p["weight_ih"], bias_ih=p.get("bias_ih"))
    else:
        named["gx"] = cell.project_input(x, p).detach()
    named = {n: named.get(n) for n in family.input_names}
    return family, flags, named, aux, rate


def test_every_family_here_is_in_the_support_table():
    for _, cell, _, _ in CELLS:
        assert fused.supports(cell), ops.plan(cell)
        family, _ = ops.plan(cell)
        assert ops.SUPPORT[(cell.family, cell.variant)].kernel == family.name


@pytest.mark.parametrize("cell_id,mode", CASES)
def test_kernel_equals_reference(cell_id, mode):
    _, cell, input_size, _ = _BY_ID[cell_id]
    lengths, rate, training, all_states = _MODES[mode]
    x, state0, p = _inputs(cell, input_size)
    zoneout = None
    if rate:
        zoneout = Zoneout.plan(rate, cell.zoneout_states, cell.state_sizes(), x.shape[0], x.shape[1],
                               training=training, like=x)
    results = _outputs_and_grads(cell, x, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)
    assert_engines_agree(results, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cell_id,mode", CASES)
def test_gradcheck_of_the_op(cell_id, mode):
    _, cell, input_size, _ = _BY_ID[cell_id]
    lengths, rate, training, _ = _MODES[mode]
    lengths = None if lengths is None else torch.tensor([4, 2])
    x, state0, p = _inputs(cell, input_size, 4, 2)
    p = cell.prepare(p)
    family, flags = ops.plan(cell)
    zoneout = None
    if rate:
        zoneout = Zoneout.plan(rate, cell.zoneout_states, cell.state_sizes(), 4, 2, training=training, like=x)
    aux, zrate = fused._aux(cell, state0, lengths, zoneout, p)
    c0 = torch.cat(state0[1:], -1) if isinstance(cell, SLSTMMath) else None
    given = {"gx": cell.project_input(x, p), "h0": state0[0], "c0": c0, **p}
    inputs = [given[n].detach().contiguous().requires_grad_() for n in family.input_names]

    def fn(*tensors):
        named = dict(zip(family.input_names, tensors, strict=True))
        out = ops.call(family, flags, cell.hidden_size, named, aux, all_states=True, zoneout_rate=zrate, save=True)
        return tuple(o for o in out[:4] if o.numel())

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell_id", list(_BY_ID))
def test_fake_shapes_equal_the_kernel_outputs(cell_id):
    _, cell, input_size, modes = _BY_ID[cell_id]
    zo = "train" if "packed+zoneout" in modes else None
    for project, lengths, zoneout, all_states, save in ((False, False, None, False, True),
                                                         (True, True, zo, True, True),
                                                         (True, False, zo and "eval", False, False)):
        family, flags, named, aux, rate = _call_args(cell, input_size, project=project, lengths=lengths,
                                                     zoneout=zoneout)
        args = (*named.values(), *(aux.get(n) for n in ops.AUX_NAMES))
        real = ops.sequence_op(family.name)(*args, flags, cell.hidden_size, all_states, rate, save)
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            fake_args = [None if t is None else mode.from_tensor(t) for t in args]
            fake = ops.sequence_op(family.name)(*fake_args, flags, cell.hidden_size, all_states, rate, save)
        shapes = lambda out: [tuple(t.shape) for t in out[:4]] + [tuple(t.shape) for t in out[4]]  # noqa: E731
        assert shapes(fake) == shapes(real)


@pytest.mark.parametrize("cell_id", list(_BY_ID))
def test_registered_op_equals_the_eager_path(cell_id):
    _, cell, input_size, modes = _BY_ID[cell_id]
    zoneout = "train" if "packed+zoneout" in modes else None
    call_args = _call_args(cell, input_size, project=False, lengths=True, zoneout=zoneout)
    assert_registered_op_equals_the_eager_path(call_args, cell.hidden_size)


@pytest.mark.parametrize("cell_id", list(_BY_ID))
def test_inference_equals_training(cell_id):
    _, cell, input_size, _ = _BY_ID[cell_id]
    x, state0, p = _inputs(cell, input_size)
    lengths = torch.tensor([6, 2, 4])
    train, _ = engine.run_from_input(cell, x, state0, p, lengths=lengths)
    with torch.no_grad():  # IndRNN: the kernel projects the input itself
        infer, _ = engine.run_from_input(cell, x, state0, p, lengths=lengths)
    torch.testing.assert_close(infer, train.detach(), rtol=1e-12, atol=1e-12)


def test_indrnn_layer_runs_the_op_and_equals_the_reference_in_float32():
    torch.manual_seed(0)
    fast, ref = rnnlab.IndRNN(8, 16, max_len=200), rnnlab.IndRNN(8, 16, max_len=200, backend="reference")
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(200, 4, 8)
    torch.testing.assert_close(fast(x)[0], ref(x)[0], rtol=1e-5, atol=1e-5)
    with torch.profiler.profile() as prof:
        fast(x)
    assert any("rnnlab::indrnn" in e.name for e in prof.events())


def test_failed_build_runs_the_reference_for_indrnn(monkeypatch):
    """Without the compiled kernels the op's CPU implementation computes the reference (no warning here: the
    build's warning is test_fused's)."""
    monkeypatch.setattr(build, "_status", {"loaded": False, "error": RuntimeError("no compiler")})
    monkeypatch.setattr(fused, "run_reference", run_reference)
    _, cell, input_size, _ = _BY_ID["indrnn"]
    x, state0, p = make_inputs(cell, input_size)
    family, flags = ops.plan(cell)
    gx = cell.project_input(x, p).detach()
    named = {"gx": gx, "h0": state0[0].detach(), "weight_hh": cell.prepare(p)["weight_hh"].detach()}
    out = ops.sequence_op(family.name)(*named.values(), *([None] * len(ops.AUX_NAMES)), flags, cell.hidden_size,
                                       False, 0.0, False)
    ref, _ = run_reference(cell, gx, (named["h0"],), {k: v.detach() for k, v in p.items()})
    torch.testing.assert_close(out[0], ref, rtol=0, atol=0)


def test_slstm_layer_runs_its_kernel_and_equals_the_reference_in_float32():
    torch.manual_seed(0)
    fast, ref = rnnlab.SLSTM(8, 16, num_heads=4), rnnlab.SLSTM(8, 16, num_heads=4, backend="reference")
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(60, 4, 8)
    torch.testing.assert_close(fast(x)[0], ref(x)[0], rtol=1e-5, atol=1e-5)
    with torch.profiler.profile() as prof:
        fast(x)
    assert any("rnnlab::slstm" in e.name for e in prof.events())


def test_slstm_kernel_refuses_a_cell_state_of_the_wrong_layout():
    """The op's cell state is [c | n | m] (B, 3H): a plain c (B, H) is an error, never a wrong answer."""
    _, cell, input_size, _ = _BY_ID["slstm"]
    family, flags, named, aux, rate = _call_args(cell, input_size, project=False, lengths=False, zoneout=None)
    named["c0"] = named["c0"][:, :cell.hidden_size].contiguous()
    with pytest.raises(RuntimeError, match=r"c0 must be \[c \| n \| m\] of shape \(B, 3H\)"):
        ops.sequence_op(family.name)(*named.values(), *(aux.get(n) for n in ops.AUX_NAMES), flags,
                                     cell.hidden_size, False, rate, False)


def test_slstm_with_zoneout_runs_the_reference():
    layer = rnnlab.SLSTM(3, 4, zoneout=0.3).double()
    ref = rnnlab.SLSTM(3, 4, zoneout=0.3, backend="reference").double()
    ref.load_state_dict(layer.state_dict())
    x = torch.randn(5, 2, 3, dtype=torch.double)
    torch.manual_seed(3)
    a = layer(x)[0]
    torch.manual_seed(3)
    torch.testing.assert_close(a, ref(x)[0])
