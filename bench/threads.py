"""OpenMP's wait policy and thread count, measured on the command line's own training path.

JANet-50 on MNIST (salt and pepper 0.1, batch 128, Adam 1e-3) trained by `python -m aecore train`
in a fresh process (bench/product.py) for every cell of the table:
- policy: OMP_WAIT_POLICY=PASSIVE (what aecore sets today), ACTIVE, unset (OpenMP's default:
  spin, then sleep) and GOMP_SPINCOUNT=10000 (a short spin), the variables torch's OpenMP runtime
  reads (GNU libgomp in the Linux wheels; KMP_BLOCKTIME rows only for Intel's libiomp);
- intra-op threads: OMP_NUM_THREADS=1 and 2;
- machine: idle (one training), two (two trainings at once, different seeds), busy (one training
  while a pure-Python loop keeps one core busy).
A cell's figure is the steady-state epoch (median of the epochs after the first; mean of the two
processes in "two"); the first epoch is in the JSON. Rows without OMP_WAIT_POLICY start torch
before aecore (bench/product.py TORCH_FIRST), since aecore/__init__ would set PASSIVE.

    python -m bench.threads                                  # the table: 10 to 25 min on 2 cores
    python -m bench.threads --epochs 2 --train-size 5000 --cell-timeout 60   # does it work?

Each run trains 3 epochs of 20,000 images (--epochs, --train-size). A cell whose runs take over
--cell-timeout seconds (150) is stopped and shown as such: spinning threads on cores that
something else uses can make an epoch 30 times slower, and the table must still finish.

Run it on a quiet machine: other work on the cores is what the "idle" column must not have.
Written to bench/results/threads.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from aecore.config import TrainConfig
from bench import product

CONFIG = TrainConfig(
    dataset="mnist",
    model="janet",
    latent=50,
    corruption="salt_pepper",
    level=0.1,
    batch_size=128,
    lr=1e-3,
    optimizer="adam",
)
GNU_POLICIES = {
    "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "ACTIVE": {"OMP_WAIT_POLICY": "ACTIVE"},
    "unset": {},
    "GOMP_SPINCOUNT=10000": {"GOMP_SPINCOUNT": "10000"},
}
INTEL_POLICIES = {
    "KMP_BLOCKTIME=0": {"KMP_BLOCKTIME": "0"},
    "KMP_BLOCKTIME=1": {"KMP_BLOCKTIME": "1"},
}
SCENARIOS = ("idle", "two", "busy")
BUSY_LOOP = "while True: pass"


def openmp_runtime() -> str:
    """'gnu' (libgomp) or 'intel' (libiomp5): the OpenMP library torch ships, without loading it."""
    spec = importlib.util.find_spec("torch")
    lib = Path(spec.submodule_search_locations[0]) / "lib"
    return "intel" if any(lib.glob("libiomp5*")) else "gnu"


def policies(runtime: str) -> dict[str, dict[str, str]]:
    return GNU_POLICIES | (INTEL_POLICIES if runtime == "intel" else {})


def measure(
    cfg: TrainConfig, wait: dict[str, str], threads: int, scenario: str, runs: Path, timeout: float
) -> dict:
    """One cell: the processes' epoch seconds and the cell's steady-state epoch; None for a cell
    whose runs took over `timeout` seconds (spinning threads on busy cores can take 30x longer)."""
    env = product.child_env(runs, wait, OMP_NUM_THREADS=str(threads))
    torch_first = "OMP_WAIT_POLICY" not in wait
    burner = None
    if scenario == "busy":
        burner = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        seeds = (0, 1) if scenario == "two" else (0,)
        started = [product.start(replace(cfg, seed=s), env, "cpu", torch_first) for s in seeds]
        deadline = time.monotonic() + timeout
        done = [product.finish(s, max(1.0, deadline - time.monotonic())) for s in started]
    except TimeoutError:
        for s in started:  # the other run of the pair, if still going
            if s.proc.returncode is None:
                s.proc.kill()
                s.proc.wait()
                shutil.rmtree(s.out.parent, ignore_errors=True)
        return {"steady_epoch_s": None, "timed_out_s": timeout}
    finally:
        if burner is not None:
            burner.kill()  # only the loop this cell started
            burner.wait()
    steady = [d.steady_epoch_s for d in done]
    return {
        "steady_epoch_s": sum(steady) / len(steady),
        "first_epoch_s": [d.first_epoch_s for d in done],
        "epoch_seconds": [d.epoch_seconds for d in done],
    }


def _cell_text(cell: dict | None) -> str:
    if cell is None:
        return "-"
    if cell["steady_epoch_s"] is None:
        return f">{cell['timed_out_s']:.0f}s run"
    return f"{cell['steady_epoch_s']:.2f}"


def _figure(cell: dict) -> str:
    if cell["steady_epoch_s"] is None:
        return f"stopped: over {cell['timed_out_s']:.0f} s"
    return f"steady {cell['steady_epoch_s']:.2f} s, first {cell['first_epoch_s']}"


def print_table(cells: list[dict], names: list[str], threads: list[int]) -> None:
    cols = [(s, t) for s in SCENARIOS for t in threads]
    print(
        f"\nsteady-state epoch, seconds (JANet-50, MNIST, batch 128, {cells[0]['images']} images)"
    )
    print(f"{'policy':<22}" + "".join(f"{f'{s} {t}t':>10}" for s, t in cols))
    for name in names:
        by = {(c["scenario"], c["threads"]): c for c in cells if c["policy"] == name}
        line = "".join(f"{_cell_text(by.get(col)):>10}" for col in cols)
        print(f"{name:<22}{line}")


def run_table(args: argparse.Namespace, runtime: str) -> list[dict]:
    cfg = replace(CONFIG, epochs=args.epochs, limit_train=args.train_size)
    images = args.train_size or 58000  # MNIST's training set less the validation holdout
    cells = []
    with tempfile.TemporaryDirectory(prefix="aecore-threads-") as runs:
        # Warm-up: the test set's baselines land in the runs folder, the data in the page cache.
        product.run(replace(cfg, epochs=1, limit_train=1000), product.child_env(Path(runs)))
        for scenario in args.scenarios:
            for threads in args.threads:
                for name in args.policies:
                    wait = policies(runtime)[name]
                    cell = measure(cfg, wait, threads, scenario, Path(runs), args.cell_timeout)
                    cell |= {"policy": name, "env": wait, "threads": threads}
                    cells.append(cell | {"scenario": scenario, "images": images})
                    print(f"{scenario:<5} {threads}t {name:<22} {_figure(cell)}", flush=True)
    return cells


def main(argv: list[str] | None = None) -> int:
    runtime = openmp_runtime()
    names = list(policies(runtime))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="per run: the first + steady ones")
    parser.add_argument("--train-size", type=int, default=20000, help="training images; 0: all")
    parser.add_argument(
        "--cell-timeout", type=float, default=150, help="seconds before a cell's runs are stopped"
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--policies", nargs="+", choices=names, default=names)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    default_out = Path(__file__).resolve().parent / "results" / "threads.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2: the first epoch is not steady state")
    load = os.getloadavg()
    t0 = time.perf_counter()
    cells = run_table(args, runtime)
    print_table(cells, args.policies, args.threads)
    meta = {"openmp": runtime, "cpu_count": os.cpu_count(), "load_before": load}
    meta |= {"epochs": args.epochs, "seconds": time.perf_counter() - t0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "cells": cells}, indent=1))
    print(f"\n{time.perf_counter() - t0:.0f} s; load average before: {load}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
