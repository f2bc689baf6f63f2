"""Connectionist temporal classification (Graves et al. 2006): a head that reads a label sequence off per-frame
outputs without a frame-level alignment, its loss, and its two decoders.

The head gives, at every frame ``t``, log-probabilities over the ``C`` labels and the *blank* (index ``blank``,
0 by default). A path :math:`\\pi` (one symbol per frame) maps to a labelling by :math:`\\mathcal{B}`: merge
repeated symbols, then drop blanks (``a a - a b b -`` -> ``a a b``). The model's probability of a labelling is
the sum over its paths,

.. math::

    p(y \\mid x) = \\sum_{\\pi \\in \\mathcal{B}^{-1}(y)} \\prod_t p_t(\\pi_t),

and the loss is :math:`-\\log p(y \\mid x)` (``torch.nn.functional.ctc_loss``, the forward-backward recursion).

Decoding: *greedy* (best path) takes the most probable symbol at each frame and applies :math:`\\mathcal{B}`;
*prefix beam search* (Graves 2012, §7.5; Hannun et al. 2014) keeps the ``beam_size`` most probable label
prefixes, each with the probability of its paths ending in a blank and in its last label, so that it sums over
alignments instead of following one path.

Shape legend: ``T`` frames, ``B`` batch, ``F`` features, ``C + 1`` symbols (labels and the blank).
"""

from __future__ import annotations

import math
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnlab.cells.base import check_positive_int
from rnnlab.errors import InputError

__all__ = ["CTCHead", "ctc_greedy_decode", "ctc_loss", "ctc_prefix_beam_search"]


class CTCHead(nn.Module):
    """``log_softmax(Linear(x))`` over the labels and the blank: ``(T, B, F) -> (T, B, num_labels + 1)``.

    Args:
        in_features: ``F``.
        num_labels: ``C``, the labels (the blank is added).
        blank: the blank's index among the ``C + 1`` outputs (0 by default: labels are then ``1..C``).

    Parameters: ``linear.weight`` ``(C+1, F)``, ``linear.bias`` ``(C+1,)``.
    """

    def __init__(self, in_features: int, num_labels: int, blank: int = 0) -> None:
        super().__init__()
        check_positive_int("in_features", in_features)
        check_positive_int("num_labels", num_labels)
        if not 0 <= blank <= num_labels:
            raise InputError(f"blank must be an index in [0, {num_labels}], got {blank}")
        self.num_labels, self.blank = num_labels, blank
        self.linear = nn.Linear(in_features, num_labels + 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x).log_softmax(-1)  # (T, B, C+1)

    def loss(self, log_probs: Tensor, input_lengths: Tensor, targets: Tensor, target_lengths: Tensor) -> Tensor:
        """Mean over the batch of :math:`-\\log p(y|x)` divided by the target length (torch's ``reduction="mean"``).

        ``log_probs`` ``(T, B, C+1)``; ``input_lengths`` ``(B,)`` frames; ``targets`` the labels of every
        sequence concatenated ``(sum target_lengths,)``; ``target_lengths`` ``(B,)``. A target that no path of
        its input's length can spell (more labels than frames allow) contributes 0 (``zero_infinity``).
        """
        return ctc_loss(log_probs, input_lengths, targets, target_lengths, self.blank)

    def decode(self, log_probs: Tensor, input_lengths: Tensor, beam_size: int = 1) -> list[list[int]]:
        """Greedy (``beam_size=1``) or prefix-beam decoding of every sequence, with this head's blank."""
        if beam_size == 1:
            return ctc_greedy_decode(log_probs, input_lengths, self.blank)
        return ctc_prefix_beam_search(log_probs, input_lengths, beam_size, self.blank)


def ctc_loss(log_probs: Tensor, input_lengths: Tensor, targets: Tensor, target_lengths: Tensor,
             blank: int = 0) -> Tensor:
    """:math:`-\\log p(y|x)` per sequence divided by its target length, averaged over the batch (shapes as
    :meth:`CTCHead.loss`); impossible targets contribute 0."""
    return F.ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=blank, reduction="mean",
                      zero_infinity=True)


