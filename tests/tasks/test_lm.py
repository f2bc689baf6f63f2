"""The language-modelling task: splits, tokens and vocabulary, truncated-BPTT batches, tied weights, metrics
and baseline, bad input, learning, and generation (streaming, seeded, the one-step path)."""

import math

import pytest
import torch

from rnnlab.data.vocab import Vocab
from rnnlab.errors import InputError, InputWarning
from rnnlab.tasks import get_task
from rnnlab.tasks.lm import EVAL_COLUMN_TOKENS, LanguageModel, TiedHead
from rnnlab.train import Trainer, build_config
from rnnlab.train.run import start_run
from rnnlab.train.trained import load_trained

from .conftest import SHARED_DATA

VERSE = "ROMEO:\nBut soft, what light through yonder window breaks?\n\nJULIET:\nAy me!\n\n"


@pytest.fixture
def corpus(write):
    """A small play-shaped text: 40 repetitions of a short scene (2,800 characters)."""
    return write("play.txt", VERSE * 40)


def model_of(task, hidden=16, layers=1):
    config = build_config("lm", task.settings, {"hidden_size": hidden, "num_layers": layers, "steps": 1})
    return Trainer(config, None, task=task).model


# ---------------------------------------------------------------------------------------------------- splits
def test_ninety_ten_split_on_line_starts_and_test_is_valid_by_default(write):
    text = "".join(f"line {k:03d}\n" for k in range(100))  # 100 lines of 9 characters
    task = LanguageModel(data=str(write("lines.txt", text)))
    c = task.corpus()
    assert c.train + c.valid == text
    assert c.train.endswith("\n") and c.valid.startswith("line ")
    assert len(c.valid) == pytest.approx(0.1 * len(text), abs=9)
    assert c.test == c.valid
    held_out = LanguageModel(data=str(write("lines.txt", text)), valid_fraction=0.1, test_fraction=0.05).corpus()
    assert held_out.train + held_out.valid + held_out.test == text and held_out.test != held_out.valid


def test_builtin_corpus_is_the_king_james_bible():
    task = LanguageModel()
    c = task.corpus()
    assert c.name == "kjv" and c.train.startswith("Genesis 1\nIn the beginning God created the heaven and the earth.")
    assert c.valid.rstrip().endswith("Amen.")  # Revelation closes the validation piece
    assert 60 <= len(task.vocab) <= 80


# -------------------------------------------------------------------------------------------- tokens, vocab
def test_char_vocab_round_trip_and_unknown_characters(corpus, tmp_path):
    task = LanguageModel(data=str(corpus))
    vocab = task.vocab
    assert vocab.decode(vocab.encode(VERSE)) == VERSE
    assert vocab.encode("Z")[0] == vocab.unk_id  # not in the training text
    task.save_artifacts(tmp_path)
    restored = LanguageModel(data="/nonexistent.txt")
    restored.load_artifacts(tmp_path)
    assert restored.vocab == vocab == Vocab.load(tmp_path / "vocab.json")
    with pytest.raises(InputError, match="no vocab.json"):
        LanguageModel().load_artifacts(tmp_path / "elsewhere")


def test_word_level_vocab_cap_and_tied_weights(corpus):
    task = LanguageModel(data=str(corpus), level="word", vocab_size=8, embedding_size=12)
    assert len(task.vocab) == 8 and task.vocab.tokens[0] == "<unk>"
    assert task.vocab.encode("But soft, what light")[2] == task.vocab.id_of(",")
    model = model_of(task, hidden=16)
    assert isinstance(model.head, TiedHead)
    assert model.head.decoder.weight is model.encoder[0].weight  # one parameter, counted once
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for n, p in model.named_parameters() if n != "head.decoder.weight"
    )
    logits, _ = model(torch.zeros(5, 2, dtype=torch.long))
    assert logits.shape == (5, 2, 8)


