import numpy as np
import pytest

from rnnlab.data.text import (
    CharTokenizer,
    Vocab,
    WordTokenizer,
    bible_text,
    encode_texts,
    load_corpus,
    load_sentiment,
    split_text,
)
from rnnlab.errors import InputError

ROWS = [(f"good tasty food {i}", "pos") for i in range(12)] + [(f"awful stale mess {i}", "neg") for i in range(8)]


def _csv(rows, text="text", label="label"):
    lines = [f"{text},{label}"] + [f'"{t}",{lab}' for t, lab in rows]
    return "\n".join(lines) + "\n"


def test_builtin_sentiment_fine_foods():
    data = load_sentiment()
    assert data.name == "fine_foods" and data.classes == ["great", "other"]
    assert (len(data.train), len(data.valid), len(data.test)) == (3600, 400, 1000)
    assert all(isinstance(t, str) and t.strip() for t in data.test.inputs[:50])
    assert not any("<br" in t for t in data.train.inputs)
    assert np.bincount(data.test.labels).tolist() == [658, 342]
    # the valid split is stratified: 35% 'other' as in the 4,000 training reviews
    assert np.bincount(data.valid.labels).tolist() == [260, 140]
    again = load_sentiment()
    assert again.valid.inputs == data.valid.inputs


def test_user_file_with_seeded_stratified_split(write):
    path = write("reviews.csv", _csv(ROWS))
    data = load_sentiment(path, valid_fraction=0.25, test_fraction=0.25, seed=1)
    assert data.name == "reviews" and data.classes == ["neg", "pos"]
    assert (len(data.train), len(data.valid), len(data.test)) == (10, 5, 5)
    assert np.bincount(data.valid.labels).tolist() == [2, 3]
    assert sorted(data.train.inputs + data.valid.inputs + data.test.inputs) == sorted(t for t, _ in ROWS)
    for texts, labels in ((data.train.inputs, data.train.labels), (data.test.inputs, data.test.labels)):
        for text, label in zip(texts, labels, strict=True):
            assert data.classes[label] == ("pos" if text.startswith("good") else "neg")
    same = load_sentiment(path, valid_fraction=0.25, test_fraction=0.25, seed=1)
    other = load_sentiment(path, valid_fraction=0.25, test_fraction=0.25, seed=2)
    assert same.test.inputs == data.test.inputs and other.test.inputs != data.test.inputs


def test_given_valid_and_test_files_are_used_as_they_are(write):
    train = write("train.tsv", "review\tstars\nnice\t5\nbad\t1\nfine\t5\nugly\t1\n")
    valid = write("valid.jsonl", '{"review": "ok", "stars": 5}\n')
    test = write("test.csv", "review,stars\nmeh,1\ngreat,5\n")
    data = load_sentiment(train, valid_data=valid, test_data=test, text_column="review", label_column="stars")
    assert data.classes == ["1", "5"]  # numeric labels sort numerically; JSON 5 and text "5" agree
    assert data.train.inputs == ["nice", "bad", "fine", "ugly"]
    assert data.valid.inputs == ["ok"] and data.valid.labels.tolist() == [1]
    assert data.test.inputs == ["meh", "great"] and data.test.labels.tolist() == [0, 1]


def test_empty_texts_are_skipped_and_counted(write):
    rows = ROWS + [("", "pos"), ("   ", "neg")]
    data = load_sentiment(write("r.csv", _csv(rows)), valid_fraction=0.25, test_fraction=0.25)
    assert data.skipped_empty == {"train": 2}
    assert len(data.train) + len(data.valid) + len(data.test) == len(ROWS)


def test_all_texts_empty_is_an_error(write):
    with pytest.raises(InputError, match="all 2 rows of r.csv have empty text in column 'text'"):
        load_sentiment(write("r.csv", 'text,label\n"",pos\n" ",neg\n'))


def test_one_class_is_an_error(write):
    with pytest.raises(InputError, match=r"the labels of r.csv have one class \('pos'\); need at least 2"):
        load_sentiment(write("r.csv", _csv([("a", "pos"), ("b", "pos")])))


def test_label_unseen_in_training_is_an_error(write):
    train = write("train.csv", _csv(ROWS))
    test = write("test.csv", _csv([("so so", "neutral")]))
    with pytest.raises(InputError, match="labels 'neutral' in test.csv do not occur in the training data; training"):
        load_sentiment(train, test_data=test)


def test_missing_label_and_missing_column(write):
    with pytest.raises(InputError, match="label column 'label' of r.csv is empty at data row 2"):
        load_sentiment(write("r.csv", "text,label\na,pos\nb,\n"))
    with pytest.raises(InputError, match="column 'txt' not found in r2.csv; columns are: text, label"):
        load_sentiment(write("r2.csv", _csv(ROWS)), text_column="txt")


def test_encode_texts_pads_with_the_vocab_pad_id(write):
    data = load_sentiment(write("r.csv", _csv(ROWS)), valid_fraction=0.25, test_fraction=0.25)
    vocab = Vocab.build(data.train.inputs, WordTokenizer(), pad=True)
    ids, lengths = encode_texts(vocab, ["good food", "tasty", "!!! !"], max_len=3)
    assert ids.shape == (3, 3) and lengths.tolist() == [2, 1, 3]
    assert ids[0].tolist() == [vocab.id_of("good"), vocab.id_of("food"), vocab.pad_id]
    assert ids[2].tolist() == [vocab.unk_id] * 3
    with pytest.raises(InputError, match="needs a vocabulary with <pad>"):
        encode_texts(Vocab.build("ab", CharTokenizer()), ["a"])


def test_bible_text_layout():
    text = bible_text()
    assert text.startswith("Genesis 1\nIn the beginning God created the heaven and the earth.\nAnd the earth")
    assert "\n\nGenesis 2\n" in text and "\n\nExodus 1\n" in text
    assert text.endswith("The grace of our Lord Jesus Christ be with you all. Amen.\n")
    assert "[]" not in text and len(text) == 4_151_616
    assert text.count("\n\n") == 1188  # 1,189 chapters


def test_builtin_corpus_split_is_contiguous_at_line_starts():
    corpus = load_corpus()
    assert corpus.name == "kjv"
    assert corpus.train + corpus.valid + corpus.test == bible_text()
    assert corpus.train.endswith("\n") and corpus.valid.endswith("\n")
    assert 0.89 < len(corpus.train) / len(bible_text()) < 0.91


def test_user_corpus_file_and_empty_file(write):
    path = write("story.txt", "".join(f"line {i}\n" for i in range(100)))
    corpus = load_corpus(path, valid_fraction=0.1, test_fraction=0.1)
    assert corpus.name == "story" and corpus.valid.startswith("line ") and corpus.test.startswith("line ")
    with pytest.raises(InputError, match=r"empty.txt is empty \(0 bytes\)"):
        load_corpus(write("empty.txt", ""))


def test_split_text_without_newlines_cuts_at_the_fraction():
    assert split_text("abcdefghij", valid_fraction=0.2, test_fraction=0.1) == ("abcdefg", "hi", "j")
