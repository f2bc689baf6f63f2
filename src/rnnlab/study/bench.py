"""``rnnlab bench``: speed and memory of rnnlab's recurrent layers against torch's own, measured in one process.

For every cell family (RNN, LSTM, GRU), every variant and every shape ``(T, B, I, H)`` of the grid, three
implementations run *interleaved* (round after round, so that a busy machine slows all of them alike):

- ``torch``: ``torch.nn.RNN/LSTM/GRU`` (the native layer; for a variant, torch's vanilla layer of that family
  is the yardstick, since torch has no other);
- ``fused``: ``rnnlab``'s layer on its default backend (compiled kernels, hand-written BPTT);
- ``reference``: the same layer with ``backend="reference"`` (the autograd loop; vanilla variants only,
  unless ``reference_all``).

Measured per implementation: forward with autograd recording (``fwd``), forward + backward of
``(y * g).sum()`` with the input requiring grad (``fwd+bwd``: every gradient torch computes), and forward
under ``torch.no_grad()`` (``inference``); medians over rounds, milliseconds. GC is collected and frozen
before timing and disabled inside each timed call, like :mod:`timeit`.

Memory: the peak resident memory (RSS) that one forward + backward adds above the memory held just before it
(inputs, weights and the allocator's state after warm-up). Linux only: the peak counter is reset through
``/proc/self/clear_refs`` and read from ``VmHWM``, with ``malloc_trim`` first so that freed memory the
allocator kept does not hide new allocations. RSS sees every byte, torch's tensors and oneDNN's or MKL's
scratch buffers alike; it counts pages, so tiny shapes read near zero.

Throughput: GEMM FLOPs of fwd+bwd (``3 x`` the forward's: input projection, recurrent products and their two
gradients each; the pointwise gate math is not counted) per second, and that as a fraction of the machine's
GEMM throughput measured in the same run (the better of torch.mm (MKL) and torch's oneDNN matmul on a
2048^2 fp32 product).

Shapes: the standard grid (:data:`GRID`), or with ``--workbench`` the shapes the workbench's own tasks train
at with their default options (:data:`WORKBENCH`: one layer, the task's batch size, input width and hidden
size; sequence lengths of padded batches are typical ones). Times are also given per step of the sequence
(``us_per_step``, microseconds), where the overhead of small shapes shows.

Streaming: per-step latency of a 2-layer LSTM at batch 1 called on ``x[t:t+1]`` with the carried state under
``no_grad`` (text generation), rnnlab vs ``torch.nn.LSTM`` stepped the same way.
"""

from __future__ import annotations

import ctypes
import gc
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

import rnnlab
from rnnlab.errors import InputError
from rnnlab.layers import default_variant, variants_of

FAMILIES = ("rnn", "lstm", "gru")
GRID = ((100, 16, 64, 64), (100, 64, 256, 256), (50, 128, 512, 512), (500, 32, 128, 128))
QUICK_GRID = ((100, 16, 64, 64),)
#: (T, B, I, H) of one layer of each workbench task at its default options, task by task (tasks/*.py: defaults,
#: input_size, options); the study runs its workers single-threaded, so these matter most at one thread
WORKBENCH = {
    (100, 50, 2, 32): "adding (rnnlab compare's default study: seq_len 100)",
    (200, 50, 2, 32): "adding (seq_len 200)",
    (120, 64, 10, 128): "copy (T + 2K = 120 steps, 10 categories)",
    (8, 32, 8, 64): "digits (8 rows of 8 pixels)",
    (28, 64, 28, 128): "mnist rows",
    (784, 64, 1, 128): "mnist --pixels",
    (45, 8, 88, 256): "music (Bach chorales, ~45 quarter steps, 88 keys)",
    (64, 32, 128, 128): "sentiment (median padded length 64, embeddings 128; one direction)",
    (128, 32, 128, 256): "lm (seq_len 128, embeddings 128)",
    (30, 32, 13, 128): "speech (~30 frames of 13 MFCCs)",
}
#: families torch has no layer of (IndRNN, minGRU, minLSTM, LRU, RG-LRU, sLSTM, mLSTM): timed beside torch's LSTM
#: at the same shape, which is their yardstick; their default variant stands where torch's variant does
MODERN_FAMILIES = ("indrnn", "mingru", "minlstm", "lru", "rglru", "slstm", "mlstm")
TORCH_LAYERS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU,
                **{f: torch.nn.LSTM for f in MODERN_FAMILIES}}
