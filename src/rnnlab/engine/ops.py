"""The fused engine's ops, registered with torch in one place, and the one table of what each kernel runs.

Everything the Python side and the C++ kernels must agree on is defined here once:

- :data:`AUX` and each :class:`KernelFamily`'s ``inputs``: the order of a kernel's tensors, with their names;
- each family's ``flags``: the bits (LSTM gates, layer norm) and variant numbers (GRU) of the ``flags`` argument;
- :data:`SUPPORT`: which cell family x variant runs on which kernel with which bits, and which features
  (``layer_norm``, ``proj``) the kernel implements for it. A cell whose ``(family, variant)`` is not in the
  table, or that needs a feature its entry lacks, runs the reference engine (:func:`plan` says why); it never
  runs another variant's kernel.

:func:`layout_header` writes the same constants as a C++ header (``rnnlab_layout.h``, generated into the build
directory by :mod:`rnnlab.engine.build`), which every ``csrc/<family>.cpp`` includes instead of numbering its
inputs itself.

The registered ops
------------------
Per kernel family ``F`` (``lstm``, ``gru``, ``rnn``, ``indrnn``, ``slstm``) two ops with named, typed schemas::

    rnnlab::F_sequence(Tensor? gx, Tensor h0, ..., Tensor? lengths, ..., Tensor? bias_ih,
                       int flags, int hidden, bool all_states, float zoneout_rate, bool save)
        -> (Tensor hseq, Tensor h_T, Tensor c_T, Tensor cseq, Tensor[] saved)
    rnnlab::F_sequence_backward(Tensor? grad_hseq, Tensor? grad_h_T, Tensor? grad_c_T, Tensor? grad_cseq,
                                Tensor[] saved, <the same inputs and aux>, int flags, int hidden,
                                float zoneout_rate) -> Tensor[]

``hseq`` ``(T, B, P)`` is ``h`` at every step, ``h_T``/``c_T`` the final states, ``cseq`` ``(T, B, H)`` the cell
state at every step (with ``all_states``); absent outputs are empty ``(0,)`` tensors. ``saved`` (with ``save``)
holds the buffers the backward reads. Each op has

- a CPU implementation: the compiled kernel (``torch.ops.rnnlab.F_forward``/``F_backward``, defined in
  ``csrc/F.cpp`` on lists of optional tensors in the order above), or, if the build failed, the reference engine;
- a fake (meta) implementation: the shapes of every output from the flags and the input shapes
  (:attr:`KernelFamily.shapes`), so ``torch.compile`` and ``torch.export`` trace through it;
- autograd (``register_autograd`` with ``setup_context``): the kernel's hand-written BPTT (with ``x`` in aux,
  the gradients of ``x``, ``weight_ih`` and ``bias_ih`` from the kernel's ``d gx``); when the backward
  itself must be differentiable (``create_graph=True``: double backward, gradient penalties, Hessian-vector
  products) it recomputes the sequence with the reference engine and differentiates that, so higher-order
  gradients are exact (never a silent zero);
- a vmap rule (``torch.func.vmap``, per-sample gradients, ``jacrev``): one call per vmapped slice.

A batch of zero sequences never reaches a kernel: the CPU implementation returns the empty outputs (and zero
gradients) itself.

How a new family registers its kernel
-------------------------------------
1. Write ``csrc/<name>.cpp``: ``<name>_forward(Tensor?[] inputs, Tensor?[] aux, int flags, int hidden,
   bool all_states, float zoneout_rate, bool save) -> (Tensor[], Tensor[])`` (outputs ``[hseq, h_T, c_T,
   cseq]``, then the saved buffers) and ``<name>_backward(Tensor?[] grads, Tensor[] saved, Tensor?[] inputs,
   Tensor?[] aux, int flags, int hidden, float zoneout_rate) -> Tensor[]`` (``saved`` = ``[hseq, *saved]``;
   one gradient per input, ``(0,)`` where none), defined with ``TORCH_LIBRARY_FRAGMENT(rnnlab, m)`` as the
   existing files do. Name the inputs, aux slots and flags with the constants of ``rnnlab_layout.h``
   (``#include "rnnlab_layout.h"``, then ``using namespace layout; using namespace layout::<name>;``).
   Add the file to ``build.SOURCES``.
2. Here: a :class:`KernelFamily` (input names and C++ names, the flags, a ``shapes`` function giving the shape of
   every output and saved buffer, exactly what the kernel allocates) passed to :func:`register_family`, and one
   :func:`register_support` call per cell ``(family, variant)`` with its bits and features. A test
   (``tests/engine/test_ops.py``) checks the fake shapes against the kernel's for every table entry.
3. The reference recomputation (double backward, failed build) rebuilds the cell math from the flags: give
   ``cell_from_flags``.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from rnnlab.cells import ClockworkMath, DepthGatedMath, GRUMath, LSTMMath, RNNMath
from rnnlab.cells.base import CellMath
from rnnlab.cells.indrnn import IndRNNMath
from rnnlab.cells.slstm import PackedSLSTMMath
from rnnlab.engine import build
from rnnlab.engine.reference import run_reference
from rnnlab.engine.zoneout import Zoneout

NAMESPACE = "rnnlab"

#: Auxiliary tensors of every kernel, ``(Python name, C++ name)`` in order: packed lengths ``(B,)`` int64;
#: zoneout masks of ``h`` and ``c`` ``(T, B, n)`` (training); the clockwork period of each unit ``(H,)`` and each
#: sequence's clock at ``t = 0`` ``(B,)`` (these never differentiated); and, when the kernel projects the layer
#: input itself a few steps at a time, ``x`` ``(T, B, I)`` with ``weight_ih`` ``(D, I)`` and ``bias_ih`` ``(D,)``,
#: which the autograd formula differentiates through ``d gx`` (:func:`input_projection_grads`).
AUX = (("lengths", "LENGTHS"), ("mask_h", "MASK_H"), ("mask_c", "MASK_C"), ("periods", "PERIODS"),
       ("clock0", "CLOCK0"), ("x", "X"), ("weight_ih", "W_IH"), ("bias_ih", "B_IH"))
AUX_NAMES = tuple(name for name, _ in AUX)
AUX_INDEX = {name: i for i, name in enumerate(AUX_NAMES)}
#: the aux slots of the input projection ``gx = x W_ih^T + b_ih`` that a kernel computes itself
_PROJECTION = (AUX_INDEX["x"], AUX_INDEX["weight_ih"], AUX_INDEX["bias_ih"])
#: outputs of every sequence op, before the saved buffers
OUTPUTS = ("hseq", "h_T", "c_T", "cseq")
#: the non-tensor arguments that end every sequence op, in order, and its backward's
OPTIONS = ("flags", "hidden", "all_states", "zoneout_rate", "save")
BACKWARD_OPTIONS = ("flags", "hidden", "zoneout_rate")


@dataclass(frozen=True)
class Dims:
    """The sizes a kernel call's outputs follow: ``T`` steps, ``B`` batch, ``D`` width of ``gx``, ``H`` hidden
    size, ``GH`` rows and ``P`` columns of ``weight_hh``."""

    T: int
    B: int
    D: int
    H: int
    GH: int
    P: int


#: shapes(dims, flags, all_states=..., save=..., mix=...) -> (shapes of the 4 outputs, shapes of the saved list)
ShapesFn = Callable[..., tuple[list[tuple], list[tuple]]]


@dataclass(frozen=True)
class KernelFamily:
    """One compiled kernel: its tensors in order, its flag constants and the shapes of what it returns.

    ``inputs``: ``(Python name, C++ name)`` of each differentiable input, ``gx`` first; the Python names are the
    cell's parameter names (``weight_hh``...) or ``gx``, ``h0``, ``c0``. ``required``: the inputs that are never
    None. ``flags``: ``(C++ name, value)`` constants of the ``flags`` argument; ``feature_flags``: the bit of
    each feature (``layer_norm``). ``variants``: ``(C++ name, number)`` of variant numbers (GRU), if any.
    ``states``: 2 if the kernel carries a cell state ``c``. ``cell_from_flags(flags, hidden, named, aux)``:
    the cell math that the flags encode (the reference recomputation).
    """

    name: str
    inputs: tuple[tuple[str, str], ...]
    required: frozenset[str]
    flags: tuple[tuple[str, int], ...]
    feature_flags: dict[str, int]
    shapes: ShapesFn
    cell_from_flags: Callable[..., CellMath]
    states: int = 1
    variants: tuple[tuple[str, int], ...] = ()

    @functools.cached_property
    def input_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.inputs)

    def flag(self, cname: str) -> int:
        return dict(self.flags)[cname]


@dataclass(frozen=True)
class Support:
    """A table entry: the kernel that runs a cell ``(family, variant)``, the bits of its variant in ``flags``,
    and the features (``layer_norm``, ``proj``) the kernel implements for it."""

    kernel: str
    code: int
    features: frozenset[str]


KERNELS: dict[str, KernelFamily] = {}
SUPPORT: dict[tuple[str, str], Support] = {}


def register_support(family: str, variant: str, kernel: str, code: int, features: Sequence[str]) -> None:
    """Declare that cells ``(family, variant)`` run on ``kernel`` with variant bits ``code``."""
    SUPPORT[(family, variant)] = Support(kernel, code, frozenset(features))


def cell_features(cell: CellMath) -> frozenset[str]:
    """The features a cell needs from a kernel beyond its variant."""
    needs = set()
    if cell.layer_norm:
        needs.add("layer_norm")
    if cell.output_size != cell.hidden_size:
        needs.add("proj")
    return frozenset(needs)


def plan(cell: CellMath) -> tuple[KernelFamily, int] | str:
    """``(kernel, flags)`` that run ``cell``, or the reason (a sentence) why the reference engine must."""
    entry = SUPPORT.get((cell.family, cell.variant))
    if entry is None:
        return f"no compiled kernel for {cell.family} variant {cell.variant!r}"
    missing = cell_features(cell) - entry.features
    if missing:
        return f"the {entry.kernel} kernel does not implement {', '.join(sorted(missing))} for {cell.describe()}"
    family = KERNELS[entry.kernel]
    flags = entry.code
    for feature in cell_features(cell):
        flags |= family.feature_flags.get(feature, 0)
    return family, flags


# ---- the kernel families --------------------------------------------------------------------------------------
def _lstm_shapes(d: Dims, flags: int, *, all_states: bool, save: bool, mix: bool):
    fam = KERNELS["lstm"]
    ln, depth = flags & fam.flag("kLayerNorm"), flags & fam.flag("kDepth")
    proj = d.P != d.H
    GW = d.GH + 2 * d.H if depth else d.GH
    outputs = [(d.T, d.B, d.P), (d.B, d.P), (d.B, d.H), (d.T, d.B, d.H) if all_states else (0,)]
    saved = []
    if save:
        saved = [(d.T, d.B, d.H), (d.T, d.B, GW), (d.T, d.B, d.H) if mix else (0,),
                 (d.T, d.B, d.H) if proj else (0,), (d.T, d.B, d.GH) if ln else (0,)]
    return outputs, saved


def _gru_shapes(d: Dims, flags: int, *, all_states: bool, save: bool, mix: bool):
    fam = KERNELS["gru"]
    variant, ln = flags & fam.flag("kVariantMask"), flags & fam.flag("kLayerNorm")
    codes = dict(fam.variants)
    vanilla, mut3 = variant == codes["kVanilla"], variant == codes["kMut3"]
    outputs = [(d.T, d.B, d.H), (d.B, d.H), (0,), (0,)]
    saved = []
    if save:
        saved = [(d.T, d.B, 4 * d.H if vanilla else 3 * d.H), (d.T, d.B, d.GH) if ln else (0,),
                 (0,) if vanilla else (d.T, d.B, d.H), (d.T, d.B, d.H) if mut3 else (0,)]
    return outputs, saved


def _rnn_shapes(d: Dims, flags: int, *, all_states: bool, save: bool, mix: bool):
    ln = flags & KERNELS["rnn"].flag("kLayerNorm")
    outputs = [(d.T, d.B, d.H), (d.B, d.H), (0,), (0,)]
    saved = [(d.T, d.B, d.H) if mix else (0,), (d.T, d.B, d.H) if ln else (0,)] if save else []
    return outputs, saved


def _indrnn_shapes(d: Dims, flags: int, *, all_states: bool, save: bool, mix: bool):
    outputs = [(d.T, d.B, d.H), (d.B, d.H), (0,), (0,)]
    return outputs, ([(d.T, d.B, d.H) if mix else (0,)] if save else [])


def _slstm_shapes(d: Dims, flags: int, *, all_states: bool, save: bool, mix: bool):
    outputs = [(d.T, d.B, d.H), (d.B, d.H), (d.B, 3 * d.H), (d.T, d.B, 3 * d.H) if all_states else (0,)]
    return outputs, ([(d.T, d.B, 4 * d.H), (d.T, d.B, 3 * d.H)] if save else [])


def _variant_of(family: str, kernel: str, code: int) -> str:
    """The variant of cell ``family`` whose table entry on ``kernel`` has bits ``code``."""
    for (fam, variant), entry in SUPPORT.items():
        if fam == family and entry.kernel == kernel and entry.code == code:
            return variant
    raise ValueError(f"no {family} variant has {kernel} kernel bits {code}")


def _lstm_cell(flags: int, hidden: int, named: dict, aux: dict) -> CellMath:
    fam = KERNELS["lstm"]
    ln = bool(flags & fam.flag("kLayerNorm"))
    bias = named.get("bias_hh") is not None
    if flags & fam.flag("kDepth"):
        return DepthGatedMath(hidden, layer_norm=ln, bias=bias)
    variant = _variant_of("lstm", "lstm", flags & ~fam.flag("kLayerNorm"))
    P = named["weight_hh"].shape[1]
    return LSTMMath(hidden, variant, layer_norm=ln, bias=bias, proj_size=0 if P == hidden else P)


def _gru_cell(flags: int, hidden: int, named: dict, aux: dict) -> CellMath:
    fam = KERNELS["gru"]
    variant = _variant_of("gru", "gru", flags & fam.flag("kVariantMask"))
    return GRUMath(hidden, variant, layer_norm=bool(flags & fam.flag("kLayerNorm")),
                   bias=named.get("bias_hh") is not None)


def _rnn_cell(flags: int, hidden: int, named: dict, aux: dict) -> CellMath:
    fam = KERNELS["rnn"]
    ln, bias = bool(flags & fam.flag("kLayerNorm")), named.get("bias_hh") is not None
    if flags & fam.flag("kClockwork"):
        periods = tuple(int(q) for q in torch.unique(aux["periods"]).tolist())
        return ClockworkMath(hidden, layer_norm=ln, bias=bias, periods=periods)
    nonlinearity = "relu" if flags & fam.flag("kRelu") else "tanh"
    return RNNMath(hidden, nonlinearity, layer_norm=ln, bias=bias)


def _indrnn_cell(flags: int, hidden: int, named: dict, aux: dict) -> CellMath:
    # the op receives the already bounded u: a bound no finite weight reaches makes prepare the identity
    return IndRNNMath(hidden, bias=False, recurrent_max=sys.float_info.max)


def _slstm_cell(flags: int, hidden: int, named: dict, aux: dict) -> CellMath:
    variant = "exp_forget" if flags & KERNELS["slstm"].flag("kExpForget") else "vanilla"
    return PackedSLSTMMath(hidden, variant, bias=False, num_heads=hidden // named["weight_hh"].shape[1])


LSTM = KernelFamily(
    name="lstm",
    inputs=(("gx", "GX"), ("h0", "H0"), ("c0", "C0"), ("weight_hh", "W_HH"), ("bias_hh", "B_HH"),
            ("ln_weight_hh", "LN_HH"), ("weight_peephole", "PEEPHOLE"), ("weight_hr", "W_HR"),
            ("ln_weight_cell", "LN_CELL_W"), ("ln_bias_cell", "LN_CELL_B"), ("weight_depth", "W_DEPTH")),
    required=frozenset({"h0", "c0", "weight_hh"}),
    flags=(("kHasI", 1), ("kHasF", 2), ("kHasO", 4), ("kCifg", 8), ("kNiaf", 16), ("kNoaf", 32),
           ("kPeephole", 64), ("kDepth", 128), ("kLayerNorm", 256)),
    feature_flags={"layer_norm": 256},
    shapes=_lstm_shapes,
    cell_from_flags=_lstm_cell,
    states=2,
)
GRU = KernelFamily(
    name="gru",
    inputs=(("gx", "GX"), ("h0", "H0"), ("weight_hh", "W_HH"), ("bias_hh", "B_HH"), ("ln_weight_hh", "LN_HH")),
    required=frozenset({"h0", "weight_hh"}),
    flags=(("kVariantMask", 255), ("kLayerNorm", 256)),
    feature_flags={"layer_norm": 256},
    shapes=_gru_shapes,
    cell_from_flags=_gru_cell,
    variants=(("kVanilla", 0), ("kResetBefore", 1), ("kMut1", 2), ("kMut2", 3), ("kMut3", 4), ("kMgu", 5)),
)
RNN = KernelFamily(
    name="rnn",
    inputs=(("gx", "GX"), ("h0", "H0"), ("weight_hh", "W_HH"), ("bias_hh", "B_HH"), ("ln_weight_hh", "LN_HH")),
    required=frozenset({"h0", "weight_hh"}),
    flags=(("kRelu", 1), ("kClockwork", 2), ("kLayerNorm", 256)),
    feature_flags={"layer_norm": 256},
    shapes=_rnn_shapes,
    cell_from_flags=_rnn_cell,
)


INDRNN = KernelFamily(
    name="indrnn",
    inputs=(("gx", "GX"), ("h0", "H0"), ("weight_hh", "W_HH")),
    required=frozenset({"h0", "weight_hh"}),
    flags=(),
    feature_flags={},
    shapes=_indrnn_shapes,
    cell_from_flags=_indrnn_cell,
)


#: xLSTM's sLSTM: its cell state input/outputs carry ``[c | n | m]`` side by side, ``(B, 3H)`` (``(T, B, 3H)``
#: with all_states); ``weight_hh`` ``(4H, d)`` holds the per-gate, per-head blocks of the block-diagonal ``R``
SLSTM = KernelFamily(
    name="slstm",
    inputs=(("gx", "GX"), ("h0", "H0"), ("c0", "C0"), ("weight_hh", "W_HH")),
    required=frozenset({"h0", "c0", "weight_hh"}),
    flags=(("kExpForget", 1),),
    feature_flags={},
    shapes=_slstm_shapes,
    cell_from_flags=_slstm_cell,
    states=2,
)


def _lstm_code(*bits: str) -> int:
    return sum(LSTM.flag(b) for b in bits)


_ALL_GATES = ("kHasI", "kHasF", "kHasO")


# ---- the support table: cell (family, variant) -> kernel, variant bits, features ------------------------------
def _register_builtin_support() -> None:
    lstm_variants = {
        "vanilla": _ALL_GATES, "peephole": (*_ALL_GATES, "kPeephole"), "cifg": ("kHasF", "kHasO", "kCifg"),
        "nig": ("kHasF", "kHasO"), "nfg": ("kHasI", "kHasO"), "nog": ("kHasI", "kHasF"),
        "niaf": (*_ALL_GATES, "kNiaf"), "noaf": (*_ALL_GATES, "kNoaf"),
    }
    for variant, bits in lstm_variants.items():
        register_support("lstm", variant, "lstm", _lstm_code(*bits), ("layer_norm", "proj"))
    register_support("dglstm", "vanilla", "lstm", _lstm_code(*_ALL_GATES, "kDepth"), ("layer_norm",))
    gru_codes = dict(GRU.variants)
    for variant, cname in (("vanilla", "kVanilla"), ("reset_before", "kResetBefore"), ("mut1", "kMut1"),
                           ("mut2", "kMut2"), ("mut3", "kMut3"), ("mgu", "kMgu")):
        register_support("gru", variant, "gru", gru_codes[cname], ("layer_norm",))
    register_support("rnn", "tanh", "rnn", 0, ("layer_norm",))
    register_support("rnn", "relu", "rnn", RNN.flag("kRelu"), ("layer_norm",))
    register_support("clockwork", "vanilla", "rnn", RNN.flag("kClockwork"), ("layer_norm",))
    register_support("indrnn", "relu", "indrnn", 0, ())
    # sLSTM: packed lengths, no zoneout (engine/slstm.py routes zoneout to the reference engine)
    register_support("slstm", "vanilla", "slstm", 0, ())
    register_support("slstm", "exp_forget", "slstm", SLSTM.flag("kExpForget"), ())


# ---- the C++ header of the same constants --------------------------------------------------------------------
def layout_header() -> str:
    """``rnnlab_layout.h``: the input order, aux slots, flags and variant numbers of every kernel family."""
    lines = ["// Generated by rnnlab/engine/ops.py (layout_header); do not edit. The order of each kernel's",
             "// tensors and the bits of its flags, shared with the Python side.", "#pragma once",
             "#include <cstddef>", "#include <cstdint>", "", "namespace rnnlab {", "namespace layout {", "",
             "// aux: never differentiated", "enum Aux : size_t { " + ", ".join(
                 f"{c} = {i}" for i, (_, c) in enumerate(AUX)) + " };"]
    for fam in KERNELS.values():
        lines += ["", f"namespace {fam.name} {{",
                  "enum Input : size_t { " + ", ".join(f"{c} = {i}" for i, (_, c) in enumerate(fam.inputs)) + " };",
                  f"constexpr size_t kNumInputs = {len(fam.inputs)};"]
        lines += [f"constexpr int64_t {c} = {v};" for c, v in fam.flags]
        if fam.variants:
            lines.append("enum Variant : int64_t { " + ", ".join(f"{c} = {v}" for c, v in fam.variants) + " };")
        lines.append(f"}}  // namespace {fam.name}")
    lines += ["", "}  // namespace layout", "}  // namespace rnnlab", ""]
    return "\n".join(lines)


# ---- calling an op ---------------------------------------------------------------------------------------------
def sequence_op(family: str):
    return getattr(torch.ops.rnnlab, f"{family}_sequence").default


def transformed() -> bool:
    """Inside a ``torch.func`` transform (vmap, grad, jacrev...). The fused engine then runs the reference
    engine (torch ops, which every transform knows): the dispatcher's autograd for ops defined with
    ``torch.library.define`` is not a functorch-ready ``autograd.Function`` in torch 2.13."""
    return torch._C._functorch.maybe_current_level() is not None


def traced(tensors: Sequence[Tensor | None] = ()) -> bool:
    """Whether the call is being traced or transformed (``torch.compile``, ``torch.export``, ``jit.trace``,
    ``torch.func``, a fake-tensor or dispatch mode): then only the registered op will do."""
    if torch.compiler.is_compiling() or torch.jit.is_tracing():
        return True
    if torch._C._functorch.maybe_current_level() is not None:  # inside vmap / grad / jacrev
        return True
    if torch._C._len_torch_dispatch_stack() > 0:  # FakeTensorMode, FlopCounterMode, ...
        return True
    return any(t is not None and type(t) is not Tensor and not isinstance(t, torch.nn.Parameter) for t in tensors)


def call(family: KernelFamily, flags: int, hidden: int, named: dict[str, Tensor | None],
         aux: dict[str, Tensor | None], *, all_states: bool, zoneout_rate: float, save: bool):
    """Run ``rnnlab::<family>_sequence`` on named tensors; returns ``(hseq, h_T, c_T, cseq, saved)``.

    In plain eager execution the op's own CPU implementation and autograd formula are called directly (the
    dispatcher's round trips through Python cost ~35 us a call, which streaming one step at a time feels);
    traced or transformed, the registered op."""
    args = [named.get(n) for n in family.input_names] + [aux.get(n) for n in AUX_NAMES]
    if traced(args):
        return sequence_op(family.name)(*args, flags, hidden, all_states, zoneout_rate, save)
    impl = _IMPLS[family.name]
    options = (flags, hidden, all_states, zoneout_rate, save)
    if torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in args):
        hseq, h_T, c_T, cseq = _EagerSequence.apply(impl, len(args), *args, *options)
        return hseq, h_T, c_T, cseq, []
    return impl.forward(*args, *options)


def input_projection_grads(dgx: Tensor, x: Tensor, weight: Tensor, has_bias: bool,
                           needs: Sequence[bool]) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
    """Gradients of ``gx = x W^T + b`` from ``d gx`` ``(..., D)``: ``dx = d gx W`` ``(..., I)``, ``dW = d gx^T x``
    ``(D, I)`` (all leading dimensions summed), ``db = sum d gx`` ``(D,)``; None where ``needs`` (x, W, b) is
    False or there is no bias. The compiled GEMMs (``csrc/linear.cpp``), or torch's ops while differentiable itself."""
    D, I = weight.shape
    dy, x2 = dgx.reshape(-1, D), x.reshape(-1, I)  # (R, D), (R, I)
    if torch.is_grad_enabled() or not build.load():  # create_graph: torch's differentiable ops
        dx, dw, db = dy.mm(weight), dy.t().mm(x2), dy.sum(0)
    else:
        dx, dw, db = torch.ops.rnnlab.linear_backward(dy.contiguous(), x2.contiguous(), weight.contiguous(),
                                                      has_bias, *needs)
    return (dx.view(x.shape) if needs[0] else None, dw if needs[1] else None,
            db if (needs[2] and has_bias) else None)


