"""Parallel scans: the fast path of the cells whose recurrence is linear in the state (minGRU, minLSTM, LRU,
RG-LRU, mLSTM).

Such a cell computes :math:`h_t = a_t \\odot h_{t-1} + b_t` with ``a_t, b_t`` known for every step before the
loop (its gates read the input only), so the whole sequence is a prefix scan instead of ``T`` dependent steps:

- :func:`diagonal_scan`: a constant complex diagonal :math:`a_t = \\lambda` (the LRU): the linear scan below on
  complex numbers. (It was a product with the ``K x K`` matrix :math:`\\lambda^{t-s}` inside chunks of 64 steps:
  ``K`` times the work, 1.5-2x slower in forward+backward at T = 1000, B = 50, N = 32 on one thread);
- :func:`linear_scan`: :math:`a_t, b_t` real or complex (minGRU and minLSTM, whose positive coefficients the paper
  forms as logarithms, and the RG-LRU, whose ``b`` has any sign), a chunked scan in linear space: inside every chunk
  of ``K`` steps a loop of ``K`` vectorised steps over all chunks at once, from a zero state, keeping the chunk's
  running product of ``a``; the states before the chunks are the same recurrence over the ``T/K`` chunk summaries
  (recursively); then one fused multiply-add puts them in. ``O(T)`` work, ``O(K log_K T)`` sequential operations, and
  only products of the given ``a`` (nothing overflows while ``|a| <= 1``). Feng et al. train minGRU/minLSTM with
  Heinsen's log-space scan (:math:`h_t = \\exp(a^*_t + \\mathrm{logcumsumexp}_{s \\le t}(\\log b_s - a^*_s))`,
  :math:`a^*` the running sum of :math:`\\log a`); the linear-space scan computes the same recurrence 4-5x faster on
  one CPU thread (forward and backward, T = 1000-4000, B = 16, H = 64: ``logcumsumexp`` and its backward dominate the
  log-space form), and is as stable here since :math:`0 < a_t < 1` (products only shrink; nothing is divided);
- :func:`log_space_scan`: that log-space form, for positive ``a, b`` given as logarithms: two cumulative ops over
  time whatever ``T``, so minGRU and minLSTM run it while traced (``torch.compile``, ``torch.export``: one graph
  for every sequence length, which the chunked scans' Python loops cannot give);
- :func:`mlstm_parallel`: xLSTM's mLSTM, whose matrix memory makes the scan an attention-like product: the
  ``T x T`` matrix of stabilised decays per head (``O(T^2)`` work and memory per head, like the authors'
  parallel form), the initial state weighted in.

Both are plain torch ops, differentiated by autograd. :func:`run_scan` runs a cell this way under the contract of
:func:`rnnlab.engine.reference.run_reference` (which stays the spec: tests hold the two together in float64).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnlab.cells.base import CellMath, Params, State

LINEAR_CHUNK = 8  # steps per chunk of the linear scan (4-8 measured fastest on one thread, T = 1000 and 4000)


def supports(cell: CellMath, all_states: bool = False) -> bool:
    """True if ``cell`` has a parallel form (``cell.scan`` is ``"log"``, ``"diagonal"``, ``"linear"`` or
    ``"mlstm"``; the mLSTM's gives the final state only, so not with ``all_states``)."""
    kind = getattr(cell, "scan", None)
    return kind in ("log", "diagonal", "linear") or (kind == "mlstm" and not all_states)


def mlstm_parallel(cell, gx: Tensor, state0: State, last: Tensor) -> tuple[Tensor, State]:
    """The mLSTM over ``gx`` ``(T, B, 4H + 2K)`` from ``state0 = (h, C, n, m)``: ``h`` ``(T, B, H)`` at every
    step and the state after step ``last[b]`` ``(B,)`` of each sequence (:mod:`rnnlab.cells.mlstm`)."""
    from rnnlab.cells.mlstm import EPS

    T, B = gx.shape[:2]
    K, d = cell.num_heads, cell.head_size
    q, k, v, i_raw, f_raw, o_raw = cell.split(gx)  # (T, B, K, d) x3, (T, B, K) x2, (T, B, H)
    q, k, v = (t.permute(1, 2, 0, 3) for t in (q, k, v))  # (B, K, T, d)
    i_raw, cum_f = i_raw.permute(1, 2, 0), F.logsigmoid(f_raw).permute(1, 2, 0).cumsum(-1)  # (B, K, T)
    C0, n0, m0 = state0[1].unflatten(-1, (K, d, d)), state0[2].unflatten(-1, (K, d)), state0[3]
    causal = torch.ones(T, T, dtype=torch.bool, device=gx.device).tril()  # (T, T): s <= t
    log_d = cum_f.unsqueeze(-1) - cum_f.unsqueeze(-2) + i_raw.unsqueeze(-2)  # (B, K, T, T): i_s + F_t - F_s
    log_d = log_d.masked_fill(~causal, float("-inf"))
    log_init = m0.unsqueeze(-1) + cum_f  # (B, K, T): the initial state's log-weight m_0 + F_t
    m = torch.maximum(log_d.amax(-1), log_init)  # (B, K, T): the stabiliser of every step
    D = torch.exp(log_d - m.unsqueeze(-1))  # (B, K, T, T)
    w0 = torch.exp(log_init - m)  # (B, K, T)
    S = (q @ k.transpose(-1, -2)) * D  # (B, K, T, T)
    num = S @ v + w0.unsqueeze(-1) * (q @ C0)  # (B, K, T, d)
    qn = S.sum(-1) + w0 * (q * n0.unsqueeze(2)).sum(-1)  # (B, K, T): n_t^T q_t
    den = torch.maximum(qn.abs(), torch.exp(-m)) + EPS
    h = o_raw.sigmoid() * (num / den.unsqueeze(-1)).permute(2, 0, 1, 3).flatten(-2)  # (T, B, H)
    # the state after step last[b]: its row of the decay matrix
    at = last.to(gx.device).view(B, 1, 1).expand(B, K, 1)  # (B, K, 1)
    m_T = m.gather(-1, at).squeeze(-1)  # (B, K)
    w_T = D.gather(2, at.unsqueeze(-1).expand(B, K, 1, T)).squeeze(2)  # (B, K, T)
    w0_T = w0.gather(-1, at)  # (B, K, 1)
    C_T = w0_T.unsqueeze(-1) * C0 + torch.einsum("bks,bksi,bksj->bkij", w_T, k, v)  # (B, K, d, d)
    n_T = w0_T * n0 + torch.einsum("bks,bksi->bki", w_T, k)  # (B, K, d)
    h_T = h.gather(0, last.to(gx.device).view(1, B, 1).expand(1, B, h.shape[-1])).squeeze(0)  # (B, H)
    return h, (h_T, C_T.flatten(-3), n_T.flatten(-2), m_T)


def linear_scan(a: Tensor, b: Tensor, h0: Tensor, chunk: int = LINEAR_CHUNK) -> Tensor:
    """``h`` ``(T, B, H)`` of :math:`h_t = a_t h_{t-1} + b_t` from ``a, b`` ``(T, B, H)`` and ``h0`` ``(B, H)``."""
    T = b.shape[0]
    K = max(2, chunk)
    if T <= K:  # a short sequence: its steps
        states, h = [], h0
        for t in range(T):
            h = a[t] * h + b[t]
            states.append(h)
        return torch.stack(states)
    C = -(-T // K)  # chunks
    if C * K != T:  # steps after the end change nothing before it
        pad = (C * K - T, *b.shape[1:])
        a, b = torch.cat([a, a.new_zeros(pad)]), torch.cat([b, b.new_zeros(pad)])
    # step k of every chunk, (C, B, H) each; unbind, not indexing: the backward of K index ops would write K
    # zero-filled (C, K, B, H) gradients, that of unbind stacks once
    a_k, b_k = a.unflatten(0, (C, K)).unbind(1), b.unflatten(0, (C, K)).unbind(1)
    prods, local = [a_k[0]], [b_k[0]]  # per step k of every chunk: prod a, state from zero, (C, B, H)
    for k in range(1, K):
        prods.append(a_k[k] * prods[-1])
        local.append(a_k[k] * local[-1] + b_k[k])
    prod, state = torch.stack(prods, 1), torch.stack(local, 1)  # (C, K, B, H)
    ends = linear_scan(prod[:, -1], state[:, -1], h0, chunk)  # (C, B, H): the state after each chunk
    before = torch.cat([h0.unsqueeze(0), ends[:-1]])  # (C, B, H): the state before each chunk
    return (prod * before.unsqueeze(1) + state).flatten(0, 1)[:T]


def log_space_scan(log_a: Tensor, log_b: Tensor, h0: Tensor) -> Tensor:
    """``h`` ``(T, B, H)`` of :math:`h_t = a_t h_{t-1} + b_t` from ``log a, log b`` ``(T, B, H)`` and ``h0`` ``(B, H)``.

    ``a, b > 0`` (given by their logarithms); ``h0`` of any sign: its term :math:`(\\prod_{s \\le t} a_s) h_0` is
    added outside the logarithm.
    """
    a_star = log_a.cumsum(0)  # (T, B, H): log prod_{s<=t} a_s
    return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=0)) + torch.exp(a_star) * h0


