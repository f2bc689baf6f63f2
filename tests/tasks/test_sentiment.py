"""The sentiment (text classification) task: files, tokens and vocabulary, packed batches, baselines, bad
input, determinism, learning, and predict from a saved run without the data."""

import csv
import io
import json
import math

import pytest
import torch
from torch.nn.utils.rnn import PackedSequence

from rnnlab.data.vocab import Vocab
from rnnlab.errors import InputError, InputWarning
from rnnlab.tasks import get_task
from rnnlab.tasks.sentiment import Sentiment
from rnnlab.train import Trainer, build_config
from rnnlab.train.run import start_run
from rnnlab.train.trained import load_trained

GOOD = ["great", "tasty", "delicious", "lovely", "fresh", "perfect"]
BAD = ["awful", "stale", "bland", "soggy", "rotten", "terrible"]
FILLER = ["the", "coffee", "was", "really", "and", "i", "think", "this", "snack", "box"]


def reviews(n=100, seed=0):
    """``n`` (text, label) rows: filler words of varied length around one or two words that give the label."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for k in range(n):
        label = ("pos", "neg")[k % 2]
        cue = GOOD if label == "pos" else BAD
        length = int(torch.randint(3, 14, (1,), generator=g))
        words = [FILLER[int(i)] for i in torch.randint(0, len(FILLER), (length,), generator=g)]
        for _ in range(1 + k % 3 // 2):
            where = int(torch.randint(0, len(words) + 1, (1,), generator=g))
            words.insert(where, cue[int(torch.randint(0, 6, (1,), generator=g))])
        rows.append((" ".join(words), label))
    return rows


def csv_text(rows, text="text", label="label", sep=","):
    out = io.StringIO()
    writer = csv.writer(out, delimiter=sep, lineterminator="\n")
    writer.writerow([text, label])
    writer.writerows(rows)
    return out.getvalue()


def jsonl_text(rows):
    return "".join(json.dumps({"text": t, "label": lab}) + "\n" for t, lab in rows)


@pytest.fixture
def data_csv(write):
    return write("reviews.csv", csv_text(reviews()))


def small(**options):
    return Sentiment(max_len=50, embedding_size=8, **options)


# ------------------------------------------------------------------------------------------- registry, options
def test_registered_with_options():
    cls = get_task("sentiment")
    assert cls is Sentiment and cls.supports("predict") and not cls.supports("generate")
    assert {"data", "valid_data", "test_data", "text_column", "label_column"} <= {o.name for o in cls.options}
    with pytest.raises(InputError, match="--io-dropout"):
        Sentiment(io_dropout=1.0)


# --------------------------------------------------------------------------------------------- files, splits
@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("r.csv", lambda rows: csv_text(rows)),
        ("r.tsv", lambda rows: csv_text(rows, sep="\t")),
        ("r.jsonl", jsonl_text),
    ],
)
def test_every_file_format_gives_the_same_task(write, name, make):
    rows = reviews()
    task = small(data=str(write(name, make(rows))))
    reference = small(data=str(write("ref.csv", csv_text(rows))))
    assert task.classes == reference.classes == ["neg", "pos"]
    assert task.vocab == reference.vocab
    for split in ("train", "valid", "test"):
        for a, b in zip(task.encoded(split), reference.encoded(split), strict=True):
            assert torch.equal(a, b)
    sizes = {split: len(task.encoded(split)[2]) for split in ("train", "valid", "test")}
    assert sizes == {"train": 80, "valid": 10, "test": 10}  # 10% + 10%, stratified


def test_named_columns_and_given_valid_and_test_files(write):
    rows = reviews(60)
    train = write("train.csv", csv_text(rows[:40], text="review", label="stars"))
    valid = write("valid.tsv", csv_text(rows[40:50], text="review", label="stars", sep="\t"))
    test = write("test.csv", csv_text(rows[50:], text="review", label="stars"))
    task = small(data=str(train), valid_data=str(valid), test_data=str(test), text_column="review",
                 label_column="stars")
    assert [len(task.encoded(s)[2]) for s in ("train", "valid", "test")] == [40, 10, 10]
    assert task.data().test.inputs == [t for t, _ in rows[50:]]


def test_split_seed_changes_the_split(data_csv):
    a, b = small(data=str(data_csv)), small(data=str(data_csv), split_seed=1)
    assert a.data().valid.inputs != b.data().valid.inputs


# ------------------------------------------------------------------------------------------ tokens, vocabulary
def test_vocabulary_from_training_split_only_and_saved_round_trip(write, tmp_path):
    rows = reviews(40)
    train = write("train.csv", csv_text(rows + [("zebra, zebra!", "pos"), ("unseen!", "neg")]))
    test = write("test.csv", csv_text(rows[:10] + [("Quokka QUOKKA quokka!", "neg")]))
    task = small(data=str(train), test_data=str(test), min_freq=2)
    vocab = task.vocab
    assert vocab.pad_id == 0 and vocab.tokens[:2] == ["<pad>", "<unk>"]
    assert "zebra" in vocab and "!" in vocab and "unseen" not in vocab and "," not in vocab  # min_freq 2
    assert "quokka" not in vocab  # only in the test file
    ids, lengths, _ = task.encoded("test")
    assert ids[-1, : lengths[-1]].tolist() == [vocab.unk_id] * 3 + [vocab.id_of("!")]
    assert vocab.decode(vocab.encode("Zebra, the COFFEE!")) == "zebra <unk> the coffee!"

    task.save_artifacts(tmp_path)
    assert json.loads((tmp_path / "labels.json").read_text()) == ["neg", "pos"]
    restored = small(data="/nonexistent.csv")  # the data is never read: everything comes from the run
    restored.load_artifacts(tmp_path)
    assert restored.vocab == vocab and restored.classes == ["neg", "pos"]
    assert Vocab.load(tmp_path / "vocab.json") == vocab


def test_vocab_size_caps_the_vocabulary(data_csv):
    task = small(data=str(data_csv), vocab_size=10, min_freq=1)
    assert len(task.vocab) == 10


def test_max_len_keeps_the_first_tokens(write):
    rows = [("great " + "word " * 30, "pos"), ("awful " + "word " * 30, "neg")] * 10
    task = Sentiment(data=str(write("long.csv", csv_text(rows))), max_len=5, min_freq=1)
    ids, lengths, _ = task.encoded("train")
    assert ids.shape[1] == 5 and int(lengths.max()) == 5


# ---------------------------------------------------------------------------------------------------- batches
def test_batches_are_packed_sequences_of_unequal_lengths(data_csv):
    task = small(data=str(data_csv))
    batch = next(task.train_batches(batch_size=16, seed=0))
    assert isinstance(batch.inputs, PackedSequence)
    assert batch.targets.shape == (16,) and batch.lengths.shape == (16,)
    assert len(set(batch.lengths.tolist())) > 1
    ids, lengths, labels = task.encoded("train")
    index = batch.extra["index"]
    assert torch.equal(batch.lengths, lengths[index]) and torch.equal(batch.targets, labels[index])


def test_training_stream_is_deterministic_resumable_and_covers_each_epoch(data_csv):
    task = small(data=str(data_csv))
    per_epoch = task.steps_per_epoch(16)
    assert per_epoch == math.ceil(80 / 16)
    stream = task.train_batches(16, seed=3)
    first = [next(stream).extra["index"] for _ in range(per_epoch + 2)]
    again = task.train_batches(16, seed=3)
    assert all(torch.equal(a, next(again).extra["index"]) for a in first)
    resumed = task.train_batches(16, seed=3, start_step=per_epoch + 1)
    assert torch.equal(next(resumed).extra["index"], first[per_epoch + 1])
    assert sorted(torch.cat(first[:per_epoch]).tolist()) == list(range(80))  # an epoch sees every text once
    other = task.train_batches(16, seed=4)
    assert not torch.equal(next(other).extra["index"], first[0])


def test_eval_batches_cover_the_split_once(data_csv):
    task = small(data=str(data_csv))
    seen = torch.cat([b.extra["index"] for b in task.eval_batches("train", 10)])
    assert sorted(seen.tolist()) == list(range(80))


# -------------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "file not found"),
        ("", "is empty"),
        ("text,label\n", "no data rows"),
        ("words,label\nhello,pos\n", "column 'text' not found in bad.csv; columns are: words, label"),
        (b"text,label\ncaf\xe9,pos\n", "cannot read bad.csv as UTF-8"),
        ("text,label\ngood,pos\nnice,pos\nfine,pos\n", "one class"),
        ("text,label\n  ,pos\n,neg\n", "empty text"),
    ],
)
def test_bad_files_raise_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    task = Sentiment(data=str(path))
    with pytest.raises(InputError, match=message):
        task.data()


def test_rows_with_empty_text_are_skipped_with_a_warning(write):
    rows = reviews(40)
    text = csv_text(rows) + ",pos\n   ,neg\n"
    task = small(data=str(write("gaps.csv", text)))
    with pytest.warns(InputWarning, match="skipped 2 train row"):
        task.data()
    assert sum(len(task.encoded(s)[2]) for s in ("train", "valid", "test")) == 40


def test_label_column_missing_names_the_columns(write):
    path = write("r.jsonl", jsonl_text(reviews(20)))
    with pytest.raises(InputError, match="column 'stars' not found in r.jsonl; columns are: text, label"):
        Sentiment(data=str(path), label_column="stars").data()


# -------------------------------------------------------------------------------------------- model, metrics
def test_head_shapes_and_metrics(data_csv):
    task = small(data=str(data_csv))
    config = build_config("sentiment", {"data": str(data_csv), "embedding_size": 8},
                          {"hidden_size": 8, "bidirectional": True, "steps": 1})
    model = Trainer(config, None, task=task).model
    batch = next(task.eval_batches("valid", 4))
    logits, _ = model(batch.inputs)
    assert logits.shape == (4, 2)
    sums = task.metric_sums(logits, batch)
    assert sums["accuracy"][1] == 4 and 0 <= sums["accuracy"][0] <= 4 and sums["nll_nats"][0] > 0


def test_baselines_tfidf_and_majority(data_csv):
    task = small(data=str(data_csv))
    baseline = task.baseline()
    assert set(baseline) == {"accuracy", "nll_nats", "majority_accuracy", "majority_nll_nats"}
    assert baseline["accuracy"] >= 0.8  # the cue words give the label away to a bag of words
    assert baseline["majority_accuracy"] == pytest.approx(0.5)
    assert baseline["majority_nll_nats"] == pytest.approx(math.log(2), abs=0.02)


def _tiny_config(path, **overrides):
    settings = {"hidden_size": 16, "steps": 100, "batch_size": 16, "eval_every": 25, "lr": 1e-2, "log_every": 25,
                "schedule": "constant"}
    settings.update(overrides)
    options = {"data": str(path), "embedding_size": 16, "max_len": 20, "io_dropout": 0.0}
    return build_config("sentiment", options, settings)


def test_a_short_training_run_learns_and_is_deterministic(data_csv):
    config = _tiny_config(data_csv)
    trainer = Trainer(config, None)
    before = trainer.evaluate("valid")["nll_nats"]
    results = trainer.fit()
    assert results["best_valid"] >= 0.9
    assert trainer.evaluate("train")["accuracy"] >= 0.95
    assert trainer.evaluate("valid")["nll_nats"] < before - 0.4
    again = Trainer(config, None).fit()
    assert again["metrics"] == results["metrics"]


def test_predict_from_a_saved_run_without_the_data(data_csv, tmp_path, write):
    run, results = start_run("sentiment", _tiny_config(data_csv).task_options,
                             _tiny_config(data_csv).flat(),
                             tmp_path / "run")
    assert (run.path / "vocab.json").is_file() and (run.path / "labels.json").is_file()
    data_csv.unlink()  # predict needs only the run directory
    task, model = load_trained(run.path)
    out = task.predict(model, ["what a great and delicious snack", "stale and awful coffee"])
    assert [r["label"] for r in out] == ["pos", "neg"]
    for r in out:
        assert r["probability"] == max(r["probabilities"].values())
        assert sum(r["probabilities"].values()) == pytest.approx(1)
    lines = write("inputs.txt", "so tasty\n\n   \nterrible stale box\n")
    with pytest.warns(InputWarning, match="skipped 2 empty text"):
        from_file = task.predict(model, input_file=lines)
    assert [r["text"] for r in from_file] == ["so tasty", "terrible stale box"]
    table = write("inputs.jsonl", '{"body": "fresh and perfect"}\n')
    assert task.predict(model, input_file=table, text_column="body")[0]["label"] == "pos"
    with pytest.raises(InputError, match="is empty"):
        task.predict(model, [" "])
    with pytest.raises(InputError, match="only whitespace"):
        task.predict(model, input_file=write("blank.txt", "\n \n"))
    with pytest.raises(InputError, match="all 2 texts in column 'body' of blank.csv are empty"):
        task.predict(model, input_file=write("blank.csv", "body\n\"\"\nNA\n"), text_column="body")


# ------------------------------------------------------------------------------------------------ built-in data
def test_builtin_food_reviews():
    task = Sentiment()
    data = task.data()
    assert task.classes == ["great", "other"]
    assert [len(data.train), len(data.valid), len(data.test)] == [3600, 400, 1000]
    assert "<br" not in " ".join(data.train.inputs[:200])
    assert 5000 < len(task.vocab) <= 20000