def _split(family: KernelFamily, args: Sequence[Any], options: Sequence[str] = OPTIONS):
    """The op's positional arguments -> (named inputs, named aux, options dict)."""
    n, a = len(family.inputs), len(AUX)
    named = dict(zip(family.input_names, args[:n], strict=True))
    aux = dict(zip(AUX_NAMES, args[n:n + a], strict=True))
    options = dict(zip(options, args[n + a:], strict=True))
    return named, aux, options


def _dims(family: KernelFamily, named: dict, aux: dict, hidden: int) -> Dims:
    x, w_ih, gx = aux.get("x"), aux.get("weight_ih"), named.get("gx")
    if x is not None:
        T, B, D = x.shape[0], x.shape[1], w_ih.shape[0]
    else:
        T, B, D = gx.shape
    w = named["weight_hh"]  # (GH, P); IndRNN's is a vector (H,)
    return Dims(T, B, D, hidden, w.shape[0], w.shape[-1])


def _mixes(aux: dict, zoneout_rate: float) -> bool:
    """Whether any unit keeps its previous state (packed lengths, zoneout, clockwork): the kernels then keep
    the pre-mixing values."""
    return any(aux.get(n) is not None for n in ("lengths", "mask_h", "mask_c", "periods")) or zoneout_rate != 0.0