# ---------------------------------------------------------------------------------------------------- batches
def test_chunks_continue_each_other_and_reset_only_at_epoch_start(corpus):
    task = LanguageModel(data=str(corpus), seq_len=10)
    ids = task.ids("train")
    per_epoch = task.steps_per_epoch(4)
    n_steps = (len(ids) - 10) // 4
    assert per_epoch == (n_steps - 1) // 10
    stream = task.train_batches(4, seed=0)
    batches = [next(stream) for _ in range(per_epoch + 1)]
    for k, b in enumerate(batches):
        assert b.inputs.shape == b.targets.shape == (10, 4)
        assert torch.equal(b.inputs[1:], b.targets[:-1])  # targets are the next tokens
        assert b.reset_state == (k % per_epoch == 0)
    for a, b in zip(batches[: per_epoch - 1], batches[1:per_epoch], strict=True):
        assert torch.equal(b.inputs[0], a.targets[-1])  # each chunk continues the previous one
    column0 = torch.cat([b.inputs[:, 0] for b in batches[:per_epoch]])
    assert torch.equal(column0, ids[: len(column0)])  # the first epoch starts at offset 0


def test_training_stream_is_deterministic_and_resumable(corpus):
    task = LanguageModel(data=str(corpus), seq_len=10)
    per_epoch = task.steps_per_epoch(4)
    first = [next_b.inputs for next_b, _ in zip(task.train_batches(4, seed=1), range(3 * per_epoch), strict=False)]
    resumed = task.train_batches(4, seed=1, start_step=2 * per_epoch + 1)
    assert torch.equal(next(resumed).inputs, first[2 * per_epoch + 1])
    shifted = [b.inputs for b, _ in zip(task.train_batches(4, seed=2), range(3 * per_epoch), strict=False)]
    assert torch.equal(shifted[0], first[0])  # epoch 0 has no offset
    assert any(not torch.equal(a, b) for a, b in zip(first[per_epoch:], shifted[per_epoch:], strict=True))


