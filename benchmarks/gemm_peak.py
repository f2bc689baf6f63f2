"""The machine's fp32 GEMM throughput at the GEMM sizes of one LSTM layer (T, B, I, H), saved as JSON in
``benchmarks/results/`` beside the bench runs whose "% of peak" it qualifies.

For each product of the layer's forward and backward, C (M, N) = A (M, K) B (K, N): MKL (``torch.mm``) and
oneDNN (``torch._C._nn.mkldnn_linear``), GFLOP/s of the best of 7 samples, one thread timed by process CPU time
(a busy machine's other jobs do not count), more threads by the wall clock; and the 2048^2 square product that
``rnnlab bench`` calls the peak.

    python benchmarks/gemm_peak.py                     # (50, 128, 512, 512), one thread
    python benchmarks/gemm_peak.py 50,128,512,512 --threads 2
"""

from __future__ import annotations

import json
import os
import sys
import time
import timeit
from pathlib import Path

import torch

from rnnlab.study.bench import machine_info


def products(T: int, B: int, I: int, H: int) -> dict[str, tuple[int, int, int]]:
    """(M, K, N) of each GEMM of an LSTM layer: C (M, N) = A (M, K) B (K, N)."""
    G = 4 * H
    return {
        "input projection x W_ih^T: (T*B, I) x (I, 4H)": (T * B, I, G),
        "recurrent step h W_hh^T: (B, H) x (H, 4H)": (B, H, G),
        "backward step dh = dA W_hh: (B, 4H) x (4H, H)": (B, G, H),
        "weight gradient dA^T h: (4H, T*B) x (T*B, H)": (G, T * B, H),
        "square 2048^2": (2048, 2048, 2048),
    }


def gflops(M: int, K: int, N: int) -> dict[str, float]:
    a, b = torch.randn(M, K), torch.randn(K, N)
    am, bt = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
    flops = 2.0 * M * K * N
    n = max(1, int(2e9 / flops))
    timer = time.process_time if torch.get_num_threads() == 1 else time.perf_counter
    best = {"mkl": lambda: torch.mm(a, b), "onednn": lambda: torch._C._nn.mkldnn_linear(am, bt)}
    return {name: flops / (min(timeit.repeat(fn, number=n, repeat=7, timer=timer)) / n) / 1e9
            for name, fn in best.items()}


def main(argv: list[str]) -> None:
    threads = int(argv[argv.index("--threads") + 1]) if "--threads" in argv else 1
    shape = next((tuple(map(int, a.split(","))) for a in argv if a.count(",") == 3), (50, 128, 512, 512))
    torch.set_num_threads(threads)
    result = {"machine": machine_info(), "shape": dict(zip("TBIH", shape, strict=True)), "products": {}}
    for name, (M, K, N) in products(*shape).items():
        g = gflops(M, K, N)
        result["products"][name] = {"M": M, "K": K, "N": N, **g}
        print(f"{name:48s} MKL {g['mkl']:6.1f}  oneDNN {g['onednn']:6.1f} GFLOP/s", flush=True)
    result["load_average_1min_after"] = os.getloadavg()[0]
    cpu = "".join(c if c.isalnum() else "-" for c in result["machine"]["cpu"].lower()).strip("-")
    while "--" in cpu:
        cpu = cpu.replace("--", "-")
    stamp = time.strftime("%Y%m%d-%H%M", time.gmtime())
    name = f"{stamp}-{cpu}-{threads}t-gemm-peak-{'x'.join(map(str, shape))}.json"
    path = Path(__file__).parent / "results" / name
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1:])
