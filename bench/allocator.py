"""Memory between training steps: glibc's malloc thresholds as they adapt, or fixed high.

A training step frees its activations and allocates the same sizes again at the next step. glibc
serves a block over its mmap threshold (128 KB at first, raised to each large block freed, up to
32 MB) with fresh pages from the operating system, and hands the free top of its heap back past
its trim threshold (twice that): then every step faults its pages in again, each zeroed by the
kernel. In a bare script a conv_same step took 7,500-11,000 page faults that way. aecore fixes
both thresholds high when it is imported (aecore/allocator.py), so freed blocks stay for the next
step: the "kept" arm. The "glibc" arm sets a glibc malloc tunable at its default value
(`glibc.malloc.check=0`), which tells aecore that the user chose malloc's settings: it then sets
none, and glibc's thresholds adapt as they do in any program.

Each model trains through `python -m aecore train` in a fresh process (bench/product.py), the arms
alternating pair after pair, so that a machine that changes speed between processes shows as
spread within each arm, not as a difference between them. Per run: the steady epoch (median after
the first), the page faults of the whole process (loading and testing included) and its peak
resident memory.

    python -m bench.allocator                       # conv_same, unet, janet: about 7 min on 2 cores
    python -m bench.allocator --models conv_same --pairs 1 --train-size 2000 --no-settle  # works?

Written to bench/results/allocator.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from dataclasses import replace
from pathlib import Path

from bench import product, speed

ARMS = {
    "glibc": {"GLIBC_TUNABLES": "glibc.malloc.check=0"},  # the default: aecore keeps out
    "kept": {},  # aecore's own thresholds (aecore.allocator.keep_freed_blocks)
}
MODELS = ("conv_same", "unet", "janet")


def bench_model(
    name: str, pairs: int, epochs: int, train_size: int, runs: Path, settle: bool = True
) -> dict:
    case = next(c for c in speed.CASES if c.name == name)
    cfg = replace(case.config, epochs=epochs, limit_train=train_size)
    row: dict[str, list] = {arm: [] for arm in ARMS}
    for pair in range(pairs):
        order = list(ARMS) if pair % 2 == 0 else list(ARMS)[::-1]
        for arm in order:
            if settle:  # each run meets an idle machine, as a user's command would
                product.settle()
            run = product.run(cfg, product.child_env(runs, **ARMS[arm]))
            row[arm].append(
                {
                    "steady_epoch_s": run.steady_epoch_s,
                    "epoch_s": run.epoch_seconds,
                    "page_faults": run.page_faults,
                    "peak_rss_mb": run.peak_rss_mb,
                    "threads_wait": run.report.get("threads_wait"),
                }
            )
            print(
                f"  {name:10s} {arm:7s} steady {run.steady_epoch_s:6.2f} s/epoch, "
                f"{run.page_faults:>9,} page faults, peak {run.peak_rss_mb:5.0f} MB",
                flush=True,
            )
    return row


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def table(rows: dict[str, dict], train_size: int) -> str:
    lines = [
        f"Steady epoch of {train_size:,} MNIST images (median of the runs), page faults per "
        "process, peak memory:",
        f"{'model':10s} {'glibc s':>8s} {'kept s':>9s} {'ratio':>6s} {'glibc faults':>13s} "
        f"{'kept faults':>14s} {'glibc MB':>9s} {'kept MB':>10s}",
    ]
    for name, row in rows.items():
        glibc, ours = row["glibc"], row["kept"]
        g_s, o_s = _median(glibc, "steady_epoch_s"), _median(ours, "steady_epoch_s")
        lines.append(
            f"{name:10s} {g_s:8.2f} {o_s:9.2f} {o_s / g_s:6.2f} "
            f"{_median(glibc, 'page_faults'):13,.0f} {_median(ours, 'page_faults'):14,.0f} "
            f"{_median(glibc, 'peak_rss_mb'):9.0f} {_median(ours, 'peak_rss_mb'):10.0f}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=[c.name for c in speed.CASES])
    parser.add_argument("--pairs", type=int, default=2, help="runs of each arm, alternating")
    parser.add_argument("--epochs", type=int, default=3, help="the first is not counted")
    parser.add_argument("--train-size", type=int, default=20_000)
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/...)")
    parser.add_argument(
        "--no-settle", action="store_true", help="start each run at once, idle machine or not"
    )
    args = parser.parse_args(argv)
    out = Path(args.out or Path(__file__).resolve().parent / "results" / "allocator.json")
    rows = {}
    with tempfile.TemporaryDirectory(prefix="aecore-allocator-") as runs:
        for name in args.models or MODELS:
            print(f"== {name}: {args.pairs} pair(s) of {args.epochs} epochs", flush=True)
            rows[name] = bench_model(
                name, args.pairs, args.epochs, args.train_size, Path(runs), not args.no_settle
            )
    print(table(rows, args.train_size))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"train_size": args.train_size, "rows": rows}, indent=1))
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
