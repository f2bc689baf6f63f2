"""Attention and the encoder-decoder: weights sum to 1 and respect the source mask, stepping equals the
teacher-forced pass, beam 1 is greedy, a wide beam is exhaustive search, bad arguments raise."""

import itertools

import pytest
import torch

import rnnlab
from rnnlab.errors import InputError
from rnnlab.layers.attention import AdditiveAttention, MultiplicativeAttention, lengths_to_mask

E, H, V_SRC, V_TGT = 5, 6, 9, 7
PAD, BOS, EOS = 0, 1, 2


@pytest.mark.parametrize("attention", [AdditiveAttention(4, 6, 5), MultiplicativeAttention(4, 6)])
def test_attention_weights_sum_to_one_and_ignore_masked_positions(attention):
    B, T, S = 3, 2, 5
    keys = torch.randn(B, S, 6)
    mask = lengths_to_mask(torch.tensor([5, 2, 1]), S)
    query = torch.randn(B, T, 4)
    context, weights = attention(query, keys, mask)
    assert context.shape == (B, T, 6) and weights.shape == (B, T, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, T))
    assert (weights[~mask.unsqueeze(1).expand_as(weights)] == 0).all()
    assert (weights[mask.unsqueeze(1).expand_as(weights)] > 0).all()
    # padded keys change nothing: the context is that of the unpadded source
    noisy = keys.clone()
    noisy[~mask] = 100.0
    torch.testing.assert_close(attention(query, noisy, mask)[0], context)
    c1, w1 = attention(query[:, 0], keys, mask)  # one query per row
    torch.testing.assert_close(c1, context[:, 0])
    torch.testing.assert_close(w1, weights[:, 0])


def test_attention_bad_inputs():
    attention = AdditiveAttention(4, 6)
    with pytest.raises(InputError, match="query size 4"):
        attention(torch.randn(2, 5), torch.randn(2, 3, 6))
    with pytest.raises(InputError, match="at least one unmasked"):
        attention(torch.randn(2, 4), torch.randn(2, 3, 6), torch.tensor([[True, False, False], [False] * 3]))
    with pytest.raises(InputError, match="unknown attention"):
        rnnlab.layers.attention.build_attention("cosine", 4, 4)


def make_model(attention="additive", input_feeding=True, encoder="lstm", decoder="lstm", bidirectional=True,
               layers=1):
    enc = rnnlab.build_layer(encoder, E, H, bidirectional=bidirectional)
    dec = rnnlab.build_layer(decoder, E + (H if input_feeding else 0), H, layers)
    model = rnnlab.Seq2Seq(enc, dec, V_SRC, V_TGT, embedding_size=E, attention=attention,
                           input_feeding=input_feeding, pad_id=PAD, bos_id=BOS, eos_id=EOS)
    return model.double().eval()


def source_batch():
    lengths = torch.tensor([4, 2, 3])
    src = torch.randint(3, V_SRC, (4, 3))
    src[~lengths_to_mask(lengths, 4).t()] = PAD
    return src, lengths


CONFIGS = [("additive", True, "lstm", "lstm", True, 1), ("multiplicative", False, "gru", "lstm", True, 2),
           ("additive", False, "lstm", "gru", False, 1), ("multiplicative", True, "rnn", "clockwork", True, 1)]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: "-".join(map(str, c)))
def test_stepping_the_decoder_equals_the_teacher_forced_pass(config):
    model = make_model(*config)
    src, lengths = source_batch()
    target = torch.randint(3, V_TGT, (5, 3))
    target[0] = BOS
    logits, weights = model(src, lengths, target, return_attention=True)  # (T, B, V), (T, B, S)
    memory = model.encode(src, lengths)
    carry = model.start(memory)
    for t in range(target.shape[0]):
        log_probs, carry, w = model.step(target[t], carry, memory)
        torch.testing.assert_close(log_probs, logits[t].log_softmax(-1), rtol=0, atol=1e-12)
        torch.testing.assert_close(w, weights[t], rtol=0, atol=1e-12)
    torch.testing.assert_close(weights.sum(-1), torch.ones(5, 3, dtype=torch.double))
    assert (weights[:, 1, 2:] == 0).all()  # source 1 has 2 real tokens


def test_a_padded_batch_translates_each_source_as_alone():
    model = make_model()
    src, lengths = source_batch()
    target = torch.randint(3, V_TGT, (4, 3))
    together = model(src, lengths, target)
    for b in range(3):
        n = int(lengths[b])
        alone = model(src[:n, b:b + 1], lengths[b:b + 1], target[:, b:b + 1])
        torch.testing.assert_close(alone[:, 0], together[:, b], rtol=0, atol=1e-12)


