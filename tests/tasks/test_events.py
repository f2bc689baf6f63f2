"""The events task: time split without future leakage, train-only scaling and vocabularies, running aggregates
from earlier events only, imbalance, ranking metrics, bad inputs, and a short learning run."""

import numpy as np
import pandas as pd
import pytest
import torch

from rnnlab.data.events import prepare_events, running_features, synthetic_transactions
from rnnlab.errors import InputError, InputWarning
from rnnlab.tasks.events import Events, ranking_metrics
from rnnlab.train import Trainer, build_config
from tests.cli_helpers import assert_one_line_error, run_cli

COLUMNS = dict(entity_column="card", time_column="ts", label_column="is_fraud", numeric_columns=["amount"],
               categorical_columns=["category", "country"])


@pytest.fixture(scope="module")
def table():
    return synthetic_transactions(60, days=60, seed=3)


def test_synthetic_table_is_deterministic_and_imbalanced(table):
    assert table.equals(synthetic_transactions(60, days=60, seed=3))
    assert list(table.columns) == ["card", "ts", "amount", "category", "country", "is_fraud"]
    assert 0.001 < table["is_fraud"].mean() < 0.05


def test_split_by_time_and_scaling_on_training_events_only(table):
    data = prepare_events(table, **COLUMNS)
    order = np.lexsort((data.time, data.entity))
    assert np.array_equal(order, np.arange(len(order)))  # sorted by entity, then time
    assert data.time[data.split == 0].max() < data.time[data.split == 1].min()
    assert data.time[data.split == 1].max() < data.time[data.split == 2].min()
    amount = data.raw["amount"].to_numpy(float)
    train = data.split == 0
    scaled = (amount - amount[train].mean()) / amount[train].std()
    np.testing.assert_allclose(data.numeric[:, 0], scaled, rtol=1e-5, atol=1e-5)
    categories = set(data.raw["category"][train])
    unseen = ~data.raw["category"].isin(categories).to_numpy()
    assert (data.categorical[unseen, 0] == 0).all() and (data.categorical[~unseen, 0] > 0).all()


def test_sequences_never_reach_past_their_split(table):
    task = Events(cards=60)
    task._events = prepare_events(table, **COLUMNS)
    data = task.events
    for split, code in (("train", 0), ("valid", 1), ("test", 2)):
        for x, y, mask in task.data(split):
            assert mask[-1] and len(x) == len(y) == len(mask)  # each sequence ends at an event of its split
        counted = sum(int(m.sum()) for _, _, m in task.data(split))
        assert counted == int((data.split == code).sum())  # every event of the split is scored once
    batch = task.collate("test", torch.arange(3))
    assert batch.mask.shape == batch.targets.shape == (int(batch.lengths.max()), 3)


def test_running_features_use_earlier_events_only(table):
    data = prepare_events(table, **COLUMNS)
    features = running_features(data, ["amount"])
    changed = data.raw.copy()
    last = data.starts[1:] - 1  # every entity's last event
    changed.loc[last, "amount"] = 1e6  # a change to an event may change its own features, never earlier ones
    data2 = prepare_events(changed, **COLUMNS)
    features2 = running_features(data2, ["amount"])
    earlier = np.ones(len(features), dtype=bool)
    earlier[last] = False
    np.testing.assert_allclose(features[earlier][:, 1:], features2[earlier][:, 1:])


def test_ranking_metrics():
    labels = np.array([0, 0, 0, 0, 1, 1])
    perfect = ranking_metrics(np.array([0.1, 0.2, 0.3, 0.4, 0.8, 0.9]), labels, 0.25)
    assert perfect == {"pr_auc": 1.0, "roc_auc": 1.0, "recall_at_fpr": 1.0}
    mixed = ranking_metrics(np.array([0.1, 0.2, 0.3, 0.85, 0.8, 0.9]), labels, 0.2)
    assert mixed["recall_at_fpr"] == 0.5 and mixed["roc_auc"] == pytest.approx(7 / 8)


def _file(write, table, change=None):
    frame = table.copy()
    if change is not None:
        frame = change(frame)
    return write("t.csv", frame.to_csv(index=False))


@pytest.mark.parametrize("change, message", [
    (lambda f: f.assign(is_fraud=0), "has one class only"),
    (lambda f: f.assign(is_fraud=f["is_fraud"].astype(object).where(f.index != 5, "")), "is empty at data row 6"),
    (lambda f: f.assign(amount=f["amount"].astype(object).where(f.index != 9, "ten")),
     "column 'amount' of t.csv must be numeric; found 'ten' at data row 10"),
    (lambda f: f.assign(is_fraud=f["is_fraud"].astype(object).where(f.index != 2, "maybe")), "must hold 0/1 labels"),
])
def test_bad_files_are_one_line_errors(write, table, capsys, tmp_path, change, message):
    path = _file(write, table, change)
    code, _, err = run_cli(capsys, "train", "events", "--data", path, "--entity-column", "card", "--time-column",
                           "ts", "--label-column", "is_fraud", "--numeric-columns", "amount", "--out", tmp_path / "r")
    assert_one_line_error(code, err, message)


def test_out_of_order_events_are_sorted_with_a_warning(table):
    shuffled = pd.concat([table.iloc[1:2], table.iloc[:1], table.iloc[2:]], ignore_index=True)
    shuffled.loc[0, "card"] = shuffled.loc[1, "card"]  # one entity's events out of time order in the file
    with pytest.warns(InputWarning, match="1 entity .* out of time order"):
        prepare_events(shuffled, **COLUMNS)
    with pytest.raises(InputError, match="one label per entity"):
        Events(cards=60, label_level="entity")


def test_a_short_run_learns(table, monkeypatch):
    monkeypatch.setattr("rnnlab.tasks.events.synthetic_transactions", lambda cards: table)
    config = build_config("events", {"cards": 60}, {"hidden_size": 16, "steps": 60, "eval_every": 60,
                                                    "batch_size": 16, "patience": None})
    trainer = Trainer(config)
    assert trainer.task.pos_weight > 20  # the positive class weighs as much as the negatives in the loss
    results = trainer.fit()
    metrics, baseline = results["metrics"], results["baseline"]
    assert metrics["test_pr_auc"] > 3 * baseline["test_prior_pr_auc"]
    assert metrics["test_roc_auc"] > 0.8 and 0 <= metrics["test_recall_at_fpr"] <= 1
    assert baseline["test_pr_auc"] > baseline["test_prior_pr_auc"]