def _like(named: dict, aux: dict) -> Tensor:
    return aux["x"] if aux.get("x") is not None else named["gx"]


def _empty_outputs(family: KernelFamily, named: dict, aux: dict, options: dict):
    """Outputs of the shapes the kernel would return, uninitialised (fake) or zeros (an empty batch)."""
    d = _dims(family, named, aux, options["hidden"])
    outs, saved = family.shapes(d, options["flags"], all_states=options["all_states"], save=options["save"],
                                mix=_mixes(aux, options["zoneout_rate"]))
    like = _like(named, aux)
    return tuple(like.new_zeros(s) for s in outs), [like.new_zeros(s) for s in saved]


def _kernel_lists(family: KernelFamily, named: dict, aux: dict, *, backward: bool = False):
    """The kernel's ``inputs`` and ``aux`` lists. A call with ``x`` in aux projects the input itself (``gx``,
    possibly a stand-in, is not passed); the backward reads only ``gx``'s shape, and no ``x``."""
    inputs = [named.get(n) for n in family.input_names]
    aux_list = [aux.get(n) for n in AUX_NAMES]
    if aux_list[AUX_INDEX["x"]] is not None:
        if backward:
            if inputs[0] is None:
                d = _dims(family, named, aux, 0)
                inputs[0] = aux["x"].new_empty(1).expand(d.T, d.B, d.D)
            aux_list[AUX_INDEX["x"]:] = [None] * (len(AUX) - AUX_INDEX["x"])
        else:
            inputs[0] = None
    return inputs, aux_list


