"""Fraud detection and other event-sequence classification from one transactions table.

Data (:mod:`rnnlab.data.events`): the user's table (``--data transactions.csv --entity-column card --time-column
ts --label-column is_fraud --numeric-columns amount --categorical-columns category,country``) or, without
``--data``, a **synthetic** card-transactions table (:func:`~rnnlab.data.events.synthetic_transactions`, for
demos and tests; no real table fit to ship was found in a package). Each entity's events in time order form one
sequence; the split is by time (train on the first 70% of the time range, validate on the next 15%, test on the
last 15%), and a sequence of split ``s`` holds the entity's events up to its last event of ``s``.

Labels: ``--label-level event`` (default; one 0/1 label per event, predicted at every step from the events so
far: the layer is causal) or ``entity`` (one label per entity, constant over its events; the entity belongs to the
split of its last event, and is predicted after its whole sequence).

Model: numeric features (standardised on training events) and embedded categorical codes, concatenated, feed the
recurrent layer; a linear head gives one logit per event (or per entity). Imbalance: the loss weighs the positive
class by ``negatives / positives`` of the training labels (``pos_weight`` of the binary cross-entropy).

Metrics (on the events of the split, or its entities): ``pr_auc`` (average precision, the monitor), ``roc_auc``,
``recall_at_fpr`` (the share of positives caught at the threshold that flags ``--fpr`` of the negatives, default
1%), ``bce_nats``. Baseline: gradient boosting (scikit-learn's ``HistGradientBoostingClassifier``, balanced class
weights) on per-event features with running aggregates over each entity's earlier events only
(:func:`~rnnlab.data.events.running_features`), fitted on the training events; per entity it scores the entity's
last event. ``prior_*``: the training positive rate for everyone.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_sequence

from rnnlab.data.events import SPLIT_CODES, EventData, prepare_events, running_features, synthetic_transactions
from rnnlab.errors import InputError
from rnnlab.tasks.base import Batch, MetricSums, TaskOption, register_task
from rnnlab.tasks.heads import EveryStep, LastStep
from rnnlab.tasks.variable import VariableLengthTask

__all__ = ["Events", "ranking_metrics"]

BUILTIN_COLUMNS = {"entity_column": "card", "time_column": "ts", "label_column": "is_fraud",
                   "numeric_columns": "amount", "categorical_columns": "category,country"}


def ranking_metrics(scores: np.ndarray, labels: np.ndarray, fpr: float) -> dict[str, float]:
    """``pr_auc`` (average precision), ``roc_auc`` and ``recall_at_fpr`` of ``scores`` against 0/1 ``labels``;
    NaN where a class is absent."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    labels = np.asarray(labels).astype(int)
    if labels.min() == labels.max():
        return {"pr_auc": float("nan"), "roc_auc": float("nan"), "recall_at_fpr": float("nan")}
    negatives = np.sort(scores[labels == 0])[::-1]
    k = int(np.floor(fpr * len(negatives)))  # negatives allowed above the threshold
    threshold = negatives[k] if k < len(negatives) else -np.inf
    return {
        "pr_auc": float(average_precision_score(labels, scores)),
        "roc_auc": float(roc_auc_score(labels, scores)),
        "recall_at_fpr": float((scores[labels == 1] > threshold).mean()),
    }


