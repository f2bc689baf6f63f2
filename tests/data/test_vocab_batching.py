import json

import numpy as np
import pytest
import torch

from rnnlab.data.batching import batchify, bptt_chunks, lm_chunks, pad_sequences
from rnnlab.data.vocab import PAD, UNK, CharTokenizer, Vocab, WordTokenizer, tokenizer_from_dict
from rnnlab.errors import InputError


def test_char_vocab_round_trips_text():
    text = "To be, or not to be:\nthat is the question."
    vocab = Vocab.build(text, CharTokenizer())
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and ids.shape == (len(text),)
    assert vocab.decode(ids) == text
    assert vocab.tokens[0] == UNK and vocab.unk_id == 0 and vocab.pad_id is None
    assert vocab.tokens[1] == " "  # most frequent first


def test_word_tokenizer_words_and_punctuation():
    tok = WordTokenizer(lower=True)
    tokens = tok.tokenize("Don't stop, it's well-known (really)!")
    assert tokens == ["don't", "stop", ",", "it's", "well-known", "(", "really", ")", "!"]
    assert tok.detokenize(tokens) == "don't stop, it's well-known (really)!"
    assert WordTokenizer(lower=False).tokenize("Hello World") == ["Hello", "World"]


def test_vocab_size_cap_min_freq_and_pad():
    texts = ["a a a b b c", "a b d"]
    vocab = Vocab.build(texts, WordTokenizer(), pad=True, min_freq=2)
    assert vocab.tokens == [PAD, UNK, "a", "b"]
    assert vocab.pad_id == 0 and vocab.unk_id == 1
    capped = Vocab.build(texts, WordTokenizer(), max_size=3)
    assert capped.tokens == [UNK, "a", "b"] and len(capped) == 3
    assert capped.encode("a c z").tolist() == [1, 0, 0]


def test_ties_are_broken_by_token_text():
    assert Vocab.build("b a c", WordTokenizer()).tokens == [UNK, "a", "b", "c"]


def test_unknown_characters_of_a_prompt_are_reported():
    vocab = Vocab.build("hello world", CharTokenizer())
    ids, unknown = vocab.encode_report("hello, Zürich!")
    assert unknown == [",", "Z", "ü", "i", "c", "!"]
    assert (ids == vocab.unk_id).sum() == 6
    assert vocab.decode(vocab.encode("hello")) == "hello"


def test_vocab_save_load_json(tmp_path):
    vocab = Vocab.build(["Good food.", "Bad food!"], WordTokenizer(lower=True), pad=True)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    state = json.loads(path.read_text(encoding="utf-8"))
    assert state["format"] == "rnnlab.vocab/1" and state["tokenizer"] == {"kind": "word", "lower": True}
    loaded = Vocab.load(path)
    assert loaded == vocab and loaded.pad_id == 0
    assert loaded.encode("good food").tolist() == vocab.encode("GOOD food").tolist()


def test_vocab_errors(write):
    with pytest.raises(InputError, match="max_size must exceed the 2 special token"):
        Vocab.build("abc", CharTokenizer(), max_size=2, pad=True)
    with pytest.raises(InputError, match="empty vocabulary"):
        Vocab.build("a b", WordTokenizer(), min_freq=2)
    with pytest.raises(InputError, match="token id 9 out of range for a vocabulary of 3"):
        Vocab.build("ab", CharTokenizer()).decode([9])
    with pytest.raises(InputError, match="expected a vocabulary saved by rnnlab"):
        Vocab.load(write("v.json", '{"tokens": ["a"]}'))
    with pytest.raises(InputError, match="expected a tokenizer kind in"):
        tokenizer_from_dict({"kind": "bpe"})


def test_decode_drops_pad():
    vocab = Vocab.build(["a b"], WordTokenizer(), pad=True)
    assert vocab.decode([vocab.id_of("a"), 0, 0]) == "a"


def test_batchify_lays_out_contiguous_columns():
    data = np.arange(11)
    batched = batchify(data, 2)  # 11 // 2 = 5 steps, the last id dropped
    assert batched.shape == (5, 2) and batched.flags.c_contiguous
    assert batched[:, 0].tolist() == [0, 1, 2, 3, 4] and batched[:, 1].tolist() == [5, 6, 7, 8, 9]
    tensor = batchify(torch.arange(11), 2)
    assert tensor.shape == (5, 2) and tensor.is_contiguous() and tensor[:, 1].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(InputError, match="a stream of 5 tokens is too short for batch_size 4: need at least 8"):
        batchify(np.arange(5), 4)


def test_bptt_chunks_shift_targets_by_one_and_cover_the_stream():
    batched = batchify(np.arange(20), 2)  # (10, 2)
    chunks = list(bptt_chunks(batched, 4))
    assert [len(x) for x, _ in chunks] == [4, 4, 1]
    for x, y in chunks:
        assert np.array_equal(y, x + 1)
    inputs = np.concatenate([x for x, _ in chunks])
    assert np.array_equal(inputs, batched[:-1])


def test_lm_chunks():
    x, y = lm_chunks(np.arange(10), 3)
    assert x.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert y.tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    with pytest.raises(InputError, match="need at least 5"):
        lm_chunks(np.arange(4), 4)


def test_pad_sequences():
    ids, lengths = pad_sequences([[1, 2, 3], [4]], pad_id=0)
    assert ids.tolist() == [[1, 2, 3], [4, 0, 0]] and lengths.tolist() == [3, 1]
    ids, lengths = pad_sequences([[1, 2, 3], [4]], pad_id=0, max_len=2, truncate="pre")
    assert ids.tolist() == [[2, 3], [4, 0]] and lengths.tolist() == [2, 1]
    with pytest.raises(InputError, match="truncate must be one of post, pre, head_tail"):
        pad_sequences([[1]], pad_id=0, truncate="middle")