def _reference(family: KernelFamily, named: dict, aux: dict, options: dict, gx: Tensor | None = None):
    """The op's four outputs computed by the reference engine (differentiable)."""
    flags, hidden = options["flags"], options["hidden"]
    cell = family.cell_from_flags(flags, hidden, named, aux)
    if gx is None:
        gx = named["gx"] if aux.get("x") is None else torch.nn.functional.linear(aux["x"], aux["weight_ih"],
                                                                                   aux.get("bias_ih"))
    p = {n: t for n, t in named.items() if n not in ("gx", "h0", "c0") and t is not None}
    state0: tuple[Tensor, ...] = (named["h0"], named["c0"]) if family.states == 2 else (named["h0"],)
    if isinstance(cell, ClockworkMath):
        state0 = (named["h0"], aux["clock0"].unsqueeze(1))
    zoneout = None
    if aux.get("mask_h") is not None or aux.get("mask_c") is not None:
        masks = {i: m for i, m in enumerate((aux.get("mask_h"), aux.get("mask_c"))) if m is not None}
        zoneout = Zoneout(0.5, tuple(masks), masks)  # the rate is not read when masks are given
    elif options["zoneout_rate"] != 0.0:
        zoneout = Zoneout(options["zoneout_rate"], cell.zoneout_states)
    all_states = options["all_states"] and family.states == 2
    sequence, final = run_reference(cell, gx, state0, p, lengths=aux.get("lengths"), zoneout=zoneout,
                                    all_states=all_states)
    hseq, cseq = sequence if all_states else (sequence, None)
    empty = hseq.new_zeros(0)
    c_T = final[1] if family.states == 2 else empty
    return hseq, final[0], c_T, cseq if (cseq is not None and options["all_states"]) else empty