class _EventEncoder(nn.Module):
    """``(..., Fn + Fc)`` numeric features then categorical codes (as floats) -> ``(..., Fn + sum of embedding
    sizes)``: each categorical column embedded in ``min(16, ceil(V / 2) + 1)`` dimensions."""

    def __init__(self, n_numeric: int, vocab_sizes: list[int]) -> None:
        super().__init__()
        self.n_numeric = n_numeric
        self.embeddings = nn.ModuleList(nn.Embedding(v, embedding_size(v)) for v in vocab_sizes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        numeric, codes = x[..., : self.n_numeric], x[..., self.n_numeric :].long()
        parts = [numeric] + [emb(codes[..., c]) for c, emb in enumerate(self.embeddings)]
        return torch.cat(parts, dim=-1)


def embedding_size(vocab: int) -> int:
    return min(16, (vocab + 1) // 2 + 1)


class _EventHead(nn.Module):
    """One logit per event ``(T, B)`` (per-event labels) or per sequence ``(B,)`` (per-entity labels)."""

    def __init__(self, features: int, per_event: bool, num_directions: int) -> None:
        super().__init__()
        self.per_event = per_event
        self.linear = EveryStep(features, 1) if per_event else LastStep(features, 1, num_directions)

    def forward(self, output) -> torch.Tensor:
        return self.linear(output).squeeze(-1)


@register_task
class Events(VariableLengthTask):
    """Event-sequence classification (fraud): per-entity sequences, time split, PR-AUC beside gradient boosting."""

    name = "events"
    summary = (
        "fraud / event-sequence classification from one transactions table (--data FILE --entity-column ... "
        "--time-column ... --label-column ...; built-in: SYNTHETIC card transactions); PR-AUC, ROC-AUC, "
        "recall at a fixed FPR beside gradient boosting"
    )
    options = (
        TaskOption("data", str, "", "the user's transactions table (CSV, TSV, JSON Lines); none: the synthetic one"),
        TaskOption("entity_column", str, "", "with --data: the column naming the entity (card, customer)"),
        TaskOption("time_column", str, "", "with --data: the event time (numbers or dates)"),
        TaskOption("label_column", str, "", "with --data: the 0/1 label"),
        TaskOption("numeric_columns", str, "", "with --data: numeric feature columns, comma-separated"),
        TaskOption("categorical_columns", str, "", "with --data: categorical feature columns, comma-separated"),
        TaskOption("label_level", str, "event", "a label per event or per entity", choices=("event", "entity")),
        TaskOption("fpr", float, 0.01, "false-positive rate of the recall_at_fpr metric", min_value=0.0),
        TaskOption("cards", int, 400, "cards of the synthetic table (without --data)", min_value=10),
    )
    monitor = "pr_auc"
    higher_is_better = True
    allows_bidirectional = False  # per-event labels: a prediction may use the past only
    defaults = {
        "hidden_size": 64,
        "epochs": 30,
        "batch_size": 32,
        "lr": 3e-3,
        "clip_norm": 1.0,
        "eval_every": 25,
        "patience": 10,
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        s = self.settings
        if not 0.0 < s["fpr"] < 1.0:
            raise InputError(f"--fpr expects a rate in (0, 1), got {s['fpr']}")
        given = [k for k in BUILTIN_COLUMNS if s[k]]
        if s["data"]:
            for k in ("entity_column", "time_column", "label_column"):
                if not s[k]:
                    raise InputError(f"--data needs --{k.replace('_', '-')}")
            self.columns = {k: s[k] for k in BUILTIN_COLUMNS}
        elif given:
            raise InputError(f"--{given[0].replace('_', '-')} applies to --data FILE; got no --data")
        else:
            self.columns = dict(BUILTIN_COLUMNS)
        self.per_event = s["label_level"] == "event"
        self._events: EventData | None = None
        self._scores: list[tuple[np.ndarray, np.ndarray]] = []  # (scores, labels) since the last finalize
        self._pos_weight: float | None = None
        if s["data"]:
            _ = self.events  # read and check the user's file now, before any run directory exists
        self.input_size = self.events.numeric.shape[1] + sum(embedding_size(v) for v in self.events.vocab_sizes)

    def _names(self, key: str) -> list[str]:
        return [c.strip() for c in self.columns[key].split(",") if c.strip()]

    @property
    def events(self) -> EventData:
        """Every event, sorted, split by time, scaled and coded (read or generated on first use)."""
        if self._events is None:
            table = self.settings["data"] or synthetic_transactions(self.settings["cards"])
            self._events = prepare_events(
                table, entity_column=self.columns["entity_column"], time_column=self.columns["time_column"],
                label_column=self.columns["label_column"], numeric_columns=self._names("numeric_columns"),
                categorical_columns=self._names("categorical_columns"),
                name="synthetic-transactions" if not self.settings["data"] else "events")
            if not self.per_event:
                self._check_entity_labels(self._events)
        return self._events

    def _check_entity_labels(self, data: EventData) -> None:
        for a, b in zip(data.starts[:-1], data.starts[1:], strict=True):
            if data.labels[a:b].min() != data.labels[a:b].max():
                raise InputError(f"--label-level entity needs one label per entity; entity "
                                 f"'{data.raw[self.columns['entity_column']].iloc[a]}' has both 0 and 1")

    # ----------------------------------------------------------------------------------------------- data
    def load_split(self, split: str) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """One example per entity with events in ``split``: its features ``(T_i, F)`` up to its last event of
        ``split``, the labels ``(T_i,)`` and the mask ``(T_i,)`` of the events that count (per entity: the label
        ``(1,)`` and an entity counts in the split of its last event)."""
        data, code = self.events, SPLIT_CODES[split]
        features = np.concatenate([data.numeric, data.categorical.astype(np.float32)], axis=1)  # (N, F)
        examples = []
        for a, b in zip(data.starts[:-1], data.starts[1:], strict=True):
            in_split = np.flatnonzero(data.split[a:b] == code)
            if self.per_event:
                if len(in_split) == 0:
                    continue
                end = a + in_split[-1] + 1  # never read past the last event of the split
                mask = data.split[a:end] == code
                examples.append((torch.from_numpy(features[a:end]), torch.from_numpy(data.labels[a:end]),
                                 torch.from_numpy(mask)))
            elif data.split[b - 1] == code:
                examples.append((torch.from_numpy(features[a:b]), torch.tensor([data.labels[a]]),
                                 torch.ones(1, dtype=torch.bool)))
        if not examples:
            raise InputError(f"the {split} split of {data.name} has no entities")
        return examples

    def example_lengths(self, split: str) -> torch.Tensor:
        return torch.tensor([len(x) for x, _, _ in self.data(split)], dtype=torch.long)

    def collate(self, split: str, indices: torch.Tensor) -> Batch:
        examples = [self.data(split)[i] for i in indices.tolist()]
        lengths = torch.tensor([len(x) for x, _, _ in examples], dtype=torch.long)
        inputs = pack_sequence([x for x, _, _ in examples], enforce_sorted=False)
        if self.per_event:
            T = int(lengths.max())
            targets = torch.zeros(T, len(examples))  # (T, B)
            mask = torch.zeros(T, len(examples), dtype=torch.bool)
            for b, (_, y, m) in enumerate(examples):
                targets[: len(y), b], mask[: len(m), b] = y.float(), m
            return Batch(inputs=inputs, targets=targets, lengths=lengths, mask=mask)
        return Batch(inputs=inputs, targets=torch.cat([y for _, y, _ in examples]).float(), lengths=lengths)

    # ---------------------------------------------------------------------------------------------- model
    def build_encoder(self) -> nn.Module:
        return _EventEncoder(self.events.numeric.shape[1], self.events.vocab_sizes)

    def build_head(self, features: int, num_directions: int) -> nn.Module:
        return _EventHead(features, self.per_event, num_directions)  # (T, B) or (B,) logits

    # ---------------------------------------------------------------------------------- loss and metrics
    @property
    def pos_weight(self) -> float:
        """``negatives / positives`` of the training labels that the loss counts."""
        if self._pos_weight is None:
            labels = torch.cat([y[m] for _, y, m in self.data("train")])
            positives = float(labels.sum())
            self._pos_weight = (len(labels) - positives) / max(positives, 1.0)
        return self._pos_weight

    def _selected(self, outputs: torch.Tensor, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        if batch.mask is None:
            return outputs, batch.targets
        return outputs[batch.mask], batch.targets[batch.mask]

    def loss(self, outputs: torch.Tensor, batch: Batch) -> torch.Tensor:
        logits, targets = self._selected(outputs, batch)
        return F.binary_cross_entropy_with_logits(logits, targets,
                                                  pos_weight=torch.tensor(self.pos_weight, device=logits.device))

    def metric_sums(self, outputs: torch.Tensor, batch: Batch) -> MetricSums:
        """The cross-entropy sums; the scores and labels are kept for :meth:`finalize_metrics`, which ranks them."""
        logits, targets = self._selected(outputs, batch)
        self._scores.append((logits.detach().double().cpu().numpy(), targets.cpu().numpy()))
        bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="sum")
        return {"bce_nats": (bce.item(), targets.numel())}

    def finalize_metrics(self, means: dict[str, float]) -> dict[str, float]:
        """Adds the ranking metrics of every score kept since the last call (one evaluation), and forgets them."""
        scores = np.concatenate([s for s, _ in self._scores]) if self._scores else np.zeros(0)
        labels = np.concatenate([y for _, y in self._scores]) if self._scores else np.zeros(0)
        self._scores = []
        if len(scores) == 0:
            return means
        return {**means, **ranking_metrics(scores, labels, self.settings["fpr"])}

    def baseline(self) -> dict[str, float]:
        """Gradient boosting on running-aggregate features under the plain names; the training positive rate
        for everyone as ``prior_<metric>``."""
        from sklearn.ensemble import HistGradientBoostingClassifier

        data = self.events
        features = running_features(data, self._names("numeric_columns"))  # (N, F), earlier events only
        train, test = data.split == 0, data.split == 2
        if not self.per_event:  # one row per entity: its last event
            last = np.zeros(len(data.entity), dtype=bool)
            last[data.starts[1:] - 1] = True
            train, test = train & last, test & last
        model = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, class_weight="balanced",
                                               random_state=0)
        model.fit(features[train], data.labels[train])
        p = np.clip(model.predict_proba(features[test])[:, 1], 1e-7, 1 - 1e-7)  # (N_test,)
        logits = torch.from_numpy(np.log(p / (1 - p)))
        targets = torch.from_numpy(data.labels[test]).double()
        out = ranking_metrics(logits.numpy(), data.labels[test], self.settings["fpr"])
        out["bce_nats"] = float(F.binary_cross_entropy_with_logits(logits, targets))
        prior = float(data.labels[train].mean())
        out["prior_bce_nats"] = float(F.binary_cross_entropy_with_logits(
            torch.full_like(targets, float(np.log(prior / (1 - prior)))), targets))
        out["prior_pr_auc"] = float(targets.mean())  # a constant score ranks nothing: precision = positive rate
        return out