TORCH_VARIANT = {"rnn": "tanh", "lstm": "vanilla", "gru": "vanilla",  # the variant torch's layer computes
                 **{f: default_variant(f) for f in MODERN_FAMILIES}}
METRICS = ("fwd", "fwd+bwd", "inference")


@dataclass
class BenchConfig:
    """What ``rnnlab bench`` measures."""

    families: tuple[str, ...] = FAMILIES  # cell families
    shapes: tuple[tuple[int, int, int, int], ...] = GRID  # (T, B, I, H)
    all_variants: bool = True  # every variant of each family, else the vanilla one only
    rounds: int = 5  # interleaved rounds; the median is reported
    min_sample_seconds: float = 0.02  # a timed sample repeats a call until it lasts this long
    reference: bool = True  # time the reference engine (vanilla variants)
    reference_all: bool = False  # ... for every variant
    memory: bool = True  # peak RSS of fwd+bwd (Linux)
    streaming: bool = True  # per-step latency of a 2-layer LSTM at batch 1
    streaming_size: tuple[int, int] = (256, 256)  # (I, H) of the streaming LSTM
    streaming_steps: int = 200
    threads: int | None = None  # torch.set_num_threads; None: torch's default
    clock: str = "wall"  # "wall": elapsed time; "cpu": this process's CPU time (steadier on a shared machine,
    #                      meaningful with threads=1 only: other threads' spinning would count)
    seed: int = 0

    @classmethod
    def quick(cls) -> BenchConfig:
        """A smoke run in well under a minute: the small shape, vanilla variants, three rounds."""
        return cls(shapes=QUICK_GRID, all_variants=False, rounds=3, min_sample_seconds=0.01, streaming_steps=50)

    @classmethod
    def workbench(cls) -> BenchConfig:
        """The workbench tasks' own shapes (:data:`WORKBENCH`), vanilla variants, no reference loop."""
        return cls(shapes=tuple(WORKBENCH), all_variants=False, reference=False)

    def single_thread(self) -> BenchConfig:
        """This configuration on one thread, timed by process CPU time (what a study worker runs; the CPU
        clock is steadier than the wall clock on a shared machine)."""
        from dataclasses import replace

        return replace(self, threads=1, clock="cpu")


@dataclass
class Row:
    """One (family, variant, shape): times in ms per implementation and metric, memory in MB."""

    family: str
    variant: str
    shape: tuple[int, int, int, int]
    ms: dict[str, dict[str, float]] = field(default_factory=dict)  # {impl: {metric: ms}}
    peak_mb: dict[str, float] = field(default_factory=dict)  # {impl: MB} of fwd+bwd
    gflop_fwd_bwd: float = 0.0

    def speedup(self, metric: str) -> float | None:
        """torch's time / fused time (> 1: rnnlab is faster)."""
        t, f = self.ms.get("torch", {}).get(metric), self.ms.get("fused", {}).get(metric)
        return None if t is None or f is None else t / f

    def us_per_step(self, impl: str, metric: str = "fwd+bwd") -> float | None:
        """Microseconds per time step of the sequence."""
        ms = self.ms.get(impl, {}).get(metric)
        return None if ms is None else 1e3 * ms / self.shape[0]

    def gflops(self, impl: str = "fused") -> float | None:
        ms = self.ms.get(impl, {}).get("fwd+bwd")
        return None if ms is None else self.gflop_fwd_bwd / (ms / 1e3)


# ---- FLOPs -------------------------------------------------------------------------------------------------
def forward_flops(layer: torch.nn.Module, T: int, B: int) -> float:
    """GEMM FLOPs of one forward: 2 * rows * cols * inner for the input projection and the recurrent
    products of every layer and direction (proj_size included); pointwise math not counted."""
    total = 0.0
    for name, p in layer.named_parameters():
        if name.startswith(("weight_ih", "weight_hh", "weight_hr")) and p.dim() == 2:  # IndRNN's u: no GEMM
            total += 2.0 * T * B * p.shape[0] * p.shape[1]
    return total


# ---- timing ------------------------------------------------------------------------------------------------
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter  # set by run_bench from BenchConfig.clock


def _timed(fn: Callable[[], object], min_seconds: float) -> float:
    """Seconds per call of ``fn``: repeated until the sample lasts ``min_seconds``; GC off meanwhile."""
    calls, elapsed = 0, 0.0
    gc.disable()
    try:
        start = _clock()
        while True:
            fn()
            calls += 1
            elapsed = _clock() - start
            if elapsed >= min_seconds:
                break
    finally:
        gc.enable()
    return elapsed / calls


