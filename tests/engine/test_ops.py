"""The registered ops (``rnnlab.engine.ops``): the support table decides which kernel runs a cell (an unknown
variant falls back to the reference engine, never to another variant's kernel), the fake implementations give
the kernels' exact shapes, the generated C++ header carries the table's constants, and the registered op (the
path torch.compile / export / vmap take) equals the eager fast path."""

import re

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode

import rnnlab.cells.gru as gru_module
from rnnlab.cells import GRUMath, LSTMMath
from rnnlab.engine import build, fused, ops
from rnnlab.engine.reference import run_reference
from rnnlab.engine.zoneout import Zoneout
from tests.engine.test_fused import CELLS, make_inputs

DT = torch.float64


def _call_args(cell, input_size, *, project: bool, lengths: bool, zoneout: str | None, steps=4, batch=3):
    """(family, flags, named inputs, aux, zoneout rate) of one kernel call on random inputs."""
    x, state0, p = make_inputs(cell, input_size, steps, batch)
    p = cell.prepare({k: v.detach() for k, v in p.items()})
    family, flags = ops.plan(cell)
    zo = None
    if zoneout is not None:
        zo = Zoneout.plan(0.3, cell.zoneout_states, cell.state_sizes(), steps, batch, training=zoneout == "train",
                          like=x)
    lens = torch.tensor([steps, 2, 1][:batch]) if lengths else None
    aux, rate = fused._aux(cell, tuple(s.detach() for s in state0), lens, zo, p)
    named = {"h0": state0[0].detach(), "c0": state0[1].detach() if family.states == 2 else None, **p}
    if project and cell.input_is_affine():
        aux.update(x=x.detach(), weight_ih=p["weight_ih"], bias_ih=p.get("bias_ih"))
    else:
        named["gx"] = cell.project_input(x, p).detach()
    named = {n: named.get(n) for n in family.input_names}
    return family, flags, named, aux, rate


@pytest.mark.parametrize("cell_id", [c[0] for c in CELLS])
def test_fake_shapes_equal_the_kernel_outputs(cell_id):
    """For every table entry, with and without saving, mixing and all_states: the fake implementation's shapes
    are the kernel's (torch.compile and torch.export trust them)."""
    _, cell, input_size = next(c for c in CELLS if c[0] == cell_id)
    for project, lengths, zoneout, all_states, save in ((False, False, None, False, True),
                                                         (True, True, "train", True, True),
                                                         (True, False, "eval", False, False)):
        family, flags, named, aux, rate = _call_args(cell, input_size, project=project, lengths=lengths,
                                                     zoneout=zoneout)
        real = ops.sequence_op(family.name)(*named.values(), *(aux.get(n) for n in ops.AUX_NAMES), flags,
                                            cell.hidden_size, all_states, rate, save)
        with FakeTensorMode(allow_non_fake_inputs=True) as mode:
            fake_named = {n: None if t is None else mode.from_tensor(t) for n, t in named.items()}
            fake_aux = [None if aux.get(n) is None else mode.from_tensor(aux[n]) for n in ops.AUX_NAMES]
            fake = ops.sequence_op(family.name)(*fake_named.values(), *fake_aux, flags, cell.hidden_size,
                                                all_states, rate, save)
        shapes = lambda out: [tuple(t.shape) for t in out[:4]] + [tuple(t.shape) for t in out[4]]  # noqa: E731
        assert shapes(fake) == shapes(real)


def test_every_builtin_cell_has_a_kernel_and_unknown_variants_fall_back(monkeypatch):
    for _, cell, _ in CELLS:
        assert fused.supports(cell), cell.describe()
    # a variant added to a family without a kernel entry runs the reference, not a neighbour's kernel
    monkeypatch.setattr(GRUMath, "variants", (*GRUMath.variants, "new_variant"))
    monkeypatch.setitem(gru_module._LAYOUT, "new_variant", gru_module._LAYOUT["vanilla"])
    cell = GRUMath(4, "new_variant")
    reason = ops.plan(cell)
    assert isinstance(reason, str) and "new_variant" in reason
    assert not fused.supports(cell)
    # a feature an entry lacks: the reason names it
    monkeypatch.setitem(ops.SUPPORT, ("lstm", "vanilla"), ops.Support("lstm", ops.SUPPORT[("lstm", "vanilla")].code,
                                                                     frozenset()))
    assert "layer_norm" in ops.plan(LSTMMath(4, layer_norm=True))
    x, state0, p = make_inputs(LSTMMath(4, layer_norm=True), 3)
    cell = LSTMMath(4, layer_norm=True)
    got = fused.run_fused(cell, cell.project_input(x, p), state0, p)
    want = run_reference(cell, cell.project_input(x, p), state0, p)
    torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_layout_header_carries_the_table():
    """The C++ constants are generated from ops.py: every family's input order, flags and variant numbers."""
    text = ops.layout_header()
    for family in ops.KERNELS.values():
        block = text[text.index(f"namespace {family.name} {{"):]
        enum = re.search(r"enum Input : size_t \{ (.*?) \};", block).group(1)
        assert enum == ", ".join(f"{c} = {i}" for i, (_, c) in enumerate(family.inputs))
        for cname, value in family.flags:
            assert f"constexpr int64_t {cname} = {value};" in block
    assert "enum Aux : size_t { LENGTHS = 0, MASK_H = 1, MASK_C = 2, PERIODS = 3, CLOCK0 = 4, X = 5" in text
    if build.load():
        assert (build.build_directory() / build.LAYOUT_HEADER).read_text() == text


def assert_registered_op_equals_the_eager_path(call_args, hidden_size: int) -> None:
    """The dispatcher route (what tracing and torch.func see) and the eager shortcut give the same outputs and
    gradients, exactly, for one kernel call's ``(family, flags, named, aux, zoneout rate)``."""
    family, flags, named, aux, rate = call_args
    leaves = {n: t.clone().requires_grad_() for n, t in named.items() if t is not None}
    results = []
    for registered in (False, True):
        args = {n: leaves.get(n) for n in named}
        if registered:
            out = ops.sequence_op(family.name)(*args.values(), *(aux.get(n) for n in ops.AUX_NAMES), flags,
                                               hidden_size, True, rate, True)
        else:
            out = ops.call(family, flags, hidden_size, args, aux, all_states=True, zoneout_rate=rate, save=True)
        loss = sum((o * (i + 1)).sum() for i, o in enumerate(out[:4]))
        results.append([*out[:4], *torch.autograd.grad(loss, list(leaves.values()))])
    for a, b in zip(*results, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_registered_op_equals_the_eager_path():
    cell = LSTMMath(4, "peephole", proj_size=2)
    call_args = _call_args(cell, 3, project=False, lengths=True, zoneout="train")
    assert_registered_op_equals_the_eager_path(call_args, cell.hidden_size)


def test_build_cache_is_keyed_by_the_torch_installation(monkeypatch, tmp_path):
    """Two environments with the same torch version but different installations build into different
    directories (neither rebuilds the other's kernels)."""
    monkeypatch.setenv(build.CACHE_ENV, str(tmp_path))
    first = build.build_directory()
    fake_torch = tmp_path / "other-env" / "torch"
    (fake_torch / "lib").mkdir(parents=True)
    (fake_torch / "lib" / "libtorch_cpu.so").write_bytes(b"x")
    monkeypatch.setattr(torch, "__file__", str(fake_torch / "__init__.py"))
    second = build.build_directory()
    assert first != second and first.parent == second.parent
    assert torch.__version__.replace("+", "_") in first.name and torch.__version__.replace("+", "_") in second.name
