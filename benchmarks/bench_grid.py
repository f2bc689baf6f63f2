"""The engine benchmark, saved as JSON in ``benchmarks/results/`` (the reference machines' measurements behind
the README's speed table).

Equivalent to ``rnnlab bench [--workbench] [--single-thread] --json benchmarks/results/<name>.json``, where
the name says when and where it ran (:func:`rnnlab.study.bench.results_path`: ``<UTC date>-<cpu>-<threads>t``);
kept as a script so a benchmark run can be repeated and compared without the CLI. Timings are never asserted
in tests: read the ratios.

    python benchmarks/bench_grid.py                                 # the full grid, every variant (tens of minutes)
    python benchmarks/bench_grid.py --workbench --single-thread     # the tasks' own shapes, as a study worker runs
    python benchmarks/bench_grid.py --quick                         # a smoke run
"""

from __future__ import annotations

import sys
from pathlib import Path

from rnnlab.study.bench import BenchConfig, render, results_path, run_bench, write_json


def main(argv: list[str]) -> None:
    cfg = BenchConfig.quick() if "--quick" in argv else BenchConfig.workbench() if "--workbench" in argv \
        else BenchConfig()
    if "--single-thread" in argv:
        cfg = cfg.single_thread()
    result = run_bench(cfg, progress=lambda message: print(message, file=sys.stderr))
    render(result)
    print(f"wrote {write_json(result, results_path(result, Path(__file__).parent / 'results'))}")


if __name__ == "__main__":
    main(sys.argv[1:])
