"""Do the conv models collapse? Every conv model x seeds, a short run, against the median filter.

Issue #11's check: each conv model, seeds 0-2, 1 epoch on 10,000 MNIST training images with
Gaussian noise sigma 0.5, trained by aecore's own trainer (aecore.train, as the app runs it) at
the app presets' learning rate (3e-3, aecore/presets.py), must beat the 3x3 median filter on the
test set. Printed per run: test PSNR, the median filter's, the margin, how much the outputs vary
across images relative to the clean images (near 0: collapsed), and aecore.quality's verdict.

    AECORE_DATA_DIR=../shared/data python -m bench.collapse            # the issue's table
    python -m bench.collapse --models conv_same conv_same_plain --lr 1e-3
    python -m bench.collapse --dataset digits --limit 0 --epochs 20    # offline, seconds

vae_conv is judged by the PSNR of its reconstruction (from the posterior mean) like the others,
but the criterion does not fit a VAE well: its loss trades reconstruction for a KL term, and in
its first epoch its code often carries nothing about the input yet (posterior collapse).
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from aecore import quality
from aecore.config import TrainConfig
from aecore.corruptions import has_level
from aecore.data import load_dataset
from aecore.evaluate import evaluate
from aecore.train import train

CONV_MODELS = ["conv_same", "conv_pool", "conv_transpose", "unet", "vae_conv"]
APP_LR = 3e-3  # the Learn presets' and the app's default learning rate (aecore/presets.py)


@dataclass(frozen=True)
class Row:
    model: str
    seed: int
    psnr: float
    median3: float
    margin: float
    spread: float  # test_output_std / test_clean_std: near 0 when the outputs are all alike
    warning: str | None
    seconds: float


def run_one(cfg: TrainConfig, ds, device: str = "cpu") -> Row:
    t0 = time.perf_counter()
    result = train(cfg, device=device, dataset=ds)
    seconds = time.perf_counter() - t0
    m = evaluate(result.model, ds, cfg.corruption, cfg.level, cfg.loss)
    return Row(
        model=cfg.model,
        seed=cfg.seed,
        psnr=m["test_psnr"],
        median3=m["test_psnr_median3"],
        margin=m["test_psnr"] - m["test_psnr_median3"],
        spread=m["test_output_std"] / m["test_clean_std"],
        warning=quality.check(m, corrupted=has_level(cfg.corruption)),
        seconds=seconds,
    )


def config(model: str, seed: int, args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        dataset=args.dataset,
        model=model,
        corruption="gaussian",
        level=args.level,
        loss=args.loss,
        lr=args.lr,
        batch_size=args.batch_size,
        epochs=args.epochs,
        limit_train=args.limit,
        seed=seed,
        latent=args.latent,
    )


def table(rows: list[Row]) -> str:
    head = "| model | seed | PSNR (dB) | median3 (dB) | margin (dB) | output spread | check | s |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        verdict = "ok" if r.warning is None else r.warning.split("**")[1].rstrip(".")
        lines.append(
            f"| {r.model} | {r.seed} | {r.psnr:.2f} | {r.median3:.2f} | {r.margin:+.2f} | "
            f"{r.spread:.3f} | {verdict} | {r.seconds:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=CONV_MODELS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--limit", type=int, default=10_000, help="training images (0: all)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=APP_LR)
    parser.add_argument("--loss", default="mse")
    parser.add_argument("--level", type=float, default=0.5, help="Gaussian sigma")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--latent", type=int, default=32, help="code size of vae_conv")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="also write the rows as JSON here")
    args = parser.parse_args(argv)

    ds = load_dataset(args.dataset)
    print(
        f"{args.dataset}, {args.limit or 'all'} training images, {args.epochs} epoch(s), "
        f"Gaussian {args.level}, {args.loss}, Adam lr {args.lr:g}, batch {args.batch_size}, "
        f"{args.device}, {torch.get_num_threads()} threads",
        flush=True,
    )
    rows = []
    for model in args.models:
        for seed in args.seeds:
            rows.append(run_one(config(model, seed, args), ds, args.device))
            r = rows[-1]
            print(f"  {model} seed {seed}: {r.psnr:.2f} dB (median3 {r.median3:.2f})", flush=True)
    print(table(rows))
    beaten = [r for r in rows if r.margin <= 0]
    print(f"{len(rows) - len(beaten)} of {len(rows)} runs beat the 3x3 median filter")
    if args.out:
        Path(args.out).write_text(json.dumps([r.__dict__ for r in rows], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