class _Peak:
    """Peak RSS above the current RSS, through /proc/self/clear_refs and VmHWM (Linux)."""

    def __init__(self) -> None:
        self.available = os.path.exists("/proc/self/clear_refs") and platform.system() == "Linux"
        self._trim = None
        if self.available:
            try:
                self._trim = ctypes.CDLL("libc.so.6").malloc_trim
                with open("/proc/self/clear_refs", "w") as handle:
                    handle.write("5")
            except OSError:
                self.available = False

    @staticmethod
    def _status_kb(key: str) -> int:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        raise OSError(f"no {key} in /proc/self/status")

    def measure(self, fn: Callable[[], object]) -> float | None:
        """MB that ``fn()`` adds at its peak above the resident memory before it."""
        if not self.available:
            return None
        gc.collect()
        if self._trim is not None:
            self._trim(0)
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        before = self._status_kb("VmRSS")
        fn()
        peak = self._status_kb("VmHWM")
        return max(0.0, (peak - before) / 1024.0)


def gemm_gflops(seconds: float = 0.5) -> dict[str, float]:
    """The machine's fp32 GEMM throughput now: a 2048^2 product with torch.mm (MKL) and torch's oneDNN."""
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    out = torch.empty(n, n)
    flops = 2.0 * n ** 3
    result = {"mkl": flops / _timed(lambda: torch.mm(a, b, out=out), seconds) / 1e9}
    try:
        am, bm = a.to_mkldnn(), b.t().contiguous().to_mkldnn()
        result["onednn"] = flops / _timed(lambda: torch._C._nn.mkldnn_linear(am, bm), seconds) / 1e9
    except (RuntimeError, AttributeError):  # a torch without oneDNN
        pass
    result["peak"] = max(result.values())
    return result


# ---- one (family, shape) group -----------------------------------------------------------------------------
def _make_layer(family: str, variant: str, I: int, H: int) -> torch.nn.Module:
    if family in MODERN_FAMILIES:
        return rnnlab.build_layer(family, I, H, variant=variant)
    if family == "rnn":
        return rnnlab.RNN(I, H, nonlinearity=variant)
    cls = rnnlab.LSTM if family == "lstm" else rnnlab.GRU
    return cls(I, H, variant=variant)


def _impls(family: str, variants: Iterable[str], I: int, H: int, cfg: BenchConfig):
    """[(row key (variant), impl name, module)] of one family at one size, torch's weights shared."""
    torch_layer = TORCH_LAYERS[family](I, H, nonlinearity=TORCH_VARIANT[family]) if family == "rnn" \
        else TORCH_LAYERS[family](I, H)
    out = [(TORCH_VARIANT[family], "torch", torch_layer)]
    for variant in variants:
        fused = _make_layer(family, variant, I, H)
        if variant == TORCH_VARIANT[family] and family in FAMILIES:
            fused.load_state_dict(torch_layer.state_dict())
        out.append((variant, "fused", fused))
        if cfg.reference and (cfg.reference_all or variant == TORCH_VARIANT[family]):
            ref = _make_layer(family, variant, I, H)
            ref.load_state_dict(fused.state_dict())
            ref.backend = "reference"
            out.append((variant, "reference", ref))
    return out


def _calls(module: torch.nn.Module, x: torch.Tensor, g: torch.Tensor) -> dict[str, Callable[[], object]]:
    def fwd():
        return module(x)

    def fwd_bwd():
        y, _ = module(x)
        (y * g).sum().backward()

    def inference():
        with torch.no_grad():
            return module(x)

    return {"fwd": fwd, "fwd+bwd": fwd_bwd, "inference": inference}


