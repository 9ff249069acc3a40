"""The app's default Train configuration from a click to its test results, as the server runs it.

A click on Train submits the sidebar's configuration to the job manager (aecore.jobs), which
trains it on a worker, evaluates it on the test set (metrics, the classical baselines) and saves
it; the page draws the results at its next poll. This times that path in one process, with the
manager the app builds (as many workers as the device takes, aecore.gpu.job_workers) and an empty
runs folder: from submit() to the job's "done", split into training and testing.

The default configuration is bundled, so in the app it shows at once without training; here it
trains with seeds that are not bundled (the same work). "cold" is the first run in a fresh process
(CUDA's context, kernel choices, the dataset's first load); "warm" is the next, as a second click
in a running server.

    python -m bench.click                    # on the fastest device (a GPU if there is one)
    python -m bench.click --device cpu
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

# isort: off
import aecore  # noqa: F401  first, as in the app: its OpenMP policy
import torch

# isort: on

from aecore import gpu, train
from aecore.config import TrainConfig
from aecore.data import available_offline
from aecore.jobs import JobManager
from aecore.presets import DEFAULT_KIND, preset_config

TARGET_S = 3.0  # issue #13: the default configuration from click to test results on an H100
UNBUNDLED_SEED = 100  # the bundled default has seed 0


def default_config() -> TrainConfig:
    """The app's default Train configuration (app_pages/_config.default_config, without
    Streamlit): the denoising preset on MNIST when it is on this machine, else on digits."""
    dataset = "mnist" if available_offline("mnist") else "digits"
    return preset_config(DEFAULT_KIND, dataset)


def time_click(manager: JobManager, cfg: TrainConfig) -> dict:
    """Seconds from submit to done, and the training and testing parts of it."""
    t0 = time.perf_counter()
    job = manager.submit(cfg, session="bench")
    snap = job.wait(timeout=600)
    total = time.perf_counter() - t0
    if snap.status != "done":
        raise RuntimeError(f"the run ended {snap.status}: {snap.error}")
    return {
        "click_to_results_s": total,
        "train_s": snap.train_seconds,
        "test_s": snap.test_seconds,
        "cached": snap.cached,
        "step": snap.checkpoint.info.get("step"),
        "psnr": snap.checkpoint.metrics.get("test_psnr"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the fastest)")
    parser.add_argument("--out", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.device:
        train.pick_device = lambda: torch.device(args.device)  # every run this process starts
    device = train.pick_device()
    cfg = default_config()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="aecore-click-") as runs:
        os.environ["AECORE_RUNS_DIR"] = runs  # an empty runs folder
        manager = JobManager(workers=gpu.job_workers(device), budget_seconds=None)
        for name, seed in (("cold", UNBUNDLED_SEED), ("warm", UNBUNDLED_SEED + 1)):
            rows[name] = time_click(manager, replace(cfg, seed=seed))
            r = rows[name]
            print(
                f"{name}: click to results {r['click_to_results_s']:.2f} s (training "
                f"{r['train_s']:.2f} s, testing {r['test_s']:.2f} s; {r['step']}; "
                f"PSNR {r['psnr']:.2f} dB) on {device}; target {TARGET_S:.0f} s",
                flush=True,
            )
        manager.shutdown(wait=False)
    result = {"device": str(device), "config": cfg.to_dict(), "rows": rows, "target_s": TARGET_S}
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