def diagonal_scan(log_lam: Tensor, b: Tensor, x0: Tensor, chunk: int = LINEAR_CHUNK) -> Tensor:
    """``x`` ``(T, B, N)`` of :math:`x_t = \\lambda x_{t-1} + b_t` (complex), ``log λ`` ``(N,)``, ``x0`` ``(B, N)``:
    :func:`linear_scan` with :math:`a_t = \\lambda` (a broadcast view, not ``T`` copies)."""
    return linear_scan(torch.exp(log_lam).expand(b.shape), b, x0, chunk)


def run_scan(cell: CellMath, x: Tensor, state0: State, p: Params, *, lengths: Tensor | None = None,
             all_states: bool = False):
    """Run a cell with a parallel form over ``x`` ``(T, B, I)``; the contract of ``run_reference`` (on ``x``).

    With ``lengths``, the states after a sequence's end repeat its last one (as the reference's carried state).
    """
    p = cell.prepare(p)
    gx = cell.project_input(x, p)  # (T, B, D_gx)
    if cell.scan == "mlstm":
        T = x.shape[0]
        last = torch.full((x.shape[1],), T - 1) if lengths is None else (lengths.to(torch.int64) - 1)
        h, final = mlstm_parallel(cell, gx, state0, last)
        if lengths is not None:  # after a sequence's end its output repeats the last one
            t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
            index = torch.minimum(t, last.to(x.device).unsqueeze(0))  # (T, B)
            h = h.gather(0, index.unsqueeze(-1).expand_as(h))
        return h, final
    if cell.scan == "log" and torch.compiler.is_compiling():  # traced: a graph that holds for any length
        log_a, log_b = cell.log_coefficients(gx)
        states: State = (log_space_scan(log_a, log_b, state0[0]),)
    elif cell.scan in ("log", "linear"):  # minGRU, minLSTM (in eager), RG-LRU
        a, b = cell.linear_coefficients(gx, p)
        states = (linear_scan(a, b, state0[0]),)
    else:
        log_lam, b, x0 = cell.diagonal_terms(gx, state0, p)
        states = cell.diagonal_states(diagonal_scan(log_lam, b, x0), gx, p)
    if lengths is not None:
        T = x.shape[0]
        t = torch.arange(T, device=x.device).unsqueeze(1)  # (T, 1)
        index = torch.minimum(t, lengths.to(x.device).unsqueeze(0) - 1)  # (T, B): the last step taken
        states = tuple(s.gather(0, index.unsqueeze(-1).expand_as(s)) for s in states)
    final = tuple(s[-1] for s in states)
    return (states if all_states else states[0]), final