def bench_group(family: str, shape: tuple[int, int, int, int], cfg: BenchConfig,
                progress: Callable[[str], None] | None = None) -> list[Row]:
    """Every variant of ``family`` at ``shape``, torch and reference interleaved with them."""
    T, B, I, H = shape
    variants = [v for v in variants_of(family) if cfg.all_variants or v == TORCH_VARIANT[family]]
    torch.manual_seed(cfg.seed)
    impls = _impls(family, variants, I, H, cfg)
    x = torch.randn(T, B, I, requires_grad=True)
    g = torch.randn(T, B, H)
    calls = [(key, name, _calls(m, x, g)) for key, name, m in impls]
    rows = {v: Row(family, v, shape) for v in variants}
    for key, name, module in impls:
        if name == "fused":
            rows[key].gflop_fwd_bwd = 3 * forward_flops(module, T, B) / 1e9
    for _, _, fns in calls:  # warm-up: builds kernels, allocator and BLAS buffers
        for fn in fns.values():
            fn()
    samples: dict[tuple[str, str, str], list[float]] = {}
    gc.collect()
    gc.freeze()
    try:
        for r in range(cfg.rounds):
            if progress:
                progress(f"{family} {shape} round {r + 1}/{cfg.rounds}")
            for key, name, fns in calls:
                for metric, fn in fns.items():
                    samples.setdefault((key, name, metric), []).append(_timed(fn, cfg.min_sample_seconds))
    finally:
        gc.unfreeze()
    peak = _Peak() if cfg.memory else None
    for key, name, fns in calls:
        targets = [rows[key]] if name != "torch" else list(rows.values())
        for row in targets:
            row.ms[name] = {m: 1e3 * statistics.median(samples[(key, name, m)]) for m in METRICS}
        if peak is not None:
            mb = peak.measure(fns["fwd+bwd"])
            if mb is not None:
                for row in targets:
                    row.peak_mb[name] = mb
    return list(rows.values())


# ---- streaming ----------------------------------------------------------------------------------------------
def bench_streaming(cfg: BenchConfig) -> dict[str, float]:
    """Per-step latency (µs, median over rounds) of a 2-layer LSTM at batch 1 stepped with carried state."""
    I, H = cfg.streaming_size
    torch.manual_seed(cfg.seed)
    native = torch.nn.LSTM(I, H, num_layers=2)
    ours = rnnlab.LSTM(I, H, num_layers=2)
    ours.load_state_dict(native.state_dict())
    x = torch.randn(cfg.streaming_steps, 1, I)

    def stepper(module):
        def run():
            state = None
            with torch.no_grad():
                for t in range(x.shape[0]):
                    _, state = module(x[t:t + 1], state)
        return run

    runs = {"torch": stepper(native), "rnnlab": stepper(ours)}
    for fn in runs.values():
        fn()
    samples: dict[str, list[float]] = {k: [] for k in runs}
    gc.collect()
    gc.freeze()
    try:
        for _ in range(max(3, cfg.rounds)):
            for name, fn in runs.items():
                samples[name].append(_timed(fn, 0.0) / x.shape[0])
    finally:
        gc.unfreeze()
    result = {f"{k}_us_per_step": 1e6 * statistics.median(v) for k, v in samples.items()}
    result["speedup"] = result["torch_us_per_step"] / result["rnnlab_us_per_step"]
    result.update({"input_size": I, "hidden_size": H, "num_layers": 2, "batch": 1})
    return result


# ---- the whole run ------------------------------------------------------------------------------------------
@dataclass
class BenchResult:
    config: BenchConfig
    machine: dict
    gemm: dict[str, float]
    rows: list[Row]
    streaming: dict[str, float] | None

    def summary(self) -> dict:
        """Geometric means and worst cases of the speedups (torch time / fused time)."""
        out: dict = {}
        vanilla = [r for r in self.rows if r.variant == TORCH_VARIANT[r.family] and r.family in FAMILIES]
        for metric in ("fwd+bwd", "inference"):
            ratios = [r.speedup(metric) for r in vanilla if r.speedup(metric)]
            if ratios:
                out[f"geomean_speedup_{metric}"] = math.exp(sum(map(math.log, ratios)) / len(ratios))
                worst = min(vanilla, key=lambda r: r.speedup(metric) or math.inf)
                out[f"worst_speedup_{metric}"] = {"ratio": worst.speedup(metric), "family": worst.family,
                                                  "shape": list(worst.shape)}
            for family in self.config.families:
                fam = [r.speedup(metric) for r in vanilla if r.family == family and r.speedup(metric)]
                if fam:
                    out.setdefault("geomean_by_family", {}).setdefault(metric, {})[family] = \
                        math.exp(sum(map(math.log, fam)) / len(fam))
            others = [r for r in self.rows if r.variant != TORCH_VARIANT[r.family] and r.family in FAMILIES
                      and r.speedup(metric)]
            if others:
                worst = min(others, key=lambda r: r.speedup(metric))
                out[f"worst_variant_{metric}"] = {"ratio": worst.speedup(metric), "family": worst.family,
                                                  "variant": worst.variant, "shape": list(worst.shape)}
        mem = [r.peak_mb["fused"] / r.peak_mb["torch"] for r in vanilla
               if r.peak_mb.get("torch") and r.peak_mb.get("fused") is not None]
        if mem:
            out["worst_memory_ratio_fused_over_torch"] = max(mem)
        if self.streaming:
            out["streaming_speedup"] = self.streaming["speedup"]
        return out

    def to_json(self) -> dict:
        rows = []
        for r in self.rows:
            d = asdict(r)
            d["shape"] = dict(zip("TBIH", r.shape, strict=True))
            d["speedup"] = {m: r.speedup(m) for m in ("fwd", "fwd+bwd", "inference")}
            d["us_per_step"] = {impl: {m: r.us_per_step(impl, m) for m in METRICS} for impl in r.ms}
            if r.shape in WORKBENCH:
                d["workbench"] = WORKBENCH[r.shape]
            d["gflops_fwd_bwd"] = {impl: r.gflops(impl) for impl in r.ms}
            g = r.gflops("fused")
            d["fraction_of_gemm_peak"] = None if g is None else g / self.gemm["peak"]
            rows.append(d)
        return {"config": asdict(self.config), "machine": self.machine, "gemm_gflops": self.gemm, "rows": rows,
                "streaming": self.streaming, "summary": self.summary()}


