"""float32 against bfloat16 mixed precision (TrainConfig.precision), through the command line.

Issue #13's CPU targets, on full MNIST at batch 128, timed as users run training: each run is
`python -m aecore train ... --force --json` in a fresh process (bench/product.py). The two
precisions alternate, fp32 first for one seed and bf16 first for the next, so a drifting machine
slows both alike. Each run gets `OMP_WAIT_POLICY=ACTIVE`, what the command line chooses for itself
when it owns an idle machine (aecore.threads), so no run waits for the load average to settle.

Printed per model: the steady epoch (the median after the first) and the first epoch of each
run, the bf16/fp32 ratio seed by seed, the test losses of both (same evaluate(), same test noise:
always float32), and the issue's CPU target.

    python -m bench.precision                            # janet, vae_mlp, conv_same; seeds 0, 1
    python -m bench.precision --models vae_mlp --seeds 0 --epochs 2
    python -m bench.precision --models janet --seeds 0 --epochs 2 --limit-train 500   # smoke run

Needs MNIST under AECORE_DATA_DIR. Results: bench/results/precision.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from aecore.config import PRECISIONS
from bench import product
from bench.speed import CASES

# Seconds per steady MNIST epoch (58,000 images, batch 128) through the command line on this
# project's 2-core CPU (issue #13).
CPU_TARGETS = {"janet": 1.0, "vae_mlp": 1.6, "conv_same": 8.0}
ACTIVE = {"OMP_WAIT_POLICY": "ACTIVE"}


def bench_model(name: str, seeds: list[int], epochs: int, runs: Path, limit_train: int = 0) -> dict:
    case = next(c.config for c in CASES if c.name == name)
    base = replace(case, epochs=epochs, limit_train=limit_train)
    env = product.child_env(runs, ACTIVE)
    rows: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    for i, seed in enumerate(seeds):
        for precision in PRECISIONS if i % 2 == 0 else PRECISIONS[::-1]:
            run = product.run(replace(base, seed=seed, precision=precision), env)
            rows[precision].append(
                {
                    "seed": seed,
                    "epoch_seconds": run.epoch_seconds,
                    "steady_s": run.steady_epoch_s,
                    "first_s": run.first_epoch_s,
                    "test_loss": run.report["test_loss"],
                    "threads_wait": run.report.get("threads_wait"),
                }
            )
            print(
                f"  {name} seed {seed} {precision}: {run.steady_epoch_s:.2f} s per epoch "
                f"(first {run.first_epoch_s:.2f}), test loss {run.report['test_loss']:.5f}",
                flush=True,
            )
    pairs = zip(rows["fp32"], rows["bf16"], strict=True)
    ratios = [bf16["steady_s"] / fp32["steady_s"] for fp32, bf16 in pairs]
    return {"config": base.to_dict(), "runs": rows, "bf16_over_fp32": ratios}


def _span(values: list[float], fmt: str) -> str:
    low, high = min(values), max(values)
    return format(low, fmt) if low == high else f"{low:{fmt}}-{high:{fmt}}"


def print_table(results: dict[str, dict]) -> None:
    """One row per model; "met by": the precisions whose median steady epoch meets the target."""
    print(
        f"{'model':<10}{'fp32 s/epoch':>14}{'bf16 s/epoch':>14}{'bf16/fp32':>11}"
        f"{'fp32 test loss':>24}{'bf16 test loss':>24}{'target':>8}  met by"
    )
    for name, r in results.items():
        steady = {p: [x["steady_s"] for x in runs] for p, runs in r["runs"].items()}
        loss = {p: [x["test_loss"] for x in runs] for p, runs in r["runs"].items()}
        target = CPU_TARGETS[name]
        met = [p for p in PRECISIONS if statistics.median(steady[p]) <= target]
        print(
            f"{name:<10}{_span(steady['fp32'], '.2f'):>14}{_span(steady['bf16'], '.2f'):>14}"
            f"{_span(r['bf16_over_fp32'], '.2f'):>11}"
            f"{_span(loss['fp32'], '.5g'):>24}{_span(loss['bf16'], '.5g'):>24}"
            f"{target:>8}  {', '.join(met) or 'neither'}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=list(CPU_TARGETS), default=list(CPU_TARGETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit-train", type=int, default=0, help="images (0: all; a smoke run)")
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/...)")
    args = parser.parse_args(argv)
    out = Path(args.out or Path(__file__).resolve().parent / "results" / "precision.json")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="aecore-precision-") as runs:
        for name in args.models:
            print(f"== {name}: {args.epochs} epochs, seeds {args.seeds}", flush=True)
            results[name] = bench_model(name, args.seeds, args.epochs, Path(runs), args.limit_train)
    print()
    print_table(results)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
