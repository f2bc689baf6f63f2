"""Tokenisers (character and word level) and the :class:`Vocab` that maps tokens to ids and back.

A ``Vocab`` carries its tokeniser, so one object turns text into ids (``encode``) and ids into text
(``decode``), and one JSON file in a run directory (``save``/``load``) restores both. Build it on the
training split only: tokens seen only in valid/test data then map to ``<unk>``, as they would in use.

Ids: ``<pad>`` (when asked for, for padded classification batches) is 0, then ``<unk>``, then the tokens by
decreasing training frequency, ties broken by the token's text, so a build is deterministic.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rnnlab.data.files import read_json
from rnnlab.errors import InputError

PAD = "<pad>"
UNK = "<unk>"

# A word is a run of letters/digits, with inner apostrophes or hyphens ("don't", "well-known"); any other
# non-space character is a token of its own (punctuation).
_WORD_RE = re.compile(r"\w+(?:['’\-]\w+)*|[^\w\s]", re.UNICODE)
# No space before closing punctuation, none after opening brackets, when words are joined back into text.
_SPACE_BEFORE_RE = re.compile(r" ([.,;:!?%)\]}'’”])")
_SPACE_AFTER_RE = re.compile(r"([(\[{“]) ")


@dataclass(frozen=True)
class CharTokenizer:
    """Text -> characters; ``detokenize`` joins them back, so the round trip is exact."""

    lower: bool = False

    def tokenize(self, text: str) -> list[str]:
        """``text`` -> ``[c_1, ..., c_L]``, one token per character (lower-cased if ``lower``)."""
        return list(text.lower() if self.lower else text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return "".join(tokens)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "char", "lower": self.lower}


@dataclass(frozen=True)
class WordTokenizer:
    """Text -> words and punctuation marks (``"Don't stop!"`` -> ``["don't", "stop", "!"]`` with ``lower``).

    ``detokenize`` joins with spaces and removes those before closing punctuation: it restores ordinary prose,
    not the exact spacing of the input.
    """

    lower: bool = True

    def tokenize(self, text: str) -> list[str]:
        return _WORD_RE.findall(text.lower() if self.lower else text)

    def detokenize(self, tokens: Sequence[str]) -> str:
        return _SPACE_AFTER_RE.sub(r"\1", _SPACE_BEFORE_RE.sub(r"\1", " ".join(tokens)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "word", "lower": self.lower}


Tokenizer = CharTokenizer | WordTokenizer
_TOKENIZERS = {"char": CharTokenizer, "word": WordTokenizer}


def tokenizer_from_dict(state: dict[str, Any]) -> Tokenizer:
    """The inverse of ``tokenizer.to_dict()``."""
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind not in _TOKENIZERS:
        raise InputError(f"expected a tokenizer kind in {sorted(_TOKENIZERS)}, got {kind!r}")
    return _TOKENIZERS[kind](lower=bool(state.get("lower", False)))


class Vocab:
    """Token <-> id mapping with ``<unk>`` (and optionally ``<pad>`` = 0), carrying its tokeniser.

    Build with :meth:`build`; ``len(vocab)`` counts the special tokens.
    """

    def __init__(self, tokens: Sequence[str], tokenizer: Tokenizer, *, pad: bool = False) -> None:
        specials = [PAD, UNK] if pad else [UNK]
        if any(t in (PAD, UNK) for t in tokens):
            raise InputError(f"vocabulary tokens must not include the special tokens {PAD}, {UNK}")
        self.tokens: list[str] = specials + list(tokens)
        if len(set(self.tokens)) != len(self.tokens):
            raise InputError("vocabulary tokens must be unique")
        self.tokenizer = tokenizer
        self.pad_id: int | None = 0 if pad else None
        self.unk_id: int = self.tokens.index(UNK)
        self._ids = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(
        cls,
        texts: str | Iterable[str],
        tokenizer: Tokenizer,
        *,
        max_size: int | None = None,
        min_freq: int = 1,
        pad: bool = False,
    ) -> Vocab:
        """Vocabulary of the tokens in ``texts`` (the training split only!).

        Args:
            texts: one text (a corpus) or an iterable of texts (documents).
            tokenizer: :class:`CharTokenizer` or :class:`WordTokenizer`.
            max_size: at most this many ids in all, special tokens included (the most frequent tokens win).
            min_freq: tokens seen fewer times are left out (they will encode as ``<unk>``).
            pad: add ``<pad>`` as id 0 (for padded batches of classification examples).
        """
        if min_freq < 1:
            raise InputError(f"min_freq must be at least 1, got {min_freq}")
        n_special = 2 if pad else 1
        if max_size is not None and max_size <= n_special:
            raise InputError(f"max_size must exceed the {n_special} special token(s), got {max_size}")
        counts: Counter[str] = Counter()
        for text in [texts] if isinstance(texts, str) else texts:
            counts.update(tokenizer.tokenize(text))
        for special in (PAD, UNK):
            counts.pop(special, None)
        ranked = sorted((t for t, c in counts.items() if c >= min_freq), key=lambda t: (-counts[t], t))
        if max_size is not None:
            ranked = ranked[: max_size - n_special]
        if not ranked:
            raise InputError(
                f"the training text gives an empty vocabulary ({len(counts)} distinct tokens, min_freq {min_freq})"
            )
        return cls(ranked, tokenizer, pad=pad)

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: object) -> bool:
        return token in self._ids

    def id_of(self, token: str) -> int:
        """The id of ``token``, ``unk_id`` if it is not in the vocabulary."""
        return self._ids.get(token, self.unk_id)

    def encode_tokens(self, tokens: Sequence[str]) -> np.ndarray:
        """``[t_1..t_L]`` -> ``(L,) int64`` ids; unknown tokens -> ``unk_id``."""
        return np.fromiter((self._ids.get(t, self.unk_id) for t in tokens), dtype=np.int64, count=len(tokens))

    def decode_tokens(self, ids: Iterable[int]) -> list[str]:
        """``(L,)`` ids -> tokens; ``<pad>`` ids are dropped; an id out of range raises InputError."""
        out = []
        for i in ids.tolist() if hasattr(ids, "tolist") else list(ids):
            if not 0 <= i < len(self.tokens):
                raise InputError(f"token id {i} out of range for a vocabulary of {len(self.tokens)}")
            if i != self.pad_id:
                out.append(self.tokens[i])
        return out

    def encode(self, text: str) -> np.ndarray:
        """``text`` -> ``(L,) int64`` ids (tokenised with this vocabulary's tokeniser)."""
        return self.encode_tokens(self.tokenizer.tokenize(text))

    def encode_report(self, text: str) -> tuple[np.ndarray, list[str]]:
        """``(ids (L,) int64, unknown)``: ``unknown`` lists the distinct tokens of ``text`` that mapped to
        ``<unk>``, in order of first appearance, so a caller can warn (e.g. about characters of a prompt)."""
        tokens = self.tokenizer.tokenize(text)
        unknown = list(dict.fromkeys(t for t in tokens if t not in self._ids))
        return self.encode_tokens(tokens), unknown

    def decode(self, ids: Iterable[int]) -> str:
        """``(L,)`` ids -> text (``<pad>`` dropped; ``<unk>`` kept as the string ``"<unk>"``)."""
        return self.tokenizer.detokenize(self.decode_tokens(ids))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: ``{"tokenizer": {...}, "pad": bool, "tokens": [...]}`` (tokens without specials)."""
        n_special = 1 if self.pad_id is None else 2
        return {
            "format": "rnnlab.vocab/1",
            "tokenizer": self.tokenizer.to_dict(),
            "pad": self.pad_id is not None,
            "tokens": self.tokens[n_special:],
        }

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Vocab:
        if not isinstance(state, dict) or state.get("format") != "rnnlab.vocab/1" or "tokens" not in state:
            raise InputError("expected a vocabulary saved by rnnlab (format 'rnnlab.vocab/1')")
        return cls(state["tokens"], tokenizer_from_dict(state.get("tokenizer", {})), pad=bool(state.get("pad")))

    def save(self, path: str | Path) -> None:
        """Write the vocabulary (with its tokeniser) as JSON to ``path``."""
        Path(path).write_text(json.dumps(self.to_dict(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        return cls.from_dict(read_json(path))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, tokenizer={self.tokenizer!r}, pad={self.pad_id is not None})"
