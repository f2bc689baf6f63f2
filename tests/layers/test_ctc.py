"""CTC: decoding a known alignment, prefix beam search against exhaustive summing over paths, the loss against
the sum over paths, bad inputs."""

import itertools
import math

import pytest
import torch

import rnnlab
from rnnlab.errors import InputError
from rnnlab.layers.ctc import ctc_greedy_decode, ctc_prefix_beam_search

BLANK = 0


def collapse(path):
    """B: merge repeats, drop blanks."""
    out, previous = [], None
    for s in path:
        if s != previous and s != BLANK:
            out.append(s)
        previous = s
    return tuple(out)


def one_hot_log_probs(paths, n_symbols, confidence=0.9):
    """(T, B, C+1) log-probabilities whose best path of sequence b is paths[b] (padded with blanks)."""
    T = max(len(p) for p in paths)
    probs = torch.full((T, len(paths), n_symbols), (1 - confidence) / (n_symbols - 1))
    for b, path in enumerate(paths):
        for t, s in enumerate(list(path) + [BLANK] * (T - len(path))):
            probs[t, b] = (1 - confidence) / (n_symbols - 1)
            probs[t, b, s] = confidence
    return probs.log()


def test_greedy_and_beam_decode_a_known_alignment():
    paths = [[0, 3, 3, 0, 3, 1, 1, 0], [2, 2, 2, 0, 0, 0, 0, 0], [0, 0]]
    log_probs = one_hot_log_probs(paths, 4)
    lengths = torch.tensor([8, 8, 2])
    assert ctc_greedy_decode(log_probs, lengths) == [[3, 3, 1], [2], []]
    assert ctc_prefix_beam_search(log_probs, lengths, beam_size=4) == [[3, 3, 1], [2], []]
    # frames past a sequence's length are ignored
    assert ctc_greedy_decode(log_probs, torch.tensor([3, 2, 2]))[0] == [3]


def labelling_probabilities(log_probs):
    """{labelling: p} of one sequence (T, C+1) by summing over every path."""
    T, n = log_probs.shape
    total = {}
    for path in itertools.product(range(n), repeat=T):
        p = math.exp(sum(float(log_probs[t, s]) for t, s in enumerate(path)))
        key = collapse(path)
        total[key] = total.get(key, 0.0) + p
    return total


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_prefix_beam_search_finds_the_most_probable_labelling(seed):
    torch.manual_seed(seed)
    T, n = 5, 3
    log_probs = (torch.randn(T, 1, n) * 1.5).log_softmax(-1).double()
    exact = labelling_probabilities(log_probs[:, 0])
    best = max(exact, key=exact.get)
    found = ctc_prefix_beam_search(log_probs, beam_size=50, prune=-math.inf)
    assert tuple(found[0]) == best


def test_prefix_beam_search_beats_the_best_path_where_alignments_add_up():
    # best path: blank at both frames -> ""; but "1" has 2 paths: p(1,1) + p(1,-) + p(-,1) = 0.16 + 0.24 + 0.24
    probs = torch.tensor([[0.6, 0.4], [0.6, 0.4]]).unsqueeze(1).log()  # (T=2, B=1, 2)
    assert ctc_greedy_decode(probs) == [[]]
    assert ctc_prefix_beam_search(probs, beam_size=4) == [[1]]


def test_ctc_head_loss_is_the_negative_log_probability_of_the_labelling_per_label():
    torch.manual_seed(0)
    head = rnnlab.CTCHead(3, num_labels=2).double()
    log_probs = head(torch.randn(4, 2, 3, dtype=torch.double)).detach()  # (T, B, 3)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(4, 2, dtype=torch.double))
    targets, target_lengths, input_lengths = torch.tensor([1, 2, 2]), torch.tensor([2, 1]), torch.tensor([4, 3])
    loss = head.loss(log_probs, input_lengths, targets, target_lengths)
    expected = (-math.log(labelling_probabilities(log_probs[:4, 0])[(1, 2)]) / 2
                - math.log(labelling_probabilities(log_probs[:3, 1])[(2,)]) / 1) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-9)
    assert head.decode(log_probs, input_lengths, beam_size=3) == ctc_prefix_beam_search(log_probs, input_lengths, 3)


def test_ctc_bad_inputs():
    with pytest.raises(InputError, match="blank must be an index in"):
        rnnlab.CTCHead(4, 3, blank=4)
    with pytest.raises(InputError, match="log_probs"):
        ctc_greedy_decode(torch.zeros(3, 4))
    with pytest.raises(InputError, match="input_lengths"):
        ctc_greedy_decode(torch.zeros(3, 2, 4), torch.tensor([4, 1]))
    with pytest.raises(InputError, match="beam_size must be positive"):
        ctc_prefix_beam_search(torch.zeros(3, 2, 4), beam_size=0)
