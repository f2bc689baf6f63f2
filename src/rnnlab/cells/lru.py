"""LRU: the linear recurrent unit (Orvieto, Smith, Gu, Fernando, Gulcehre, Pascanu & De 2023).

A complex diagonal linear recurrence, read out by a real linear map:

.. math::

    \\begin{array}{ll}
    \\lambda = \\exp(-\\exp(\\nu^{\\log}) + i \\exp(\\theta^{\\log})), \\quad
    \\gamma = \\exp(\\gamma^{\\log}) \\\\
    x_t = \\mathrm{diag}(\\lambda) x_{t-1} + \\gamma \\odot (B u_t) \\\\
    y_t = \\Re(C x_t) + D u_t
    \\end{array}

``x_t`` has ``N`` complex units (``state_size``), ``y_t`` ``H`` real ones (``hidden_size``). The exponential
parametrisation keeps :math:`|\\lambda| < 1` (stable) for any parameter value; the normalisation
:math:`\\gamma = \\sqrt{1 - |\\lambda|^2}` (initial value of the trainable :math:`\\gamma^{\\log}`) keeps
the state's variance at the input's as :math:`|\\lambda| \\to 1`. Initialisation as the paper (its
Appendix A code): :math:`|\\lambda|` uniform on the ring ``[r_min, r_max]`` of the complex plane, i.e.
:math:`\\nu^{\\log} = \\log(-\\tfrac12 \\log(u (r_{max}^2 - r_{min}^2) + r_{min}^2))`, phase
:math:`\\theta = \\mathrm{max\\_phase} \\cdot u'`, :math:`B \\sim \\mathcal{CN}(0, 1/I)` (real and imaginary
parts each :math:`\\mathcal N(0, 1/(2I))`), :math:`C \\sim \\mathcal{CN}(0, 1/N)` (parts
:math:`\\mathcal N(0, 1/N)`).

Where rnnlab differs from the paper: ``D`` is a dense ``(H, I)`` matrix (:math:`\\mathcal N(0, 1/I)`) rather
than a diagonal, so that layers of any input width stack (the paper's ``I = H``); the layer is the recurrence
alone, without the paper's block (normalisation, GLU/MLP, residual). It has no biases (``bias`` is ignored).
The stepped form and the parallel form (:func:`rnnlab.engine.scan.diagonal_scan`, a chunked scan) compute
the same numbers.

Parameters (suffix-free): ``nu_log``, ``theta_log``, ``gamma_log`` ``(N,)``; ``weight_in_re``,
``weight_in_im`` ``(N, I)`` (``B``); ``weight_out_re``, ``weight_out_im`` ``(H, N)`` (``C``); ``weight_skip``
``(H, I)`` (``D``). State ``(y, x_re, x_im)``: ``y`` ``(B, H)`` the last output, ``x`` ``(B, N)`` in real and
imaginary parts.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State, check_positive_int, linear
from rnnlab.errors import InputError


class LRUMath(CellMath):
    """One LRU step. ``gx`` ``(B, 2N + H)`` = ``[γ Re(Bu), γ Im(Bu), Du]``; state ``(y, x_re, x_im)``."""

    family = "lru"
    flow_states = (1, 2)  # the complex state x (its real and imaginary parts): y_t is not fed back
    variants = ("vanilla",)
    gates_ih = gates_hh = ()
    scan = "diagonal"

    def __init__(self, hidden_size: int, variant: str | None = None, *, layer_norm: bool = False,
                 bias: bool = True, state_size: int | None = None, r_min: float = 0.9, r_max: float = 0.999,
                 max_phase: float = 2 * math.pi):
        if layer_norm:
            raise InputError("LRU takes no layer_norm")
        state_size = hidden_size if state_size is None else state_size
        check_positive_int("state_size", state_size)
        for name, value in (("r_min", r_min), ("r_max", r_max), ("max_phase", max_phase)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise InputError(f"{name} must be a number, got {value!r}")
        if not 0.0 <= r_min < r_max <= 1.0:
            raise InputError(f"the LRU's radius range needs 0 <= r_min < r_max <= 1 (eigenvalues inside the unit "
                             f"circle), got r_min={r_min}, r_max={r_max}")
        if max_phase <= 0:
            raise InputError(f"max_phase must be > 0, got {max_phase}")
        self.state_size, self.r_min, self.r_max, self.max_phase = state_size, float(r_min), float(r_max), max_phase
        super().__init__(hidden_size, variant, bias=bias)

    def state_sizes(self) -> tuple[int, ...]:
        return (self.hidden_size, self.state_size, self.state_size)

    def param_shapes(self, input_size: int) -> dict[str, tuple[int, ...]]:
        N, H = self.state_size, self.hidden_size
        return {"nu_log": (N,), "theta_log": (N,), "gamma_log": (N,), "weight_in_re": (N, input_size),
                "weight_in_im": (N, input_size), "weight_out_re": (H, N), "weight_out_im": (H, N),
                "weight_skip": (H, input_size)}

    def check_options(self, *, forget_bias, recurrent_init, chrono_init=None) -> None:
        for name, value in (("forget_bias", forget_bias), ("chrono_init", chrono_init),
                            ("recurrent_init", recurrent_init)):
            if value is not None:
                raise InputError(f"{name} does not apply to lru: its recurrence is set by r_min, r_max, max_phase")

    @torch.no_grad()
    def reset_parameters(self, p: Params, **_options) -> None:
        """The paper's initialisation (module docstring)."""
        N, I = p["weight_in_re"].shape
        u = torch.rand(N, dtype=torch.float64)
        nu = -0.5 * torch.log(u * (self.r_max ** 2 - self.r_min ** 2) + self.r_min ** 2)  # -log|λ|
        p["nu_log"].copy_(nu.log())
        p["theta_log"].copy_(torch.log(self.max_phase * torch.rand(N, dtype=torch.float64).clamp(min=1e-12)))
        p["gamma_log"].copy_(0.5 * torch.log1p(-torch.exp(-2.0 * nu)))  # log sqrt(1 - |λ|^2)
        for name in ("weight_in_re", "weight_in_im"):
            p[name].normal_(0.0, 1.0 / math.sqrt(2 * I))
        for name in ("weight_out_re", "weight_out_im"):
            p[name].normal_(0.0, 1.0 / math.sqrt(N))
        p["weight_skip"].normal_(0.0, 1.0 / math.sqrt(I))

    def log_lambda(self, p: Params) -> Tensor:
        """``log λ`` ``(N,)`` complex: ``-exp(nu_log) + i exp(theta_log)``."""
        return torch.complex(-p["nu_log"].exp(), p["theta_log"].exp())

    def prepare(self, p: Params) -> Params:
        modulus, phase = torch.exp(-p["nu_log"].exp()), p["theta_log"].exp()  # (N,)
        return {**p, "lambda_re": modulus * phase.cos(), "lambda_im": modulus * phase.sin()}

    def input_is_affine(self) -> bool:
        return False

    def project_input(self, x: Tensor, p: Params) -> Tensor:
        """``(..., I) -> (..., 2N + H)``: ``[γ Re(B u), γ Im(B u), D u]`` in one GEMM."""
        gamma = p["gamma_log"].exp().unsqueeze(1)  # (N, 1)
        w = torch.cat([p["weight_in_re"] * gamma, p["weight_in_im"] * gamma, p["weight_skip"]])  # (2N + H, I)
        return linear(x, w, None)

    def readout(self, x_re: Tensor, x_im: Tensor, skip: Tensor, p: Params) -> Tensor:
        """:math:`y = \\Re(C x) + D u` ``(..., H)`` from the state's parts ``(..., N)`` and ``D u``."""
        return linear(x_re, p["weight_out_re"], None) - linear(x_im, p["weight_out_im"], None) + skip

    def step(self, gx: Tensor, state: State, p: Params) -> State:
        N = self.state_size
        _, x_re, x_im = state
        b_re, b_im, skip = gx[:, :N], gx[:, N:2 * N], gx[:, 2 * N:]
        lr, li = p["lambda_re"], p["lambda_im"]
        new_re = lr * x_re - li * x_im + b_re  # (B, N)
        new_im = lr * x_im + li * x_re + b_im
        return self.readout(new_re, new_im, skip, p), new_re, new_im

    # ---- parallel form: x_t = λ x_{t-1} + b_t with λ constant, read out after the scan ---------------------
    def diagonal_terms(self, gx: Tensor, state0: State, p: Params) -> tuple[Tensor, Tensor, Tensor]:
        """``(log λ (N,), b (T, B, N), x_0 (B, N))``, complex."""
        N = self.state_size
        b = torch.complex(gx[..., :N], gx[..., N:2 * N])
        return self.log_lambda(p), b, torch.complex(state0[1], state0[2])

    def diagonal_states(self, xs: Tensor, gx: Tensor, p: Params) -> State:
        """The state sequences ``(y, x_re, x_im)``, each ``(T, B, n)``, from the scanned ``x`` ``(T, B, N)``."""
        x_re, x_im = xs.real, xs.imag
        return self.readout(x_re, x_im, gx[..., 2 * self.state_size:], p), x_re, x_im

    def describe(self) -> str:
        return f"lru:N={self.state_size}, r=[{self.r_min}, {self.r_max}]"
