"""Cell specs, budgets and the results store."""

import sqlite3

import pytest

from rnnlab.study.cellspec import CellSpec, parse_cells
from rnnlab.study.compare import Budget
from rnnlab.study.report import gradient_reach, threshold_for
from rnnlab.study.store import ResultsStore


def test_parse_cells_labels_and_defaults():
    specs = parse_cells("rnn, lstm,gru:mut1,lstm:peephole,rnn:relu")
    assert [s.label for s in specs] == ["rnn", "lstm", "gru:mut1", "lstm:peephole", "rnn:relu"]
    assert specs[0] == CellSpec("rnn", "tanh") and specs[1] == CellSpec("lstm", "vanilla")
    assert specs[2].slug == "gru-mut1"


@pytest.mark.parametrize("text,message", [
    ("rnn,transformer", "unknown cell 'transformer' in cell spec 'transformer'"),
    ("lstm:mut1", "unknown lstm variant 'mut1' in cell spec 'lstm:mut1'; expected one of: vanilla"),
    ("lstm,,gru", "empty cell spec"),
    ("lstm,lstm:vanilla", "cell spec 'lstm' is given twice"),
])
def test_parse_cells_errors(text, message):
    with pytest.raises(ValueError, match=message):
        parse_cells(text)


def test_budget_parse():
    assert Budget.parse("2000") == Budget(steps=2000)
    assert Budget.parse("90s") == Budget(seconds=90.0)
    assert Budget.parse("120cpu") == Budget(cpu_seconds=120.0)
    assert Budget.parse("120cpu").overrides() == {"max_cpu_seconds": 120.0}
    assert Budget.parse(None) == Budget()
    for bad in ("0", "-5", "abc", "0s", "nans", "0cpu", "cpu", "infcpu"):
        with pytest.raises(ValueError, match="--budget expects a positive number of steps"):
            Budget.parse(bad)


def results(cell="lstm", seed=0, mse=0.1):
    return {"cell": cell, "variant": "vanilla", "seed": seed, "metrics": {"test_mse": mse}}


def test_store_records_and_reopens(tmp_path):
    with ResultsStore(tmp_path, {"task": "adding"}) as store:
        store.record("lstm-s0", results())
        store.record("gru-s0", results("gru"))
    with ResultsStore(tmp_path, {"task": "adding"}) as store:
        assert store.finished() == {"lstm-s0", "gru-s0"}
        assert store.results()["gru-s0"]["cell"] == "gru"
    assert [r["run_id"] for r in ResultsStore.read(tmp_path)] == ["gru-s0", "lstm-s0"]


def test_store_refuses_a_different_study_and_keeps_its_results(tmp_path):
    with ResultsStore(tmp_path, {"task": "adding", "budget_steps": 100}) as store:
        store.record("lstm-s0", results())
    with pytest.raises(ValueError, match=r"holds a different study \(budget_steps: 100 there, 200 here\)"):
        ResultsStore(tmp_path, {"task": "adding", "budget_steps": 200})
    assert ResultsStore.read(tmp_path)[0]["run_id"] == "lstm-s0"


def test_store_rejects_a_foreign_file(tmp_path):
    (tmp_path / "study.sqlite").write_text("not a database at all" * 100)
    with pytest.raises(ValueError, match="is not an rnnlab results store"):
        ResultsStore(tmp_path, {"task": "adding"})
    with pytest.raises(ValueError, match="holds no study"):
        ResultsStore.read(tmp_path / "nowhere")


def test_store_row_is_committed_immediately(tmp_path):
    store = ResultsStore(tmp_path, {"task": "adding"})
    store.record("rnn-s1", results("rnn", 1))
    # another connection (a rerun after a kill) sees it without the first one closing
    rows = sqlite3.connect(tmp_path / "study.sqlite").execute("SELECT run_id FROM runs").fetchall()
    assert rows == [("rnn-s1",)]
    store.close()


def test_threshold_and_reach():
    assert threshold_for(0.167, higher_is_better=False) == pytest.approx(0.0167)
    assert threshold_for(0.1, higher_is_better=True) == pytest.approx(0.91)
    assert gradient_reach([1e-6, 1e-3, 1.0]) == pytest.approx(1e-6)
    assert gradient_reach([1.0]) is None