# ---- registration ----------------------------------------------------------------------------------------------
def _schema(family: KernelFamily) -> tuple[str, str]:
    def arg(name: str, required: bool) -> str:
        return f"Tensor{'' if required else '?'} {name}"

    tensors = [arg(n, n in family.required) for n in family.input_names] + [arg(n, False) for n in AUX_NAMES]
    forward = (f"({', '.join(tensors)}, int flags, int hidden, bool all_states, float zoneout_rate, bool save)"
               " -> (Tensor hseq, Tensor h_T, Tensor c_T, Tensor cseq, Tensor[] saved)")
    grads = ", ".join(f"Tensor? grad_{o}" for o in OUTPUTS)
    backward = f"({grads}, Tensor[] saved, {', '.join(tensors)}, int flags, int hidden, float zoneout_rate) -> Tensor[]"
    return forward, backward


_library = torch.library.Library(NAMESPACE, "FRAGMENT")


@dataclass(frozen=True)
class _Impl:
    """A family's registered functions: the CPU forward, and the two halves of its autograd formula."""

    forward: Callable
    setup_context: Callable
    backward: Callable


_IMPLS: dict[str, _Impl] = {}


class _EagerSequence(torch.autograd.Function):
    """The registered op's autograd formula (:func:`register_family`'s ``setup_context`` and ``backward``) in
    eager execution, without the dispatcher's round trips."""

    @staticmethod
    def forward(ctx, impl: _Impl, n_tensors: int, *args):
        output = impl.forward(*args)
        impl.setup_context(ctx, args, output)
        ctx.needs = ctx.needs_input_grad[2:]
        return tuple(output[:4])

    @staticmethod
    def backward(ctx, *grads):
        return (None, None, *ctx.impl.backward(ctx, *grads, None))


