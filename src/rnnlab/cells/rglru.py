"""RG-LRU: the real-gated linear recurrent unit of Hawk and Griffin (De, Smith, Fernando, Botev, Cristian-Muraru,
Gu, Haroun, Berrada, Chen, Srinivasan, Desjardins, Doucet, Budden, Teh, Pascanu, De Freitas & Gulcehre 2024).

A real diagonal linear recurrence whose decay is gated by the input:

.. math::

    \\begin{array}{ll}
    u_t = W x_t + b \\\\
    r_t = \\sigma(W_a u_t + b_a), \\quad i_t = \\sigma(W_x u_t + b_x)
        \\quad (W_a, W_x \\text{ block-diagonal: one } d \\times d \\text{ block per head}) \\\\
    \\log a_t = -c\\, r_t \\odot \\mathrm{softplus}(\\Lambda) \\quad (a_t = \\sigma(-\\Lambda)^{c r_t}\\
        \\text{in the paper's notation } a = \\sigma(\\Lambda)) \\\\
    h_t = a_t \\odot h_{t-1} + \\sqrt{1 - a_t^2} \\odot (i_t \\odot u_t)
    \\end{array}

with ``c = 8``. The gates read the input only, so the recurrence is linear in ``h``
(:math:`h_t = a_t h_{t-1} + b_t`) and the default backend runs it as a parallel scan
(:func:`rnnlab.engine.scan.linear_scan`); stepping computes the same numbers. :math:`0 < a_t < 1` always, and
:math:`\\sqrt{1 - a_t^2}` keeps the state's scale at the input's as :math:`a_t \\to 1` (the LRU's normalisation).

Checked against google-deepmind/recurrentgemma's ``RGLRU`` (``torch/layers.py``): the same gates (block-diagonal
linear maps of the RG-LRU's input with a bias, sigmoid), ``log a = -8 r softplus(a_param)``, the multiplier
:math:`\\sqrt{1 - a^2}` on the gated input, and its initialisation: ``a_param`` so that
:math:`a^{1/(c r)} = \\exp(-\\mathrm{softplus}(\\Lambda))` is uniform on the ring ``[r_min, r_max] = [0.9, 0.999]``
(:math:`|\\cdot|^2` uniform in ``[r_min^2, r_max^2]``), gate weights :math:`\\mathcal N(0, 1/d)`, gate biases 0.
Where rnnlab differs:

- the layer has an input projection :math:`u_t = W x_t + b` (the linear map in front of the RG-LRU in Griffin's
  recurrent block, :math:`\\mathcal N(0, 1/I)`, bias 0), so layers of any width stack; the block's causal
  convolution, GeLU branch and normalisation are not part of the layer;
- the authors' code resets at the first position of a document (:math:`a = 0` and multiplier 1 there); here the
  update above applies at every step from the given (or zero) initial state, so stepping from a carried state is
  exact;
- the authors clip the gradient of the square root at 1000 (for bfloat16 training); here it is not clipped, and
  :math:`1 - a^2` is computed as :math:`-\\mathrm{expm1}(2 \\log a)` (no cancellation as :math:`a \\to 1`).

Parameters (suffix-free): ``weight_ih`` ``(H, I)``, ``bias_ih`` ``(H,)`` (``W, b``); ``weight_a``,
``weight_x`` ``(H, d)``: rows ``k*d ... (k+1)*d`` are head ``k``'s ``(d, d)`` block (out, in); ``bias_a``,
``bias_x`` ``(H,)``; ``a_param`` ``(H,)`` (:math:`\\Lambda` above, the authors' name). ``bias=False`` drops the
three biases. State ``(h,)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State, check_positive_int
from rnnlab.cells.probe import record_gate
from rnnlab.errors import ArgumentTypeError, InputError

GATE_SCALE = 8.0  # the authors' c


def _number(name: str, value: object) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ArgumentTypeError(f"{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise InputError(f"{name} must be a finite number, got {value}")
    return float(value)


class RGLRUMath(CellMath):
    """One RG-LRU step. ``gx`` ``(B, H)`` = ``u_t``; state ``(h,)``, ``h`` ``(B, H)``."""

    family = "rglru"
    variants = ("vanilla",)
    gates_ih = ("u",)
    gates_hh = ()
    #: the recurrence is ``h_t = a_t * h_{t-1} + b_t`` with real ``0 < a_t < 1`` and ``b_t`` of any sign
    scan = "linear"

    def __init__(self, hidden_size: int, variant: str | None = None, *, layer_norm: bool = False,
                 bias: bool = True, num_heads: int = 1, c: float = GATE_SCALE, r_min: float = 0.9,
                 r_max: float = 0.999):
        if layer_norm:
            raise InputError("RG-LRU takes no layer_norm")
        check_positive_int("num_heads", num_heads)
        if isinstance(hidden_size, int) and hidden_size % num_heads:
            raise InputError(f"RG-LRU num_heads must divide hidden_size: got hidden_size={hidden_size}, "
                             f"num_heads={num_heads}")
        c, r_min, r_max = _number("c", c), _number("r_min", r_min), _number("r_max", r_max)
        if c <= 0:
            raise InputError(f"the RG-LRU's gate scale c must be > 0 (the paper's 8), got {c}")
        if not 0.0 < r_min < r_max < 1.0:
            raise InputError(f"the RG-LRU's radius range needs 0 < r_min < r_max < 1 (a decay in (0, 1)), got "
                             f"r_min={r_min}, r_max={r_max}")
        self.num_heads, self.c, self.r_min, self.r_max = num_heads, c, r_min, r_max
        super().__init__(hidden_size, variant, bias=bias)
        self.head_size = hidden_size // num_heads

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        H, d = self.hidden_size, self.head_size
        shapes: dict[str, tuple[int, ...]] = {"weight_ih": (H, input_size)}
        if self.bias:
            shapes["bias_ih"] = (H,)
        shapes.update(weight_a=(H, d), weight_x=(H, d))
        if self.bias:
            shapes.update(bias_a=(H,), bias_x=(H,))
        shapes["a_param"] = (H,)
        return shapes

    def check_options(self, *, forget_bias, recurrent_init, chrono_init=None) -> None:
        for name, value in (("forget_bias", forget_bias), ("chrono_init", chrono_init),
                            ("recurrent_init", recurrent_init)):
            if value is not None:
                raise InputError(f"{name} does not apply to rglru: its decay is set by a_param (r_min, r_max) "
                                 "and the recurrence gate")

    @torch.no_grad()
    def reset_parameters(self, p: Params, **_options) -> None:
        """The authors' initialisation (module docstring)."""
        I = p["weight_ih"].shape[1]
        p["weight_ih"].normal_(0.0, 1.0 / math.sqrt(I))
        for name in ("weight_a", "weight_x"):
            p[name].normal_(0.0, 1.0 / math.sqrt(self.head_size))
        for name in ("bias_ih", "bias_a", "bias_x"):
            if name in p:
                p[name].zero_()
        u = torch.empty(p["a_param"].shape, dtype=torch.float64).uniform_(self.r_min ** 2, self.r_max ** 2)
        decay = -0.5 * u.log()  # softplus(a_param) = -log r, r uniform on the ring
        p["a_param"].copy_(torch.log(torch.expm1(decay)))  # softplus^-1

    def heads(self, u: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        """The block-diagonal map ``(..., H) -> (..., H)``: head ``k``'s ``(d, d)`` block on its ``d`` units."""
        K, d = self.num_heads, self.head_size
        out = torch.einsum("...ki,koi->...ko", u.unflatten(-1, (K, d)), weight.view(K, d, d)).flatten(-2)
        return out if bias is None else out + bias

    def linear_coefficients(self, u: Tensor, p: Params) -> tuple[Tensor, Tensor]:
        """``(a_t, b_t)`` of :math:`h_t = a_t h_{t-1} + b_t`, each ``(..., H)`` from ``u`` ``(..., H)``."""
        r = self.heads(u, p["weight_a"], p.get("bias_a")).sigmoid()
        i = self.heads(u, p["weight_x"], p.get("bias_x")).sigmoid()
        log_a = -self.c * r * F.softplus(p["a_param"])
        return log_a.exp(), torch.sqrt(-torch.expm1(2.0 * log_a)) * (i * u)

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        a, b = self.linear_coefficients(gx, p)  # (B, H) each
        record_gate("decay", a)
        return (a * state[0] + b,)

    def describe(self) -> str:
        return f"rglru:heads={self.num_heads}, c={self.c:g}, r=[{self.r_min}, {self.r_max}]"
