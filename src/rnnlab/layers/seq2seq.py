"""``Seq2Seq``: an encoder-decoder with attention (Sutskever et al. 2014; Bahdanau et al. 2015; Luong et al.
2015), trained with teacher forcing, decoded greedily or by length-normalised beam search.

Any rnnlab recurrent layer is the encoder (bidirectional allowed) and any unidirectional one the decoder, which
is stepped one token at a time through the layer's own stepping (calling it on one step with the carried state
equals the full-sequence run, a contract of every layer). One decoding step, for target position ``t``:

.. math::

    \\begin{array}{ll}
    x_t = [E_y\\, y_{t-1};\\ \\tilde h_{t-1}] \\ \\text{(input feeding; } x_t = E_y\\, y_{t-1} \\text{ without)} \\\\
    h_t, s_t = \\mathrm{decoder}(x_t, s_{t-1}) \\\\
    \\alpha_t = \\mathrm{softmax}_{s \\in \\mathrm{mask}}(\\mathrm{score}(h_t, k_s)) \\\\
    c_t = \\sum_s \\alpha_{t,s} k_s \\\\
    \\tilde h_t = \\tanh(W_c [h_t; c_t] + b_c) \\\\
    p(y_t \\mid y_{<t}, x) = \\mathrm{softmax}(W_o \\tilde h_t + b_o)
    \\end{array}

``k_s`` are the encoder's outputs (both directions concatenated), ``score`` additive or multiplicative
(:mod:`rnnlab.layers.attention`), ``y_0`` the begin-of-sentence id, ``\\tilde h_0 = 0``. The decoder starts from
``h_0 = \\tanh(W_b \\bar k + b_b)`` in every layer (``\\bar k`` the mean of the encoder outputs over the real source
positions; the decoder's other state tensors start at 0). Without input feeding the teacher-forced pass runs the
decoder over the whole target in one call and attends for all steps at once; with it the pass steps, and the
attentional vector of step ``t`` enters step ``t+1`` (Luong et al.'s input feeding, which carries attention
decisions forward as Bahdanau et al.'s recurrence on the context does).

Shape legend: ``S`` source steps, ``T`` target steps, ``B`` batch, ``E`` embedding size, ``F`` encoder output size
(``D*H_enc``), ``P`` decoder output size, ``V`` target vocabulary, ``K`` beam size. Token tensors are time-major
``(S, B)`` / ``(T, B)`` int64, padded with ``pad_id``; lengths ``(B,)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnlab.cells.base import check_positive_int, check_rate
from rnnlab.errors import InputError
from rnnlab.layers.attention import build_attention, lengths_to_mask
from rnnlab.layers.recurrent import Recurrent

__all__ = ["EncoderMemory", "Seq2Seq"]


@dataclass
class EncoderMemory:
    """What decoding reads from an encoded batch: ``keys`` ``(B, S, F)``, ``projected_keys`` (the attention's key
    projection), ``mask`` ``(B, S)`` bool, ``initial_h`` ``(L_dec, B, P)``."""

    keys: Tensor
    projected_keys: Tensor
    mask: Tensor
    initial_h: Tensor

    def index_select(self, index: Tensor) -> EncoderMemory:
        """The memory of the batch rows ``index`` ``(B',)`` (beams reordered or repeated)."""
        return EncoderMemory(self.keys.index_select(0, index), self.projected_keys.index_select(0, index),
                             self.mask.index_select(0, index), self.initial_h.index_select(1, index))


def _select_rows(state: Any, rows: Tensor) -> Any:
    """A decoder state (a tensor or a tuple of ``(L, B, n)`` tensors) for the batch rows ``rows``."""
    if isinstance(state, Tensor):
        return state.index_select(1, rows)
    return tuple(s.index_select(1, rows) for s in state)


class Seq2Seq(nn.Module):
    """Encoder-decoder with attention over token sequences (see the module docstring for the equations).

    Args:
        encoder: an rnnlab recurrent layer (``rnnlab.LSTM``, ``GRU``, ``RNN``, ... or :func:`rnnlab.build_layer`),
            time-major, ``input_size == embedding_size``; bidirectional allowed.
        decoder: a unidirectional rnnlab recurrent layer, time-major, ``input_size == embedding_size + P`` with
            input feeding, else ``embedding_size`` (``P`` its output size).
        source_vocab_size, target_vocab_size: ids ``0..V-1``; ``pad_id``, ``bos_id``, ``eos_id`` are target (and
            source, for ``pad_id``) ids.
        embedding_size: ``E`` of both embeddings.
        attention: ``"additive"`` or ``"multiplicative"``; ``attention_size`` the additive score's ``A``.
        input_feeding: feed ``\\tilde h_{t-1}`` into step ``t``.
        dropout: on the embeddings and on ``\\tilde h_t`` before the output layer (training only).

    Parameters beyond the layers': ``source_embedding.weight`` ``(V_src, E)``, ``target_embedding.weight``
    ``(V, E)``, ``bridge`` ``(L_dec*P, F)``, ``attention.*``, ``combine`` ``(P, P+F)``, ``output`` ``(V, P)``.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, source_vocab_size: int, target_vocab_size: int, *,
                 embedding_size: int, attention: str = "additive", attention_size: int | None = None,
                 input_feeding: bool = True, pad_id: int = 0, bos_id: int = 1, eos_id: int = 2,
                 dropout: float = 0.0) -> None:
        super().__init__()
        for name, layer in (("encoder", encoder), ("decoder", decoder)):
            if not isinstance(layer, Recurrent):
                raise InputError(f"{name} must be an rnnlab recurrent layer, got {type(layer).__name__}")
            if layer.batch_first:
                raise InputError(f"{name} must be time-major (batch_first=False)")
        if decoder.bidirectional:
            raise InputError("the decoder must be unidirectional: it reads the target one token at a time")
        for name, value in (("source_vocab_size", source_vocab_size), ("target_vocab_size", target_vocab_size),
                            ("embedding_size", embedding_size)):
            check_positive_int(name, value)
        for name, value in (("pad_id", pad_id), ("bos_id", bos_id), ("eos_id", eos_id)):
            if not 0 <= value < target_vocab_size:
                raise InputError(f"{name} must be a target id in [0, {target_vocab_size}), got {value}")
        if pad_id >= source_vocab_size:
            raise InputError(f"pad_id must be a source id in [0, {source_vocab_size}), got {pad_id}")
        features = encoder.num_directions * encoder.output_size  # F
        P = decoder.output_size
        self.input_feeding = bool(input_feeding)
        expected = embedding_size + (P if self.input_feeding else 0)
        if encoder.input_size != embedding_size:
            raise InputError(f"expected an encoder with input_size {embedding_size} (the embedding size), got "
                             f"{encoder.input_size}")
        if decoder.input_size != expected:
            what = f"embedding_size + decoder output size = {embedding_size} + {P}" if self.input_feeding else \
                "the embedding size"
            raise InputError(f"expected a decoder with input_size {expected} ({what}), got {decoder.input_size}")
        self.encoder, self.decoder = encoder, decoder
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.dropout = nn.Dropout(check_rate("dropout", dropout))
        self.source_embedding = nn.Embedding(source_vocab_size, embedding_size, padding_idx=pad_id)
        self.target_embedding = nn.Embedding(target_vocab_size, embedding_size, padding_idx=pad_id)
        self.bridge = nn.Linear(features, decoder.num_layers * P)
        self.attention = build_attention(attention, P, features, attention_size)
        self.combine = nn.Linear(P + features, P)
        self.output = nn.Linear(P, target_vocab_size)
        self.attention_kind = attention

    # ------------------------------------------------------------------------------------------------ encode
    def encode(self, source: Tensor, source_lengths: Tensor) -> EncoderMemory:
        """Run the encoder over ``source`` ``(S, B)`` with ``source_lengths`` ``(B,)`` (each >= 1)."""
        if source.dim() != 2 or source.dtype != torch.long:
            raise InputError(f"expected source ids (S, B) int64, got {source.dtype} {tuple(source.shape)}")
        lengths = torch.as_tensor(source_lengths, dtype=torch.long).cpu()
        if tuple(lengths.shape) != (source.shape[1],):
            raise InputError(f"expected source_lengths of shape ({source.shape[1]},), got {tuple(lengths.shape)}")
        if int(lengths.min()) < 1 or int(lengths.max()) > source.shape[0]:
            raise InputError(f"source lengths must be in [1, {source.shape[0]}], got {lengths.tolist()}")
        x = self.dropout(self.source_embedding(source))  # (S, B, E)
        packed = pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, _ = self.encoder(packed)
        keys, _ = pad_packed_sequence(out, total_length=source.shape[0])  # (S, B, F)
        keys = keys.transpose(0, 1)  # (B, S, F)
        mask = lengths_to_mask(lengths.to(keys.device), source.shape[0])  # (B, S)
        mean = (keys * mask.unsqueeze(-1)).sum(1) / lengths.to(keys.device, keys.dtype).unsqueeze(1)  # (B, F)
        L, P = self.decoder.num_layers, self.decoder.output_size
        initial_h = torch.tanh(self.bridge(mean)).view(-1, L, P).transpose(0, 1).contiguous()  # (L, B, P)
        return EncoderMemory(keys, self.attention.project_keys(keys), mask, initial_h)

    def initial_state(self, memory: EncoderMemory) -> Any:
        """The decoder's state before the first target step: ``h_0`` from the bridge, other tensors 0."""
        B = memory.keys.shape[0]
        sizes = self.decoder.state_layout()
        h = memory.initial_h
        rest = [h.new_zeros(self.decoder.num_layers, B, n) for n in sizes[1:]]
        return h if not rest else (h, *rest)

    # ------------------------------------------------------------------------------------------------ decode
    def _attend(self, h: Tensor, memory: EncoderMemory) -> tuple[Tensor, Tensor]:
        """``h`` ``(B, T, P)`` -> attentional vectors ``\\tilde h`` ``(B, T, P)`` and weights ``(B, T, S)``."""
        context, weights = self.attention(h, memory.keys, memory.mask, projected_keys=memory.projected_keys)
        return torch.tanh(self.combine(torch.cat([h, context], dim=-1))), weights

    def start(self, memory: EncoderMemory) -> tuple[Any, Tensor | None]:
        """The decoding carry before step 1: ``(decoder state, \\tilde h_0 = 0 or None)``."""
        B = memory.keys.shape[0]
        feed = memory.keys.new_zeros(B, self.decoder.output_size) if self.input_feeding else None
        return self.initial_state(memory), feed

    def step(self, previous: Tensor, carry: tuple[Any, Tensor | None], memory: EncoderMemory
             ) -> tuple[Tensor, tuple[Any, Tensor | None], Tensor]:
        """One decoding step from the previous tokens ``previous`` ``(B,)``.

        Returns ``(log_probs (B, V), carry, attention weights (B, S))``.
        """
        state, feed = carry
        x = self.dropout(self.target_embedding(previous))  # (B, E)
        if feed is not None:
            x = torch.cat([x, feed], dim=-1)  # (B, E + P)
        h, state = self.decoder(x.unsqueeze(0), state)  # (1, B, P)
        tilde, weights = self._attend(h.transpose(0, 1), memory)  # (B, 1, P), (B, 1, S)
        tilde = tilde.squeeze(1)
        logits = self.output(self.dropout(tilde))  # (B, V)
        return logits.log_softmax(-1), (state, tilde if self.input_feeding else None), weights.squeeze(1)

    def decode(self, memory: EncoderMemory, target_inputs: Tensor) -> tuple[Tensor, Tensor]:
        """Teacher-forced decoding of ``target_inputs`` ``(T, B)`` (``y_0 = bos`` first): logits ``(T, B, V)``
        and attention weights ``(T, B, S)``."""
        if target_inputs.dim() != 2 or target_inputs.dtype != torch.long:
            raise InputError(f"expected target ids (T, B) int64, got {target_inputs.dtype} "
                             f"{tuple(target_inputs.shape)}")
        if target_inputs.shape[1] != memory.keys.shape[0]:
            raise InputError(f"expected {memory.keys.shape[0]} target sequences, got {target_inputs.shape[1]}")
        state, feed = self.start(memory)
        x = self.dropout(self.target_embedding(target_inputs))  # (T, B, E)
        if not self.input_feeding:
            h, _ = self.decoder(x, state)  # (T, B, P): the whole target in one call
            tilde, weights = self._attend(h.transpose(0, 1), memory)  # (B, T, P), (B, T, S)
        else:
            tildes, all_weights = [], []
            for t in range(x.shape[0]):
                h, state = self.decoder(torch.cat([x[t], feed], dim=-1).unsqueeze(0), state)  # (1, B, P)
                tilde_t, weights_t = self._attend(h.transpose(0, 1), memory)  # (B, 1, P), (B, 1, S)
                feed = tilde_t.squeeze(1)
                tildes.append(tilde_t)
                all_weights.append(weights_t)
            tilde, weights = torch.cat(tildes, dim=1), torch.cat(all_weights, dim=1)  # (B, T, P), (B, T, S)
        # time-major before the output layer: transposing (B, T, P) is cheaper than copying (B, T, V) logits
        logits = self.output(self.dropout(tilde.transpose(0, 1)))  # (T, B, V)
        return logits, weights.transpose(0, 1)

    def forward(self, source: Tensor, source_lengths: Tensor, target_inputs: Tensor, *,
                return_attention: bool = False):
        """Teacher forcing: logits ``(T, B, V)`` of ``y_1..y_T`` given ``target_inputs = [bos, y_1..y_{T-1}]``
        ``(T, B)``; with ``return_attention`` also the weights ``(T, B, S)``."""
        logits, weights = self.decode(self.encode(source, source_lengths), target_inputs)
        return (logits, weights) if return_attention else logits

    @torch.no_grad()
    def align(self, source: Tensor, source_lengths: Tensor, hypotheses: list[list[int]]) -> list[list[int]]:
        """The source position each token of each hypothesis attended to most: for hypothesis ``y`` of source
        ``b`` (ids without ``bos``/``eos``, as :meth:`greedy` and :meth:`beam_search` return them), ``a_t =
        argmax_s \\alpha_{t,s}`` of the teacher-forced pass of ``[bos, y]`` (in the model's current mode:
        call ``eval()`` first for the decoding weights). Luong et al. (2015)'s unknown-word replacement reads
        it: an ``<unk>`` output is replaced by the source word it attended to.

        Returns one list of ``len(y)`` positions in ``[0, source_lengths[b])`` per hypothesis.
        """
        B = source.shape[1]
        if len(hypotheses) != B:
            raise InputError(f"expected {B} hypotheses (one per source), got {len(hypotheses)}")
        T = max([len(h) for h in hypotheses] + [1])
        target_inputs = torch.full((T, B), self.pad_id, dtype=torch.long, device=source.device)
        target_inputs[0] = self.bos_id
        for b, words in enumerate(hypotheses):
            if len(words) > 1:
                target_inputs[1:len(words), b] = torch.as_tensor(words[:-1], dtype=torch.long)
        _, weights = self.decode(self.encode(source, source_lengths), target_inputs)  # (T, B, S)
        best = weights.argmax(-1)  # (T, B): padded source positions have weight 0
        return [best[:len(words), b].tolist() for b, words in enumerate(hypotheses)]

    # ------------------------------------------------------------------------------------------------ search
    @torch.no_grad()
    def greedy(self, source: Tensor, source_lengths: Tensor, max_len: int) -> list[list[int]]:
        """The most probable next token at every step, until ``eos`` or ``max_len`` tokens: one id list per
        source (``eos`` excluded)."""
        check_positive_int("max_len", max_len)
        memory = self.encode(source, source_lengths)
        B = source.shape[1]
        carry = self.start(memory)
        previous = torch.full((B,), self.bos_id, dtype=torch.long, device=source.device)
        outputs: list[list[int]] = [[] for _ in range(B)]
        done = [False] * B
        for _ in range(max_len):
            log_probs, carry, _ = self.step(previous, carry, memory)
            previous = log_probs.argmax(-1)  # (B,)
            for b, token in enumerate(previous.tolist()):
                if not done[b]:
                    if token == self.eos_id:
                        done[b] = True
                    else:
                        outputs[b].append(token)
            if all(done):
                break
        return outputs

    @torch.no_grad()
    def beam_search(self, source: Tensor, source_lengths: Tensor, max_len: int, beam_size: int = 5,
                    length_penalty: float = 1.0) -> list[list[int]]:
        """Length-normalised beam search: one id list per source (``eos`` excluded).

        Every step extends each of the ``K`` live hypotheses by every token and keeps the ``K`` best
        continuations by total log-probability; a continuation by ``eos`` among the best ``K`` ends a hypothesis.
        A source is done when ``K`` hypotheses have ended (those still live at ``max_len`` tokens end there). The
        answer is the ended hypothesis with the best normalised score :math:`\\log p(y|x) / |y|^\\alpha`, ``|y|``
        counting ``eos``, ``\\alpha`` = ``length_penalty`` (0: raw log-probability, which favours short
        outputs). With ``beam_size=1`` this is greedy decoding.
        """
        check_positive_int("max_len", max_len)
        if not isinstance(beam_size, int) or isinstance(beam_size, bool) or beam_size < 1:
            raise InputError(f"beam_size must be a positive int, got {beam_size!r}")
        K = beam_size
        memory = self.encode(source, source_lengths)
        B = source.shape[1]
        device = source.device
        memory = memory.index_select(torch.arange(B, device=device).repeat_interleave(K))  # (B*K) rows
        carry = self.start(memory)
        tokens = torch.full((B * K, 1), self.bos_id, dtype=torch.long, device=device)
        scores = torch.full((B, K), float("-inf"), device=device)
        scores[:, 0] = 0.0  # one live hypothesis at first
        ended: list[list[tuple[float, list[int]]]] = [[] for _ in range(B)]
        done = [False] * B
        for t in range(1, max_len + 1):
            log_probs, carry, _ = self.step(tokens[:, -1], carry, memory)  # (B*K, V)
            V = log_probs.shape[-1]
            candidates = (scores.unsqueeze(-1) + log_probs.view(B, K, V)).view(B, K * V)
            top_scores, top_index = candidates.topk(min(2 * K, K * V), dim=1)  # (B, 2K)
            beam, token = top_index // V, top_index % V
            is_eos = token == self.eos_id
            for b, j in (is_eos[:, :K] & torch.isfinite(top_scores[:, :K])).nonzero().tolist():
                if not done[b]:
                    words = tokens[b * K + int(beam[b, j]), 1:].tolist()
                    ended[b].append((float(top_scores[b, j]) / t ** length_penalty, words))
            # the K best continuations that are not eos live on
            order = (is_eos.long() * top_index.shape[1] + torch.arange(top_index.shape[1], device=device)).argsort(1)
            keep = order[:, :K]  # (B, K)
            scores = top_scores.gather(1, keep)
            rows = (torch.arange(B, device=device).unsqueeze(1) * K + beam.gather(1, keep)).view(-1)  # (B*K,)
            tokens = torch.cat([tokens.index_select(0, rows), token.gather(1, keep).view(-1, 1)], dim=1)
            state, feed = carry
            carry = (_select_rows(state, rows),
                     None if feed is None else feed.index_select(0, rows))
            done = [d or len(e) >= K for d, e in zip(done, ended, strict=True)]
            if all(done):
                break
        results = []
        for b in range(B):
            hypotheses = list(ended[b])
            if not done[b]:  # still live at max_len: they end there, without eos
                for k in range(K):
                    if torch.isfinite(scores[b, k]):
                        hypotheses.append((float(scores[b, k]) / max_len ** length_penalty,
                                           tokens[b * K + k, 1:].tolist()))
            results.append(max(hypotheses, key=lambda h: h[0])[1])
        return results