def register_family(family: KernelFamily) -> None:
    """Define ``rnnlab::<name>_sequence`` and its backward with their CPU, fake, autograd and vmap rules."""
    KERNELS[family.name] = family
    forward_schema, backward_schema = _schema(family)
    fwd_name, bwd_name = f"{family.name}_sequence", f"{family.name}_sequence_backward"
    _library.define(fwd_name + forward_schema)
    _library.define(bwd_name + backward_schema)
    fwd_qual, bwd_qual = f"{NAMESPACE}::{fwd_name}", f"{NAMESPACE}::{bwd_name}"
    n_in, n_aux = len(family.inputs), len(AUX)

    kernel_forward_name = f"{family.name}_forward"
    x_slot = n_in + AUX_INDEX["x"]

    def forward_cpu(*args):  # kept lean: streaming calls it once per step
        x = args[x_slot]
        if (x if x is not None else args[0]).shape[1] == 0:  # an empty batch: nothing to run
            named, aux, options = _split(family, args)
            outputs, saved = _empty_outputs(family, named, aux, options)
            return (*outputs, saved)
        if not build.load():
            named, aux, options = _split(family, args)
            with torch.no_grad():
                outputs = _reference(family, named, aux, options)
            return (*outputs, [])
        inputs = list(args[:n_in])
        if x is not None:  # the kernel projects x itself; gx, if given, is a stand-in
            inputs[0] = None
        outputs, saved = getattr(torch.ops.rnnlab, kernel_forward_name)(inputs, list(args[n_in:n_in + n_aux]),
                                                                         *args[n_in + n_aux:])
        outputs = list(outputs)
        if saved and any(outputs[3] is t for t in saved):  # an op's outputs may not alias each other
            outputs[3] = outputs[3].clone()
        return (*outputs, list(saved))

    def forward_fake(*args):
        named, aux, options = _split(family, args)
        d = _dims(family, named, aux, options["hidden"])
        outs, saved = family.shapes(d, options["flags"], all_states=options["all_states"], save=options["save"],
                                    mix=_mixes(aux, options["zoneout_rate"]))
        like = _like(named, aux)
        return (*(like.new_empty(s) for s in outs), [like.new_empty(s) for s in saved])

    def backward_cpu(*args):
        grads, saved, rest = args[:4], args[4], args[5:]
        named, aux, options = _split(family, rest, BACKWARD_OPTIONS)
        if _dims(family, named, aux, options["hidden"]).B == 0:
            return _zero_grads(family, named, aux)
        if not build.load():  # the forward ran the reference engine: differentiate it
            needs = [t is not None or (n == "gx" and aux.get("x") is not None) for n, t in named.items()]
            with torch.enable_grad():
                detached = {n: None if t is None else t.detach() for n, t in named.items()}
                grads_in, dgx = _differentiable_backward(family, detached, aux, {**options, "all_states": True},
                                                         [None if g is None else g.detach() for g in grads], needs)
                grads_in[0] = dgx
            return [g.detach() if g is not None else named[n].new_zeros(0) if named[n] is not None else
                    _like(named, aux).new_zeros(0) for n, g in zip(family.input_names, grads_in, strict=True)]
        inputs, aux_list = _kernel_lists(family, named, aux, backward=True)
        op = getattr(torch.ops.rnnlab, f"{family.name}_backward")
        return list(op(list(grads), list(saved), inputs, aux_list, options["flags"], options["hidden"],
                       options["zoneout_rate"]))

    def backward_fake(*args):
        named, aux, _ = _split(family, args[5:], BACKWARD_OPTIONS)
        return _zero_grads(family, named, aux, fake=True)

    _library.impl(fwd_name, forward_cpu, "CPU")
    _library.impl(bwd_name, backward_cpu, "CPU")
    torch.library.register_fake(fwd_qual, forward_fake, lib=_library)
    torch.library.register_fake(bwd_qual, backward_fake, lib=_library)

    def setup_context(ctx, inputs, output):
        named, aux, options = _split(family, inputs)
        ctx.set_materialize_grads(False)
        ctx.impl = _IMPLS.get(family.name)
        ctx.options = options
        ctx.present = [t is not None for t in (*named.values(), *aux.values())]
        hseq, saved = output[0], output[4]
        tensors = [t for t in (*named.values(), *aux.values()) if t is not None]
        ctx.n_saved = len(saved)
        ctx.save_for_backward(*tensors, hseq, *saved)

    def backward(ctx, grad_hseq, grad_h_T, grad_c_T, grad_cseq, _grad_saved):
        tensors = list(ctx.saved_tensors)
        values = iter(tensors)
        flat = [next(values) if present else None for present in ctx.present]
        named = dict(zip(family.input_names, flat[:n_in], strict=True))
        aux = dict(zip(AUX_NAMES, flat[n_in:], strict=True))
        rest = tensors[sum(ctx.present):]
        hseq, saved = rest[0], rest[1:]
        grads = (grad_hseq, grad_h_T, grad_c_T, grad_cseq)
        all_needs = getattr(ctx, "needs", ctx.needs_input_grad)
        needs = all_needs[:n_in]
        # the kernel projected x itself: x, weight_ih, bias_ih get their gradients from d gx here
        proj_needs = tuple(all_needs[n_in + i] for i in _PROJECTION) if aux["x"] is not None else (False,) * 3
        if any(proj_needs):
            needs = (True, *needs[1:])
        if torch.is_grad_enabled():  # the backward must be differentiable itself: recompute with the reference
            result, dgx = _differentiable_backward(family, named, aux, ctx.options, grads, needs)
        else:
            # eager (the context of _EagerSequence, which sets `needs`): the backward's CPU implementation
            # directly, as call() does for the forward (the dispatcher's round trip cost ~60 us a call);
            # traced: the registered backward op, so that graphs hold it
            backward_op = backward_cpu if hasattr(ctx, "needs") else getattr(torch.ops.rnnlab, bwd_name)
            result = backward_op(
                *(None if g is None else g.contiguous() for g in grads), [hseq, *saved], *named.values(),
                *aux.values(), ctx.options["flags"], ctx.options["hidden"], ctx.options["zoneout_rate"])
            dgx = result[0]
            result = [g if (need and named[n] is not None) else None
                      for n, g, need in zip(family.input_names, result, needs, strict=True)]
        aux_grads = [None] * n_aux
        if any(proj_needs):
            for i, g in zip(_PROJECTION, input_projection_grads(dgx, aux["x"], aux["weight_ih"],
                                                                aux["bias_ih"] is not None, proj_needs), strict=True):
                aux_grads[i] = g
        return (*result, *aux_grads, *([None] * len(OPTIONS)))

    _IMPLS[family.name] = _Impl(forward_cpu, setup_context, backward)
    torch.library.register_autograd(fwd_qual, backward, setup_context=setup_context, lib=_library)
    torch.library.register_vmap(fwd_qual, _loop_vmap(fwd_qual), lib=_library)
    torch.library.register_vmap(bwd_qual, _loop_vmap(bwd_qual), lib=_library)


