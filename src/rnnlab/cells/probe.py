"""Observing a forward pass from inside: the activations of every gate and the state at every step.

Diagnostics (gradient flow, gate saturation) open a :func:`probing` context and run a model with the
reference engine; the cell math reports each gate's activation through :func:`record_gate` and the engine
reports each step's output state through :func:`record_state`. Outside a probe both are a no-op (one
context-variable lookup), and fused engines never call them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor

_ACTIVE: ContextVar[Probe | None] = ContextVar("rnnlab_probe", default=None)


class Probe:
    """What one probed forward pass recorded.

    Attributes:
        gates: ``{gate name: [activation (B, H) at each recorded step, ...]}`` over every layer and direction.
        states: ``[[s_t for t in range(T)] for each engine call]`` in call order (layer 0 forward, layer 0
            backward, layer 1 forward, ...); ``s_t`` is the tuple of the state tensors that carry step ``t`` into
            step ``t + 1`` (the cell's ``flow_states``: ``(h_t,)`` for most cells, each ``(B, n)``). Each retains
            its gradient, so after ``loss.backward()`` ``part.grad`` is the total derivative of the loss with
            respect to it.
    """

    def __init__(self) -> None:
        self.gates: dict[str, list[Tensor]] = defaultdict(list)
        self.states: list[list[Tensor]] = []

    def begin_sequence(self) -> None:
        self.states.append([])

    def gradient_norms(self, call: int = 0) -> list[float]:
        """After ``loss.backward()``: :math:`\\mathrm{mean}_b \\lVert \\partial L / \\partial s_t \\rVert` for each
        step ``t`` of engine call ``call``, the norm taken over all parts of the carried state ``s_t`` together;
        0.0 where no gradient reached ``s_t``."""
        norms = []
        for carried in self.states[call]:
            grads = [part.grad for part in carried if part.grad is not None]
            norms.append(float(torch.cat(grads, -1).norm(dim=-1).mean()) if grads else 0.0)
        return norms


def active_probe() -> Probe | None:
    """The probe of the enclosing :func:`probing` context, or ``None`` (always inside ``torch.compile``/``export``
    tracing, which cannot read a context variable)."""
    if torch.compiler.is_compiling():
        return None
    return _ACTIVE.get()


def record_gate(name: str, activation: Tensor) -> None:
    """Report a gate's activation ``(B, H)`` at the current step to the active probe, if any."""
    probe = active_probe()
    if probe is not None:
        probe.gates[name].append(activation.detach())


@contextmanager
def probing() -> Iterator[Probe]:
    """Record gates and states of every reference-engine forward pass run inside the block."""
    probe = Probe()
    token = _ACTIVE.set(probe)
    try:
        yield probe
    finally:
        _ACTIVE.reset(token)
