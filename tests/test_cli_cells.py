"""The families of issue 14 in the workbench: ``--cell`` takes them and mixed stacks, with their task defaults."""

import json

import pytest

from rnnlab.errors import InputError
from rnnlab.study.cellspec import parse_cells
from rnnlab.train.config import build_config

from .cli_helpers import assert_one_line_error, run_cli

TINY = ("--hidden", "6", "--steps", "2", "--eval-every", "1", "--batch-size", "4", "--quiet")


@pytest.mark.parametrize("cell", ["lstm+gru", "mingru", "slstm", "rglru", "mlstm"])
def test_train_a_new_cell_or_a_mixed_stack(capsys, tmp_path, cell):
    code, _, err = run_cli(capsys, "train", "adding", "--seq-len", "8", "--cell", cell, *TINY,
                           "--out", str(tmp_path / "run"))
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["cell"] == cell and results["steps"] == 2


def test_unknown_family_in_a_mixed_stack_is_one_line(capsys):
    code, _, err = run_cli(capsys, "train", "adding", "--cell", "lstm+transformer", *TINY)
    assert_one_line_error(code, err, "unknown cell 'transformer' in mixed stack 'lstm+transformer'")


def test_indrnn_bound_follows_the_task_length():
    config = build_config("adding", {"seq_len": 1000}, {"cell": "indrnn"})
    assert config.model.layer_options == {"max_len": 1000}
    config = build_config("copy", {"seq_len": 200, "copy_len": 10}, {"cell": "indrnn"})
    assert config.model.layer_options == {"max_len": 220}
    assert build_config("mnist", {"pixels": True}, {"cell": "indrnn"}).model.layer_options == {"max_len": 784}
    assert "chrono_init" in build_config("copy", {}, {"cell": "lstm+gru"}).model.layer_options


def test_cell_specs_of_a_study_take_the_new_families_and_mixed_stacks():
    specs = parse_cells("lstm,mingru,slstm:exp_forget,lstm+gru")
    assert [s.label for s in specs] == ["lstm", "mingru", "slstm:exp_forget", "lstm+gru"]
    assert specs[-1].slug == "lstm_gru"
    with pytest.raises(InputError, match="unknown cell 'gru2' in mixed stack"):
        parse_cells("lstm+gru2")
