"""Testing a model on the whole test set: in batches of 1,000 against aecore's choice.

Every run in the app and on the command line ends with `aecore.evaluate.evaluate` on the test
set; `inference_batch` picks the images per forward pass (128 for a conv model on a CPU, else
1,000). This times evaluate() both ways on the same freshly built model, the two alternating
round by round, after one untimed call that fills the baselines' cache (the median filters and
PCA are the same either way). aecore is imported first, as the app and the command line import
it, so OpenMP's threads wait as there (aecore/threads.py).

    python -m bench.evaluation                       # five models on MNIST, 3 rounds: about 1 min
    python -m bench.evaluation --dataset digits --models conv_same --rounds 1   # does it work?
"""

from __future__ import annotations

import argparse
import statistics
import time

# isort: off
import aecore  # noqa: F401  first, as in the app and the command line: its OpenMP policy
import torch

# isort: on
from aecore import evaluate as ev
from aecore.config import TrainConfig
from aecore.data import load_dataset
from aecore.train import init_model

MODELS = ("conv_same", "conv_pool", "unet", "vae_conv", "janet")


def seconds(model, ds, batch: int | None) -> float:
    start = time.perf_counter()
    ev.evaluate(model, ds, "gaussian", 0.5, "mse", batch=batch)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    ds = load_dataset(args.dataset)
    cpu = torch.device("cpu")
    print(f"{len(ds.test_images):,} {args.dataset} test images, {args.rounds} rounds, seconds:")
    print(f"{'model':10s} {'batch':>5s} {'in 1,000s':>15s} {'chosen':>15s} {'ratio':>6s}")
    for name in args.models:
        cfg = TrainConfig(dataset=args.dataset, model=name, latent=32, corruption="gaussian")
        model = init_model(cfg, ds.shape, cpu)
        ev.evaluate(model, ds, "gaussian", 0.5, "mse")  # the baselines, cached for both
        large, chosen = [], []
        for _ in range(args.rounds):
            large.append(seconds(model, ds, ev.BATCH))
            chosen.append(seconds(model, ds, None))
        ratio = statistics.median(chosen) / statistics.median(large)
        print(
            f"{name:10s} {ev.inference_batch(model, cpu):5d} "
            f"{min(large):6.2f} - {max(large):6.2f} {min(chosen):6.2f} - {max(chosen):6.2f} "
            f"{ratio:6.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