def test_eval_batches_cover_the_split_in_long_columns(write):
    task = LanguageModel(data=str(write("long.txt", VERSE * 600)), seq_len=50)
    ids = task.ids("valid")
    batches = list(task.eval_batches("valid", 256))
    columns = batches[0].inputs.shape[1]
    assert columns == max(1, len(ids) // EVAL_COLUMN_TOKENS)
    assert [b.reset_state for b in batches] == [True] + [False] * (len(batches) - 1)
    scored = sum(b.targets.numel() for b in batches)
    assert scored == (len(ids) // columns - 1) * columns


# ------------------------------------------------------------------------------------------ metrics, baseline
def test_metrics_in_nats_bits_and_perplexity(corpus):
    char = LanguageModel(data=str(corpus))
    assert char.finalize_metrics({"nll_nats": 1.0}) == {"nll_nats": 1.0, "bits_per_char": 1 / math.log(2)}
    word = LanguageModel(data=str(corpus), level="word")
    assert word.finalize_metrics({"nll_nats": 2.0}) == {"nll_nats": 2.0, "perplexity": math.exp(2.0)}


def test_unigram_baseline(corpus):
    task = LanguageModel(data=str(corpus))
    counts = torch.bincount(task.ids("train"), minlength=len(task.vocab)).double() + 1
    log_probs = torch.log(counts / counts.sum())
    targets = torch.cat([b.targets.flatten() for b in task.eval_batches("test", 256)])
    expected = -float(log_probs[targets].mean())
    assert task.baseline()["nll_nats"] == pytest.approx(expected)
    assert task.baseline()["bits_per_char"] == pytest.approx(expected / math.log(2))


# -------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("", "is empty"),
        ("  \n\n", "only whitespace"),
        (b"caf\xe9\n" * 50, "cannot read bad.txt as UTF-8"),
    ],
)
def test_bad_text_files(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        LanguageModel(data=str(path)).corpus()


def test_text_too_short_for_the_batch(write):
    task = LanguageModel(data=str(write("short.txt", "abcdefghij\n" * 3)))
    with pytest.raises(InputError, match="too few for batch_size 64"):
        task.steps_per_epoch(64)


def test_bad_options():
    with pytest.raises(InputError, match="--level expects one of char, word"):
        LanguageModel(level="byte")
    with pytest.raises(InputError, match="--valid-fraction"):
        LanguageModel(valid_fraction=0.0)
    assert get_task("lm").allows_bidirectional is False


# ---------------------------------------------------------------------------------------------------- training
def _tiny_settings(**overrides):
    settings = {"hidden_size": 32, "steps": 80, "batch_size": 8, "eval_every": 40, "lr": 1e-2, "log_every": 20}
    settings.update(overrides)
    return settings


def test_a_short_training_run_beats_the_unigram_baseline_deterministically(corpus):
    config = build_config("lm", {"data": str(corpus), "seq_len": 20, "embedding_size": 16}, _tiny_settings())
    trainer = Trainer(config, None)
    before = trainer.evaluate("valid")["nll_nats"]
    results = trainer.fit()
    after = results["metrics"]["test_nll_nats"]
    assert after < before - 1.0
    assert after < results["baseline"]["test_nll_nats"] - 0.5
    assert Trainer(config, None).fit()["metrics"] == results["metrics"]


# -------------------------------------------------------------------------------------------------- generation
@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny char-level run on the play, trained long enough to have learned its shape."""
    root = tmp_path_factory.mktemp("lm")
    path = root / "play.txt"
    path.write_text(VERSE * 40, encoding="utf-8")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run, _ = start_run("lm", {"data": str(path), "seq_len": 20, "embedding_size": 16},
                           _tiny_settings(steps=150), root / "run")
    finally:
        torch.set_num_threads(threads)
    path.unlink()  # generation needs only the run directory
    return run.path


def test_generation_streams_is_seeded_and_counts_tokens(trained_run):
    task, model = load_trained(trained_run)
    pieces = []
    text = task.generate(model, prompt="ROMEO:", length=60, temperature=0.5, seed=7, emit=pieces.append)
    assert pieces[0] == "ROMEO:" and "".join(pieces) == text and len(text) == len("ROMEO:") + 60
    assert task.generate(model, prompt="ROMEO:", length=60, temperature=0.5, seed=7) == text
    assert task.generate(model, prompt="ROMEO:", length=60, temperature=1.5, seed=8) != text
    greedy = task.generate(model, prompt="JULIET:", length=40, top_k=1)
    assert "\n" in greedy and "Ay me!" in greedy  # it has learned the scene


def test_generation_steps_equal_the_full_run(trained_run):
    task, model = load_trained(trained_run)
    text = task.generate(model, prompt="But", length=30, top_k=1)
    ids = torch.as_tensor(task.vocab.encode(text)).unsqueeze(1)  # (T, 1)
    with torch.no_grad():
        logits, _ = model(ids)  # (T, 1, V): the whole text in one call
    greedy = logits[len("But") - 1 : -1, 0].argmax(-1)  # what each step predicted next
    assert torch.equal(greedy, ids[len("But") :, 0])


def test_generation_warns_about_unknown_prompt_characters(trained_run):
    task, model = load_trained(trained_run)
    with pytest.warns(InputWarning, match=r"2 prompt token\(s\) not in the vocabulary were mapped to <unk>: 'Z', '£'"):
        text = task.generate(model, prompt="ZR£", length=5)
    assert text.startswith("ZR£") and len(text) == 8


def test_generation_without_prompt_and_bad_arguments(trained_run):
    task, model = load_trained(trained_run)
    text = task.generate(model, length=20)
    assert text.startswith("\n") and len(text) == 21
    for kwargs, message in [
        ({"temperature": 0.0}, "temperature must be a positive number"),
        ({"top_k": 0}, "top_k must be an integer >= 1"),
        ({"length": -1}, "length must be an integer >= 0"),
        ({"voices": 2}, "takes no option"),
    ]:
        with pytest.raises(InputError, match=message):
            task.generate(model, prompt="a", **kwargs)


def test_word_level_generation_joins_words(write):
    task = LanguageModel(data=str(write("w.txt", VERSE * 40)), level="word", embedding_size=8)
    model = model_of(task, hidden=8)
    pieces = []
    text = task.generate(model, prompt="But soft", length=12, seed=1, emit=pieces.append)
    assert "".join(pieces) == text and text.startswith("But soft")
    assert len(task.vocab.tokenizer.tokenize(text)) == 2 + 12


@pytest.mark.skipif(not (SHARED_DATA / "text" / "tinyshakespeare.txt").is_file(), reason="no shared data")
def test_tinyshakespeare_split():
    task = LanguageModel(data=str(SHARED_DATA / "text" / "tinyshakespeare.txt"))
    c = task.corpus()
    assert len(c.train) / (len(c.train) + len(c.valid)) == pytest.approx(0.9, abs=1e-4)
    assert len(task.vocab) == 66  # 65 characters and <unk>
