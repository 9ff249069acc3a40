"""How long a page waits for the best classical method of a task: the first time (tuning every
suitable method on validation images, then the winner on the test set) and every time after
(the result read back from the runs folder), each in a fresh process as a restarted server sees
it, after the dataset is loaded (which every page has done before it asks).

    python -m bench.classical              # F-MNIST salt and pepper 0.5, MNIST Gaussian 0.5
    python -m bench.classical --rounds 3

Prints one row per task and writes bench/results/classical.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TASKS = (("fashion_mnist", "salt_pepper", 0.5), ("mnist", "gaussian", 0.5))
RESULTS = Path(__file__).resolve().parent / "results" / "classical.json"

# Run in the child: time best_classical() alone, the dataset already in memory. With "runs" the
# bundled results (checkpoints/baselines/) are hidden, as for a task nobody bundled.
CHILD = """
import json, sys, time
from aecore import best_classical as B
from aecore.best_classical import best_classical
from aecore.data import load_dataset
dataset, corruption, level, where = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
if where == "runs":
    folders = B._folders
    B._folders = lambda: folders()[:1]
ds = load_dataset(dataset)
t0 = time.perf_counter()
best = best_classical(ds, corruption, level)
print(json.dumps({"seconds": time.perf_counter() - t0, "label": best.label, "psnr": best.psnr}))
"""


def timed(task: tuple[str, str, float], runs_dir: str, where: str = "runs") -> dict:
    env = os.environ | {"AECORE_RUNS_DIR": runs_dir}
    argv = [sys.executable, "-c", CHILD, *map(str, task), where]
    out = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2, help="cached reads per task")
    args = parser.parse_args(argv)
    rows = []
    for task in TASKS:
        with tempfile.TemporaryDirectory() as runs_dir:  # an empty runs folder: a first visit
            first = timed(task, runs_dir)
            again = [timed(task, runs_dir)["seconds"] for _ in range(args.rounds)]
        with tempfile.TemporaryDirectory() as runs_dir:  # a bundled task: shipped with the app
            bundled = timed(task, runs_dir, "bundled")["seconds"]
        rows.append({"task": task, **first, "cached_seconds": again, "bundled_seconds": bundled})
        print(
            f"{' '.join(map(str, task)):28s} first {first['seconds']:6.1f} s   cached "
            + " ".join(f"{s:.3f}" for s in again)
            + f" s   bundled {bundled:.3f} s   {first['label']}: {first['psnr']:.2f} dB",
            flush=True,
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
