"""`rnnlab bench` on a tiny grid: every implementation and metric is measured and reported (no timings
are asserted: speed is the benchmark's business, not the tests')."""

import io
import json

import pytest
from rich.console import Console

from rnnlab.errors import InputError
from rnnlab.study import bench


def tiny(**overrides):
    cfg = dict(families=("rnn", "lstm", "gru"), shapes=((4, 2, 3, 3),), all_variants=False, rounds=1,
               min_sample_seconds=0.0, streaming_size=(3, 4), streaming_steps=3)
    cfg.update(overrides)
    return bench.BenchConfig(**cfg)


def test_tiny_run_measures_and_reports_everything(tmp_path):
    result = bench.run_bench(tiny())
    assert {(r.family, r.variant) for r in result.rows} == {("rnn", "tanh"), ("lstm", "vanilla"), ("gru", "vanilla")}
    for row in result.rows:
        assert set(row.ms) == {"torch", "fused", "reference"}
        for impl in row.ms.values():
            assert set(impl) == set(bench.METRICS) and all(v > 0 for v in impl.values())
        assert row.gflop_fwd_bwd > 0 and row.speedup("fwd+bwd") > 0
    assert result.streaming["rnnlab_us_per_step"] > 0
    out = io.StringIO()
    bench.render(result, Console(file=out, width=200))
    text = out.getvalue()
    assert "LSTM" in text and "GRU" in text and "streaming" in text and "geomean" in text
    data = json.loads(bench.write_json(result, tmp_path / "bench.json").read_text())
    assert data["rows"][0]["shape"] == {"T": 4, "B": 2, "I": 3, "H": 3}
    assert data["gemm_gflops"]["peak"] > 0
    assert "geomean_speedup_fwd+bwd" in data["summary"]


def test_variants_are_compared_with_torchs_vanilla_layer():
    result = bench.run_bench(tiny(families=("gru",), all_variants=True, reference=False, streaming=False,
                                  memory=False))
    variants = {r.variant for r in result.rows}
    assert variants == {"vanilla", "reset_before", "mut1", "mut2", "mut3", "mgu"}
    torch_times = {r.ms["torch"]["fwd+bwd"] for r in result.rows}
    assert len(torch_times) == 1  # one torch layer, the yardstick of every variant
    assert "worst_variant_fwd+bwd" in result.summary()


def test_forward_flops_counts_every_gemm():
    import rnnlab

    layer = rnnlab.LSTM(3, 5, proj_size=2)
    T, B = 7, 2
    expected = 2 * T * B * (20 * 3 + 20 * 2 + 2 * 5)
    assert bench.forward_flops(layer, T, B) == expected


@pytest.mark.parametrize("bad,message", [
    (dict(families=("lstm", "tcn")), "unknown cell family 'tcn'"),
    (dict(shapes=((4, 2, 3),)), "four positive ints"),
    (dict(rounds=0), "rounds must be at least 1"),
    (dict(clock="cpu"), "needs threads=1"),
    (dict(clock="sundial"), "clock must be"),
])
def test_bad_config_is_an_input_error(bad, message):
    with pytest.raises(InputError, match=message):
        bench.run_bench(tiny(**bad))


def test_workbench_preset_is_the_tasks_shapes_and_single_thread_uses_the_cpu_clock(tmp_path):
    cfg = bench.BenchConfig.workbench().single_thread()
    assert cfg.shapes == tuple(bench.WORKBENCH) and (100, 50, 2, 32) in cfg.shapes
    assert cfg.threads == 1 and cfg.clock == "cpu" and not cfg.all_variants
    bench.validate(cfg)
    shape = (4, 2, 3, 3)
    result = bench.run_bench(tiny(families=("lstm",), shapes=(shape,), streaming=False, memory=False,
                                  threads=1, clock="cpu"))
    row = result.rows[0]
    assert row.us_per_step("fused") == 1e3 * row.ms["fused"]["fwd+bwd"] / shape[0]
    data = result.to_json()["rows"][0]
    assert data["us_per_step"]["torch"]["inference"] == 1e3 * row.ms["torch"]["inference"] / shape[0]
    name = bench.results_path(result, tmp_path).name
    assert name.endswith("-1t.json") and result.machine["cpu"].split()[0].lower() in name
