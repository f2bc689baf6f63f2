"""The engine benchmark over the standard grid, saved as JSON beside this file.

Equivalent to ``rnnlab bench --json benchmarks/results/bench-<date>.json``; kept as a script so a benchmark
run can be repeated and compared without the CLI. Timings are never asserted in tests: read the ratios.

    python benchmarks/bench_grid.py            # the full grid, every variant (tens of minutes on 2 cores)
    python benchmarks/bench_grid.py --quick    # a smoke run
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rnnlab.study.bench import BenchConfig, render, run_bench, write_json


def main(argv: list[str]) -> None:
    cfg = BenchConfig.quick() if "--quick" in argv else BenchConfig()
    result = run_bench(cfg, progress=lambda message: print(message, file=sys.stderr))
    render(result)
    out = Path(__file__).parent / "results" / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    print(f"wrote {write_json(result, out)}")


if __name__ == "__main__":
    main(sys.argv[1:])
