"""`rnnlab bench` times the families torch lacks (IndRNN, minGRU, minLSTM, LRU, sLSTM) beside torch's LSTM at the
same shape, and keeps them out of the speedup summary of torch's own families."""

import io

from rich.console import Console

from rnnlab.study import bench


def test_new_families_are_timed_beside_torchs_lstm():
    cfg = bench.BenchConfig(families=("lstm", *bench.MODERN_FAMILIES), shapes=((4, 2, 3, 4),), all_variants=False,
                            rounds=1, min_sample_seconds=0.0, memory=False, streaming=False)
    result = bench.run_bench(cfg)
    rows = {r.family: r for r in result.rows}
    assert set(rows) == {"lstm", *bench.MODERN_FAMILIES}
    lstm_torch = rows["lstm"].ms["torch"]
    for family in bench.MODERN_FAMILIES:
        assert set(rows[family].ms) == {"torch", "fused", "reference"}
        assert all(v > 0 for v in rows[family].ms["fused"].values())
        assert rows[family].ms["torch"].keys() == lstm_torch.keys()  # the yardstick: torch's LSTM
    assert rows["indrnn"].gflop_fwd_bwd > 0  # its element-wise recurrent weight is no GEMM, its input one is
    assert set(result.summary()["geomean_by_family"]["fwd+bwd"]) == {"lstm"}
    out = io.StringIO()
    bench.render(result, Console(file=out, width=200))
    assert "mingru" in out.getvalue().lower()