def machine_info() -> dict:
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "isa": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "rnnlab": rnnlab.__version__, "load_average_1min": load,
            "gemm_route": os.environ.get("RNNLAB_GEMM", "default")}


def validate(cfg: BenchConfig) -> None:
    unknown = [f for f in cfg.families if f not in FAMILIES + MODERN_FAMILIES]
    if unknown:
        known = ", ".join(FAMILIES + MODERN_FAMILIES)
        raise InputError(f"unknown cell family {unknown[0]!r}; expected some of: {known}")
    for shape in cfg.shapes:
        if len(shape) != 4 or any(not isinstance(n, int) or n <= 0 for n in shape):
            raise InputError(f"a shape is four positive ints T,B,I,H; got {shape!r}")
    if cfg.rounds < 1:
        raise InputError(f"rounds must be at least 1, got {cfg.rounds}")
    if cfg.clock not in CLOCKS:
        raise InputError(f"clock must be 'wall' or 'cpu', got {cfg.clock!r}")
    if cfg.clock == "cpu" and cfg.threads != 1:
        raise InputError("clock='cpu' measures this process's CPU time, which adds up every thread's; it needs "
                         f"threads=1, got {cfg.threads}")


def run_bench(cfg: BenchConfig, progress: Callable[[str], None] | None = None) -> BenchResult:
    """Measure everything ``cfg`` asks for; see the module docstring for what and how."""
    global _clock
    validate(cfg)
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    _clock = CLOCKS[cfg.clock]
    machine = machine_info()
    from rnnlab.engine import build

    if not build.load():  # warns once; the "fused" rows then time the reference engine
        if progress:
            progress("the fused kernels did not build: fused rows run the reference engine")
    gemm = gemm_gflops()
    rows: list[Row] = []
    for shape in cfg.shapes:
        for family in cfg.families:
            rows.extend(bench_group(family, shape, cfg, progress))
    streaming = None
    if cfg.streaming:
        if progress:
            progress("streaming")
        streaming = bench_streaming(cfg)
    return BenchResult(cfg, machine, gemm, rows, streaming)


