"""The kernels of the families beyond the classic cells on the registered-op interface (``rnnlab.engine.ops``):
IndRNN (``rnnlab::indrnn_sequence``). Each equals the reference engine in float64 (outputs, final states, every
gradient) with packed lengths, zoneout (training masks and evaluation) and all_states; gradcheck of the op; its
fake implementation gives the kernel's exact shapes; the registered op (what tracing and torch.func see) equals
the eager path; the inference path that projects the input inside the kernel equals the training path."""

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import rnnlab
from rnnlab.cells.indrnn import IndRNNMath
from rnnlab.engine import build, fused, ops
from rnnlab.engine.reference import run_reference
from rnnlab.engine.zoneout import Zoneout
from tests.engine.test_fused import MODES, assert_engines_agree, engines_outputs_and_grads, make_inputs
from tests.engine.test_ops import _call_args

pytestmark = pytest.mark.skipif(not build.load(), reason="the fused engine did not build")

#: (id, cell, input size); IndRNN with a bound below some of the random weights, so the clamp is covered
CELLS = [("indrnn", IndRNNMath(5, recurrent_max=1.2), 4)]
_BY_ID = {c[0]: c for c in CELLS}


@pytest.fixture(autouse=True)
def _no_reference_fallback(monkeypatch):
    """The fused engine must run the kernel, never quietly the reference."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the fused engine fell back to the reference engine")

    monkeypatch.setattr(fused, "run_reference", forbidden)


def test_every_family_here_is_in_the_support_table():
    for _, cell, _ in CELLS:
        assert fused.supports(cell), ops.plan(cell)
        family, _ = ops.plan(cell)
        assert ops.SUPPORT[(cell.family, cell.variant)].kernel == family.name


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("cell_id", list(_BY_ID))
def test_kernel_equals_reference(cell_id, mode):
    _, cell, input_size = _BY_ID[cell_id]
    lengths, rate, training, all_states = MODES[mode]
    x, state0, p = make_inputs(cell, input_size)
    zoneout = None
    if rate:
        zoneout = Zoneout.plan(rate, cell.zoneout_states, cell.state_sizes(), x.shape[0], x.shape[1],
                               training=training, like=x)
    results = engines_outputs_and_grads(cell, x, state0, p, lengths=lengths, zoneout=zoneout, all_states=all_states)
    assert_engines_agree(results, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("cell_id", list(_BY_ID))
def test_gradcheck_of_the_op(cell_id, mode):
    _, cell, input_size = _BY_ID[cell_id]
    lengths, rate, training, _ = MODES[mode]
    lengths = None if lengths is None else torch.tensor([4, 2])
    x, state0, p = make_inputs(cell, input_size, 4, 2)
    p = cell.prepare(p)
    family, flags = ops.plan(cell)
    zoneout = None
    if rate:
        zoneout = Zoneout.plan(rate, cell.zoneout_states, cell.state_sizes(), 4, 2, training=training, like=x)
    aux, zrate = fused._aux(cell, state0, lengths, zoneout, p)
    given = {"gx": cell.project_input(x, p), "h0": state0[0], **p}
    inputs = [given[n].detach().contiguous().requires_grad_() for n in family.input_names]

    def fn(*tensors):
        named = dict(zip(family.input_names, tensors, strict=True))
        out = ops.call(family, flags, cell.hidden_size, named, aux, all_states=True, zoneout_rate=zrate, save=True)
        return tuple(o for o in out[:4] if o.numel())

    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("cell_id", list(_BY_ID))
def test_fake_shapes_equal_the_kernel_outputs(cell_id):
    _, cell, input_size = _BY_ID[cell_id]
    for project, lengths, zoneout, all_states, save in ((False, False, None, False, True),
                                                         (True, True, "train", True, True),
                                                         (True, False, "eval", False, False)):
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
    _, cell, input_size = _BY_ID[cell_id]
    family, flags, named, aux, rate = _call_args(cell, input_size, project=False, lengths=True, zoneout="train")
    leaves = {n: t.clone().requires_grad_() for n, t in named.items() if t is not None}
    results = []
    for registered in (False, True):
        args = {n: leaves.get(n) for n in named}
        if registered:
            out = ops.sequence_op(family.name)(*args.values(), *(aux.get(n) for n in ops.AUX_NAMES), flags,
                                               cell.hidden_size, True, rate, True)
        else:
            out = ops.call(family, flags, cell.hidden_size, args, aux, all_states=True, zoneout_rate=rate, save=True)
        loss = sum((o * (i + 1)).sum() for i, o in enumerate(out[:4]))
        results.append([*out[:4], *torch.autograd.grad(loss, list(leaves.values()))])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("cell_id", list(_BY_ID))
def test_inference_projects_the_input_in_the_kernel_and_equals_training(cell_id):
    _, cell, input_size = _BY_ID[cell_id]
    x, state0, p = make_inputs(cell, input_size)
    lengths = torch.tensor([6, 2, 4])
    train, _ = fused.run_from_input(cell, x, state0, p, lengths=lengths)
    with torch.no_grad():
        infer, _ = fused.run_from_input(cell, x, state0, p, lengths=lengths)
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
    _, cell, input_size = _BY_ID["indrnn"]
    x, state0, p = make_inputs(cell, input_size)
    family, flags = ops.plan(cell)
    gx = cell.project_input(x, p).detach()
    named = {"gx": gx, "h0": state0[0].detach(), "weight_hh": cell.prepare(p)["weight_hh"].detach()}
    out = ops.sequence_op(family.name)(*named.values(), *([None] * len(ops.AUX_NAMES)), flags, cell.hidden_size,
                                       False, 0.0, False)
    ref, _ = run_reference(cell, gx, (named["h0"],), {k: v.detach() for k, v in p.items()})
    torch.testing.assert_close(out[0], ref, rtol=0, atol=0)