def _check(log_probs: Tensor, input_lengths: Tensor | None) -> Tensor:
    if log_probs.dim() != 3:
        raise InputError(f"expected log_probs (T, B, C+1), got shape {tuple(log_probs.shape)}")
    T, B, _ = log_probs.shape
    if input_lengths is None:
        return torch.full((B,), T, dtype=torch.long)
    lengths = torch.as_tensor(input_lengths, dtype=torch.long).cpu()
    if tuple(lengths.shape) != (B,) or (B and (int(lengths.min()) < 0 or int(lengths.max()) > T)):
        raise InputError(f"expected input_lengths of shape ({B},) in [0, {T}], got {lengths.tolist()}")
    return lengths


def ctc_greedy_decode(log_probs: Tensor, input_lengths: Tensor | None = None, blank: int = 0) -> list[list[int]]:
    """Best-path decoding: :math:`\\mathcal{B}(\\arg\\max_c p_t(c))_{t < T_b}` for each sequence ``b``.

    ``log_probs`` ``(T, B, C+1)`` (or probabilities: only the argmax matters); returns one list of symbol
    indices per sequence (blanks removed).
    """
    lengths = _check(log_probs, input_lengths)
    best = log_probs.argmax(-1).t().cpu()  # (B, T)
    out = []
    for b, n in enumerate(lengths.tolist()):
        path = best[b, :n]
        keep = torch.ones_like(path, dtype=torch.bool)
        keep[1:] = path[1:] != path[:-1]  # merge repeats
        out.append([s for s in path[keep].tolist() if s != blank])  # drop blanks
    return out


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def ctc_prefix_beam_search(log_probs: Tensor, input_lengths: Tensor | None = None, beam_size: int = 8,
                           blank: int = 0, prune: float = -12.0) -> list[list[int]]:
    """Prefix beam search over ``log_probs`` ``(T, B, C+1)`` (natural-log probabilities).

    Each prefix :math:`\\ell` carries :math:`p_b(\\ell)` and :math:`p_{nb}(\\ell)`, the probabilities of the
    paths so far that spell :math:`\\ell` and end in a blank or in :math:`\\ell`'s last label. At frame ``t``,
    for symbol ``c`` with probability :math:`p_t(c)`:

    - blank: :math:`p_b(\\ell) \\mathrel{+}= (p_b(\\ell) + p_{nb}(\\ell))\\, p_t(\\text{blank})`;
    - ``c`` equal to :math:`\\ell`'s last label: :math:`p_{nb}(\\ell) \\mathrel{+}= p_{nb}(\\ell)\\, p_t(c)` (a
      repeat merges) and :math:`p_{nb}(\\ell c) \\mathrel{+}= p_b(\\ell)\\, p_t(c)` (a blank separated them);
    - any other ``c``: :math:`p_{nb}(\\ell c) \\mathrel{+}= (p_b(\\ell) + p_{nb}(\\ell))\\, p_t(c)`;

    then the ``beam_size`` prefixes of largest :math:`p_b + p_{nb}` are kept. Symbols with
    :math:`\\log p_t(c) <` ``prune`` are skipped (they cannot change the ranking at the float precision that
    matters here). Returns the most probable prefix of each sequence.
    """
    check_positive_int("beam_size", beam_size)
    lengths = _check(log_probs, input_lengths)
    lp = log_probs.detach().double().cpu()
    out = []
    ninf = -math.inf
    for b, n in enumerate(lengths.tolist()):
        beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, ninf)}  # prefix -> (log p_b, log p_nb)
        for t in range(n):
            frame = lp[t, b]
            candidates = [c for c in range(frame.shape[0]) if frame[c] >= prune] or [int(frame.argmax())]
            frame_values = frame.tolist()
            nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [ninf, ninf])
            for prefix, (p_b, p_nb) in beams.items():
                total = _logaddexp(p_b, p_nb)
                last = prefix[-1] if prefix else None
                for c in candidates:
                    p = frame_values[c]
                    if c == blank:
                        entry = nxt[prefix]
                        entry[0] = _logaddexp(entry[0], total + p)
                    elif c == last:
                        entry = nxt[prefix]
                        entry[1] = _logaddexp(entry[1], p_nb + p)
                        extended = nxt[prefix + (c,)]
                        extended[1] = _logaddexp(extended[1], p_b + p)
                    else:
                        extended = nxt[prefix + (c,)]
                        extended[1] = _logaddexp(extended[1], total + p)
            ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)[:beam_size]
            beams = {prefix: (v[0], v[1]) for prefix, v in ranked}
        best = max(beams.items(), key=lambda kv: _logaddexp(*kv[1]))[0]
        out.append(list(best))
    return out
