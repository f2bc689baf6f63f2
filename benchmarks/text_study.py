"""The sentiment task's defaults study: runs over several labelled text sets, then a table of mean test accuracy
+- its standard error over seeds beside the TF-IDF + logistic-regression baseline.

Sets (see ``benchmarks/text_sets.py``, which writes the two file-based ones): ``foods`` (built in), ``drugs``,
``tweets``. Variants are the task options that the study compares; ``default`` is the task's defaults.

    python benchmarks/text_sets.py SETS
    python benchmarks/text_study.py run OUT --sets-dir SETS --variants default --cells lstm gru --seeds 0 1 2 \\
        --workers 1
    python benchmarks/text_study.py summary OUT

The defaults study of 2026-12-02 (the table in ``rnnlab train sentiment --help``) ran exactly these two commands,
one run at a time on 2 shared cores (load 4-6), 18 runs in 37 minutes; the screen before it ran single variants
on seed 0 (``--variants long cased_long minilm ...``) and compared their validation accuracies.

Every run is ``rnnlab train sentiment <set options> <variant options> --cell C --seed S --threads 1`` with the
study's ``--steps`` (the commands are printed before they run and stored in each run's ``config.json``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SETS = {
    "foods": [],
    "drugs": ["--data", "{sets}/drugs_train.tsv", "--test-data", "{sets}/drugs_test.tsv"],
    "tweets": ["--data", "{sets}/tweets.tsv"],
}
VARIANTS = {
    "default": [],
    "last_max": ["--readout", "last_max"],
    "attention": ["--readout", "attention"],
    "mean": ["--readout", "mean"],
    "unidirectional": ["--no-bidirectional"],
    "pretrain": ["--pretrain-steps", "300"],
    "minilm": ["--embedding-init", "minilm"],
    "balanced": ["--class-weights", "balanced"],
    "long": ["--steps", "2400", "--eval-every", "100", "--patience", "6"],
    "minilm_long": ["--embedding-init", "minilm", "--steps", "2400", "--eval-every", "100", "--patience", "6"],
    "attention_long": ["--readout", "attention", "--steps", "2400", "--eval-every", "100", "--patience", "6"],
    "cased_long": ["--lowercase", "false", "--steps", "2400", "--eval-every", "100", "--patience", "6"],
    "vocab_all": ["--vocab-texts", "all"],
    "vocab_all_minilm": ["--vocab-texts", "all", "--embedding-init", "minilm"],
    "cased_minilm_long": ["--lowercase", "false", "--embedding-init", "minilm", "--steps", "2400", "--eval-every",
                          "100", "--patience", "6"],
    "cased_vocab_all_long": ["--lowercase", "false", "--vocab-texts", "all", "--steps", "2400", "--eval-every",
                             "100", "--patience", "6"],
    "e5": ["--epochs", "5", "--patience", "8"],
    "e5_cased": ["--epochs", "5", "--patience", "8", "--lowercase", "false"],
    "e5_cased_minilm": ["--epochs", "5", "--patience", "8", "--lowercase", "false", "--embedding-init", "minilm"],
    "e5_minilm": ["--epochs", "5", "--patience", "8", "--embedding-init", "minilm"],
    "e5_cased_minilm_all": ["--epochs", "5", "--patience", "8", "--lowercase", "false", "--embedding-init", "minilm",
                            "--vocab-texts", "all"],
    "e5_cased_minilm_mean": ["--epochs", "5", "--patience", "8", "--lowercase", "false", "--embedding-init",
                             "minilm", "--readout", "mean"],
    "e5_cased_minilm_att": ["--epochs", "5", "--patience", "8", "--lowercase", "false", "--embedding-init",
                            "minilm", "--readout", "attention"],
    "e10_cased_minilm": ["--epochs", "10", "--patience", "8", "--lowercase", "false", "--embedding-init", "minilm"],
    "ctx": ["--embedding-init", "minilm_context"],
    "ctx_all": ["--embedding-init", "minilm_context", "--vocab-texts", "all"],
    "mean_long": ["--readout", "mean", "--steps", "2400", "--eval-every", "100", "--patience", "6"],
}


def commands(args: argparse.Namespace) -> list[tuple[Path, list[str]]]:
    out = []
    for seed in args.seeds:
        for name in args.sets:
            for variant in args.variants:
                for cell in args.cells:
                    run = Path(args.out) / f"{name}-{variant}-{cell}-s{seed}"
                    words = [w.format(sets=args.sets_dir) for w in SETS[name]] + VARIANTS[variant]
                    words += ["--cell", cell, "--seed", str(seed), "--threads", "1", "-q", "--out", str(run)]
                    if args.steps:
                        words += ["--steps", str(args.steps)]
                    out.append((run, ["rnnlab", "train", "sentiment", *words]))
    return out


def run(args: argparse.Namespace) -> None:
    todo = [(path, cmd) for path, cmd in commands(args)
            if not (path / "results.json").exists() and not Path(f"{path}.log").exists()]
    if args.reverse:
        todo.reverse()
    for _, cmd in todo:
        print(" ".join(cmd), flush=True)

    def one(item: tuple[Path, list[str]]) -> None:
        path, cmd = item
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            log = open(f"{path}.log", "x")  # another runner took it meanwhile: skip
        except FileExistsError:
            return
        with log:
            code = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
        print(f"{'done' if code == 0 else f'FAILED ({code})'}: {path.name}", flush=True)

    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(one, todo))


def summary(args: argparse.Namespace) -> None:
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for path in sorted(Path(args.out).glob("*/results.json")):
        name, variant, cell, _ = path.parent.name.rsplit("-", 3)
        groups.setdefault((name, variant, cell), []).append(json.loads(path.read_text()))
    print("| set | variant | cell | seeds | valid accuracy (mean) | test accuracy (mean +- SE) | TF-IDF+LR | "
          "majority | margin / SE | minutes per run |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for (name, variant, cell), results in sorted(groups.items()):
        acc = [r["metrics"]["test_accuracy"] for r in results]
        base = results[0]["baseline"]["test_accuracy"]
        majority = results[0]["baseline"]["test_majority_accuracy"]
        mean = statistics.fmean(acc)
        se = statistics.stdev(acc) / math.sqrt(len(acc)) if len(acc) > 1 else float("nan")
        minutes = statistics.fmean(r["train_seconds"] for r in results) / 60
        ratio = (mean - base) / se if se > 0 else float("nan")
        seeds = ", ".join(f"{a:.3f}" for a in acc)
        valid = statistics.fmean(r["best_valid"] for r in results)
        print(f"| {name} | {variant} | {cell} | {len(acc)} ({seeds}) | {valid:.4f} | {mean:.4f} +- {se:.4f} | "
              f"{base:.4f} | {majority:.4f} | {ratio:+.1f} | {minutes:.1f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    go = sub.add_parser("run")
    go.add_argument("out")
    go.add_argument("--sets-dir", default="text_sets")
    go.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    go.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS))
    go.add_argument("--cells", nargs="+", default=["lstm", "gru"])
    go.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    go.add_argument("--steps", type=int, default=0, help="0: the task's default budget")
    go.add_argument("--workers", type=int, default=2)
    go.add_argument("--reverse", action="store_true", help="run the list from its end")
    show = sub.add_parser("summary")
    show.add_argument("out")
    args = parser.parse_args(argv)
    (run if args.command == "run" else summary)(args)


if __name__ == "__main__":
    sys.exit(main())
