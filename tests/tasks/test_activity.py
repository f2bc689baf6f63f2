"""The activity task: archive .ts files and the user's long table, splits over whole sequences, train-only
scaling, DTW 1-NN, the bad inputs of the issue, and a short learning run."""

import numpy as np
import pytest
import torch
from torch.nn.utils.rnn import pad_packed_sequence

from rnnlab.data.sensors import load_sensor_set, read_sequence_table, read_ts
from rnnlab.errors import InputError, InputWarning
from rnnlab.tasks.activity import Activity, dtw_distances, summary_features
from rnnlab.train import Trainer, build_config
from tests.cli_helpers import assert_one_line_error, run_cli


def test_read_ts_variable_lengths_and_missing(write):
    path = write("x.ts", "# comment\n@problemName x\n@univariate false\n@data\n"
                         "1,2,3:4,5,6:a\n7,?,9,10:1,2,3,4:b\n")
    sequences, labels = read_ts(path)
    assert labels == ["a", "b"]
    assert sequences[0].shape == (3, 2) and sequences[1].shape == (4, 2)
    assert np.isnan(sequences[1][1, 0]) and sequences[1][3, 1] == 4
    with pytest.raises(InputError, match="no @data"):
        read_ts(write("y.ts", "1,2:a\n"))


def test_archive_set_keeps_the_archive_test_split_and_scales_on_train_only():
    data = load_sensor_set("BasicMotions")
    assert [len(data.train), len(data.valid), len(data.test)] == [32, 8, 40]
    assert data.classes == ["Badminton", "Running", "Standing", "Walking"]
    assert np.bincount(data.valid.labels).tolist() == [2, 2, 2, 2]  # stratified fifth of the archive's train
    pooled = np.concatenate(data.train.inputs)  # (steps, 6)
    np.testing.assert_allclose(pooled.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(pooled.std(0), 1, atol=1e-4)
    test_mean = np.concatenate(data.test.inputs).mean(0)
    assert np.abs(test_mean).max() > 1e-3  # the test steps were not used to fit the scaler


def _table(rows):
    return "id,t,ax,ay,label\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"


def _sequences(n=20, length=5, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        label = "walk" if k % 2 else "run"
        for t in range(length):
            rows.append((f"s{k}", t, round(rng.normal(3 if k % 2 else -3), 4), round(rng.normal(), 4), label))
    return rows


def test_user_table_splits_whole_sequences_and_fits_the_scaler_on_train_only(write):
    rows = _sequences()
    data = read_sequence_table(write("a.csv", _table(rows)), id_column="id", label_column="label",
                               channel_columns=["ax", "ay"], time_column="t")
    assert [len(data.train), len(data.valid), len(data.test)] == [12, 4, 4]  # per class: 2 valid, 2 test
    assert all(len(x) == 5 for x in data.train.inputs + data.valid.inputs + data.test.inputs)
    raw = {f"s{k}": np.array([[r[2], r[3]] for r in rows if r[0] == f"s{k}"]) for k in range(20)}
    train_raw = [x for x in raw.values() if any(np.allclose(data.scaler.transform(x), s) for s in data.train.inputs)]
    assert len(train_raw) == 12  # every training sequence is one whole raw sequence
    np.testing.assert_allclose(data.scaler.mean, np.concatenate(train_raw).mean(0))


def test_user_table_sorts_steps_by_time_with_a_warning(write):
    rows = _sequences(n=10)
    rows[0], rows[1] = rows[1], rows[0]  # sequence s0: steps 1 then 0
    with pytest.warns(InputWarning, match="1 sequence.*out of order.*sorted"):
        read_sequence_table(write("a.csv", _table(rows)), id_column="id", label_column="label",
                            channel_columns=["ax", "ay"], time_column="t")


@pytest.mark.parametrize("change, message", [
    (lambda rows: [r for r in rows if not (r[0] == "s3" and r[1] > 0)], "sequence 's3' of a.csv has 1 time step"),
    (lambda rows: [(*r[:4], "run") for r in rows], "one class only ('run')"),
    (lambda rows: [(*r[:4], "" if i == 7 else r[4]) for i, r in enumerate(rows)], "is empty at data row 8"),
    (lambda rows: [(*r[:4], "walk" if i == 1 else r[4]) for i, r in enumerate(rows)], "has more than one label"),
    (lambda rows: [(*r[:2], "high" if i == 4 else r[2], *r[3:]) for i, r in enumerate(rows)],
     "column 'ax' of a.csv must be numeric; found 'high' at data row 5"),
])
def test_user_table_bad_input(write, change, message):
    path = write("a.csv", _table(change(_sequences(n=10))))
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_sequence_table(path, id_column="id", label_column="label", channel_columns=["ax", "ay"])


def test_cli_bad_input_is_one_line(write, capsys, tmp_path):
    rows = [(*r[:4], "run") for r in _sequences(n=10)]
    code, _, err = run_cli(capsys, "train", "activity", "--data", write("a.csv", _table(rows)), "--id-column", "id",
                           "--label-column", "label", "--out", tmp_path / "run")
    assert_one_line_error(code, err, "one class only")
    assert not (tmp_path / "run").exists()
    code, _, err = run_cli(capsys, "train", "activity", "--data", tmp_path / "a.csv", "--out", tmp_path / "run")
    assert_one_line_error(code, err, "--data needs --id-column and --label-column")


def _naive_dtw(a, b):
    D = np.full((len(a) + 1, len(b) + 1), np.inf)
    D[0, 0] = 0
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            D[i, j] = ((a[i - 1] - b[j - 1]) ** 2).sum() + min(D[i - 1, j - 1], D[i - 1, j], D[i, j - 1])
    return D[-1, -1]


def test_dtw_distances_match_the_textbook_recursion():
    rng = np.random.default_rng(1)
    queries = [rng.normal(size=(n, 2)) for n in (3, 7, 5)]
    references = [rng.normal(size=(n, 2)) for n in (6, 2, 4, 7)]
    expected = np.array([[_naive_dtw(a, b) for b in references] for a in queries])
    np.testing.assert_allclose(dtw_distances(queries, references), expected, rtol=1e-10)
    shifted = [np.concatenate([np.zeros((2, 2)), queries[0]])]  # a warped copy is closer than another series
    assert dtw_distances(shifted, [queries[0], queries[1]]).argmin() == 0


def test_summary_features_shape_and_slope():
    x = np.stack([np.arange(10.0), np.ones(10)], axis=1)  # (10, 2): a ramp and a constant
    features = summary_features([x])
    assert features.shape == (1, 14)
    assert features[0, 12] > 0 and features[0, 13] == 0  # slope of the ramp, of the constant


def test_a_short_run_learns_basic_motions():
    task = Activity(dataset="BasicMotions")
    assert task.input_size == 6 and task.n_classes == 4
    batch = task.collate("train", torch.arange(4))
    padded, lengths = pad_packed_sequence(batch.inputs)
    assert padded.shape == (100, 4, 6) and lengths.tolist() == [100] * 4
    config = build_config("activity", {"dataset": "BasicMotions"},
                          {"hidden_size": 32, "steps": 40, "eval_every": 40, "patience": None, "lr": 1e-2})
    trainer = Trainer(config)
    before = trainer.evaluate("test")
    results = trainer.fit()
    assert results["metrics"]["test_nll_nats"] < before["nll_nats"] - 0.4
    assert results["metrics"]["test_accuracy"] > 0.6
    baseline = results["baseline"]
    assert baseline["test_published_dtw_1nn_accuracy"] == 0.975
    assert baseline["test_majority_accuracy"] == 0.25 and baseline["test_features_accuracy"] > 0.8