# ---- output -------------------------------------------------------------------------------------------------
def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def render(result: BenchResult, console=None) -> None:
    """Readable tables on stdout (rich): one per family, then the summary."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # piped or redirected: do not squeeze the table into 80 columns
            console = Console(width=220)
    m, gemm = result.machine, result.gemm
    load = m.get("load_average_1min")
    console.print(f"[bold]rnnlab bench[/bold]  {m['cpu']} ({m.get('isa', '?')}), {m['threads']} threads, "
                  f"torch {m['torch']}, "
                  f"{result.config.clock} clock, load average {_fmt(load)} on {m['cores']} cores; "
                  f"GEMM fp32 2048^2: MKL {_fmt(gemm.get('mkl'), '.0f')} GFLOP/s, oneDNN "
                  f"{_fmt(gemm.get('onednn'), '.0f')} GFLOP/s")
    console.print("times: median ms over interleaved rounds; x = torch time / rnnlab time (> 1: rnnlab faster); "
                  "variants compare with torch's vanilla layer; µs/step: fwd+bwd per time step; "
                  "mem: peak MB of fwd+bwd above the inputs")
    for family in result.config.families:
        rows = [r for r in result.rows if r.family == family]
        if not rows:
            continue
        table = Table(title=f"{family.upper()}", show_lines=False, header_style="bold")
        workbench = any(r.shape in WORKBENCH for r in rows)
        columns = ["variant", "T,B,I,H", "torch f+b", "rnnlab f+b", "x f+b", "µs/step torch", "µs/step rnnlab",
                   "torch inf", "rnnlab inf", "x inf", "rnnlab fwd", "ref f+b", "GFLOP/s", "% peak", "mem torch",
                   "mem rnnlab"] + (["task"] if workbench else [])
        for col in columns:
            table.add_column(col, justify="left" if col in ("variant", "T,B,I,H", "task") else "right",
                             no_wrap=col in ("T,B,I,H", "task"), min_width=13 if col == "T,B,I,H" else None)
        for r in rows:
            g = r.gflops("fused")
            ref = r.ms.get("reference", {}).get("fwd+bwd")
            sp_fb, sp_inf = r.speedup("fwd+bwd"), r.speedup("inference")
            table.add_row(
                r.variant, ",".join(map(str, r.shape)), _fmt(r.ms["torch"]["fwd+bwd"]), _fmt(r.ms["fused"]["fwd+bwd"]),
                _ratio(sp_fb), _fmt(r.us_per_step("torch"), ".0f"), _fmt(r.us_per_step("fused"), ".0f"),
                _fmt(r.ms["torch"]["inference"]), _fmt(r.ms["fused"]["inference"]), _ratio(sp_inf),
                _fmt(r.ms["fused"]["fwd"]), _fmt(ref), _fmt(g, ".0f"),
                _fmt(None if g is None else 100 * g / gemm["peak"], ".0f"),
                _fmt(r.peak_mb.get("torch")), _fmt(r.peak_mb.get("fused")),
                *([WORKBENCH.get(r.shape, "").split(" (")[0]] if workbench else []))
        console.print(table)
    if result.streaming:
        s = result.streaming
        console.print(f"streaming: 2-layer LSTM {s['input_size']}->{s['hidden_size']}, batch 1, one step per call: "
                      f"torch {s['torch_us_per_step']:.1f} µs/step, rnnlab {s['rnnlab_us_per_step']:.1f} µs/step "
                      f"({_ratio(s['speedup'])})")
    summary = result.summary()
    for metric in ("fwd+bwd", "inference"):
        if f"geomean_speedup_{metric}" in summary:
            fam = summary.get("geomean_by_family", {}).get(metric, {})
            worst = summary[f"worst_speedup_{metric}"]
            line = (f"{metric}: geomean x{summary[f'geomean_speedup_{metric}']:.2f} over torch ("
                    + ", ".join(f"{k} x{v:.2f}" for k, v in fam.items())
                    + f"); slowest x{worst['ratio']:.2f} ({worst['family']} {tuple(worst['shape'])})")
            wv = summary.get(f"worst_variant_{metric}")
            if wv:
                line += f"; slowest variant x{wv['ratio']:.2f} ({wv['family']}:{wv['variant']} {tuple(wv['shape'])})"
            console.print(line)
    if "worst_memory_ratio_fused_over_torch" in summary:
        console.print(f"memory: fwd+bwd peak at most {summary['worst_memory_ratio_fused_over_torch']:.2f}x torch's")


def _ratio(value: float | None) -> str:
    if value is None:
        return "-"
    color = "green" if value >= 1.0 else "red"
    return f"[{color}]x{value:.2f}[/{color}]"


def results_path(result: BenchResult, folder: str | Path) -> Path:
    """``folder/<date>-<cpu>-<threads>t[-<preset>].json``: a reference machine's results, named so that a
    listing shows when and where each was measured."""
    slug = "".join(c if c.isalnum() else "-" for c in result.machine["cpu"].lower()).strip("-")
    while "--" in slug:
        slug = slug.replace("--", "-")
    preset = "-workbench" if set(result.config.shapes) <= set(WORKBENCH) else ""
    stamp = time.strftime("%Y%m%d-%H%M", time.gmtime())
    return Path(folder) / f"{stamp}-{slug}-{result.machine['threads']}t{preset}.json"


def write_json(result: BenchResult, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    return path