def _zero_grads(family: KernelFamily, named: dict, aux: dict, fake: bool = False) -> list[Tensor]:
    """One gradient per input: zeros of the input's shape (an empty batch), or ``(0,)`` where it is None."""
    like = _like(named, aux)
    d = _dims(family, named, aux, 0)
    out = []
    for name in family.input_names:
        t = named.get(name)
        shape = (d.T, d.B, d.D) if name == "gx" else (t.shape if t is not None else (0,))
        out.append(like.new_empty(shape) if fake else like.new_zeros(shape))
    return out


def _differentiable_backward(family: KernelFamily, named: dict, aux: dict, options: dict, grads, needs):
    """The gradients of the op's inputs as a differentiable function of the inputs and of ``grads``: the
    sequence recomputed by the reference engine, then ``torch.autograd.grad(..., create_graph=True)``.
    Returns them (None where not needed) and ``d gx`` (None unless ``gx``'s is needed: with ``x`` in aux, the
    gradient of the projection it recomputes)."""
    with torch.enable_grad():
        gx = None
        if aux.get("x") is not None:  # the input was projected by the kernel: project it again (differentiably)
            gx = torch.nn.functional.linear(aux["x"], aux["weight_ih"], aux.get("bias_ih"))
            if not gx.requires_grad:
                gx = gx.detach().requires_grad_()
        leaves = {}
        for name, t in named.items():
            if name == "gx":
                continue
            if t is not None and not t.requires_grad:
                t = t.detach().requires_grad_()
            leaves[name] = t
        if gx is None:
            gx = named["gx"] if named["gx"].requires_grad else named["gx"].detach().requires_grad_()
        inputs = {"gx": gx, **leaves}
        outputs = _reference(family, inputs, aux, options, gx=gx)
        pairs = [(o, g) for o, g in zip(outputs, grads, strict=True) if g is not None and o.numel()]
        wanted = [inputs[name] for name, need in zip(family.input_names, needs, strict=True)
                  if need and inputs[name] is not None]
        if not pairs or not wanted:
            return [None] * len(family.inputs), None
        result = iter(torch.autograd.grad([o for o, _ in pairs], wanted, [g for _, g in pairs], create_graph=True,
                                          allow_unused=True))
    out = []
    for name, need in zip(family.input_names, needs, strict=True):
        if need and inputs[name] is not None:
            g = next(result)
            out.append(torch.zeros_like(inputs[name]) if g is None else g)
        else:
            out.append(None)
    dgx = out[0]
    if named["gx"] is None:  # the stand-in recomputed from x: not an input of the op
        out[0] = None
    return out, dgx