@pytest.mark.parametrize("config", CONFIGS[:2], ids=lambda c: "-".join(map(str, c)))
def test_beam_of_one_is_greedy(config):
    torch.manual_seed(3)
    model = make_model(*config)
    src, lengths = source_batch()
    greedy = model.greedy(src, lengths, max_len=8)
    assert model.beam_search(src, lengths, max_len=8, beam_size=1) == greedy
    assert any(len(g) > 0 for g in greedy)


@pytest.mark.parametrize("config", CONFIGS[:2], ids=lambda c: "-".join(map(str, c)))
def test_align_is_the_most_attended_source_position_of_each_decoding_step(config):
    torch.manual_seed(5)
    model = make_model(*config)
    src, lengths = source_batch()
    greedy = model.greedy(src, lengths, max_len=6)
    memory = model.encode(src, lengths)  # step greedily again, recording where each emitted token attended
    carry, previous, attended = model.start(memory), torch.full((3,), BOS), []
    for _ in range(6):
        log_probs, carry, weights = model.step(previous, carry, memory)  # weights (B, S)
        previous = log_probs.argmax(-1)
        attended.append(weights.argmax(-1))
    expected = [[int(attended[t][b]) for t in range(len(greedy[b]))] for b in range(3)]
    assert model.align(src, lengths, greedy) == expected
    assert all(p < lengths[b] for b in range(3) for p in expected[b])
    assert model.align(src, lengths, [[], [], []]) == [[], [], []]
    with pytest.raises(InputError, match="expected 3 hypotheses"):
        model.align(src, lengths, [[3]])


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_beam_wider_than_every_hypothesis_is_exhaustive_search(alpha):
    torch.manual_seed(1)
    enc = rnnlab.build_layer("gru", E, H)
    dec = rnnlab.build_layer("gru", E + H, H)
    model = rnnlab.Seq2Seq(enc, dec, V_SRC, 4, embedding_size=E, eos_id=EOS).double().eval()
    with torch.no_grad():
        model.output.weight.mul_(8.0)  # a peaked model: the search matters
    max_len = 3
    hypotheses = []  # (tokens with eos if any, length |y|)
    for n in range(1, max_len + 1):
        for prefix in itertools.product([0, 1, 3], repeat=n - 1):
            hypotheses.append([*prefix, EOS])
            if n == max_len:  # hypotheses still live at max_len end there, without eos
                hypotheses += [[*prefix, last] for last in (0, 1, 3)]
    N = len(hypotheses)
    targets = torch.tensor([h + [0] * (max_len - len(h)) for h in hypotheses]).t()  # (T, N)
    target_in = torch.cat([torch.full((1, N), BOS), targets[:-1]])
    src = torch.tensor([[3], [4], [5]]).expand(3, N)
    with torch.no_grad():
        log_probs = model(src, torch.full((N,), 3), target_in).log_softmax(-1)  # (T, N, V)
    token_lp = log_probs.gather(2, targets.unsqueeze(-1)).squeeze(-1)  # (T, N)
    scores = [float(token_lp[: len(h), i].sum()) / len(h) ** alpha for i, h in enumerate(hypotheses)]
    best = hypotheses[max(range(N), key=scores.__getitem__)]
    found = model.beam_search(src[:, :1], torch.tensor([3]), max_len=max_len, beam_size=64, length_penalty=alpha)
    assert found == [[t for t in best if t != EOS]]


def test_seq2seq_bad_arguments():
    enc = rnnlab.LSTM(E, H, bidirectional=True)
    with pytest.raises(InputError, match="decoder with input_size 11"):
        rnnlab.Seq2Seq(enc, rnnlab.LSTM(E, H), V_SRC, V_TGT, embedding_size=E)
    with pytest.raises(InputError, match="unidirectional"):
        rnnlab.Seq2Seq(enc, rnnlab.LSTM(E + H, H, bidirectional=True), V_SRC, V_TGT, embedding_size=E)
    with pytest.raises(InputError, match="encoder with input_size 5 .the embedding size., got 4"):
        rnnlab.Seq2Seq(rnnlab.GRU(4, H), rnnlab.LSTM(E + H, H), V_SRC, V_TGT, embedding_size=E)
    with pytest.raises(InputError, match="rnnlab recurrent layer"):
        rnnlab.Seq2Seq(torch.nn.LSTM(E, H), rnnlab.LSTM(E + H, H), V_SRC, V_TGT, embedding_size=E)
    model = make_model()
    src, lengths = source_batch()
    with pytest.raises(InputError, match="beam_size must be a positive int, got 0"):
        model.beam_search(src, lengths, max_len=5, beam_size=0)
    with pytest.raises(InputError, match="source lengths"):
        model(src, torch.tensor([4, 0, 3]), src)