def _loop_vmap(qualname: str):
    """A vmap rule that runs the op once per vmapped slice and stacks the results along dimension 0."""

    def rule(info, in_dims, *args):
        op = getattr(torch.ops.rnnlab, qualname.split("::")[1]).default
        results = []
        for i in range(info.batch_size):
            sliced = []
            for arg, dim in zip(args, in_dims, strict=True):
                if dim is None:
                    sliced.append(arg)
                elif isinstance(arg, (list, tuple)):
                    sliced.append([a if d is None else a.select(d, i) for a, d in zip(arg, dim, strict=True)])
                else:
                    sliced.append(arg.select(dim, i))
            results.append(op(*sliced))
        first = results[0]
        if isinstance(first, (list, tuple)) and not isinstance(first, Tensor):
            out, dims = [], []
            for j, item in enumerate(first):
                if isinstance(item, (list, tuple)):
                    out.append([torch.stack([r[j][k] for r in results]) for k in range(len(item))])
                    dims.append([0] * len(item))
                else:
                    out.append(torch.stack([r[j] for r in results]))
                    dims.append(0)
            return (tuple(out) if isinstance(first, tuple) else out), (tuple(dims) if isinstance(first, tuple)
                                                                        else dims)
        return torch.stack(results), 0

    return rule


for _family in (LSTM, GRU, RNN, INDRNN, SLSTM):
    register_family(_family)
_register_builtin_support()

__all__ = ["AUX", "KERNELS", "SUPPORT", "Dims", "KernelFamily", "Support", "call", "cell_features",
           "layout_header", "plan", "register_family", "register_support"]
