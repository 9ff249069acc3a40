"""Testing and validating a model: in batches of 1,000 images against aecore's choice.

Every run ends with `aecore.evaluate.evaluate` on the test set, and each of its epochs with
`aecore.train.validate` on the validation images; `aecore.losses.inference_batch` picks the images
per forward pass of both (128 for a conv model on a CPU, but 1,000 for a VAE or an MLP). This
times both ways on the same freshly built model, alternating round by round, after one untimed
test that fills the baselines' cache (the median filters and PCA are the same either way).
aecore is imported first, as the app and the command line import it, so OpenMP's threads wait
as there (aecore/threads.py).

    python -m bench.evaluation                       # five models on MNIST, 3 rounds: about 2 min
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
from aecore import losses
from aecore.config import TrainConfig
from aecore.data import load_dataset
from aecore.train import _prepare, validate

MODELS = ("conv_same", "conv_pool", "unet", "vae_conv", "janet")


def _seconds(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def _span(values: list[float]) -> str:
    return f"{min(values):.2f}-{max(values):.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    ds = load_dataset(args.dataset)
    cpu = torch.device("cpu")
    print(f"{args.dataset}, {args.rounds} rounds, seconds (test set; validation images):")
    print(
        f"{'model':10s} {'batch':>5s} {'test 1,000s':>12s} {'chosen':>12s} {'ratio':>6s} "
        f"{'val 1,000s':>12s} {'chosen':>12s} {'ratio':>6s}"
    )
    for name in args.models:
        cfg = TrainConfig(dataset=args.dataset, model=name, latent=32, corruption="gaussian")
        model, _, val_x = _prepare(cfg, ds, cpu)  # as training holds it (channels-last)
        ev.evaluate(model, ds, "gaussian", 0.5, "mse")  # the baselines, cached for both
        times: dict[str, list[float]] = {"test": [], "test_chosen": [], "val": [], "val_chosen": []}
        for _ in range(args.rounds):
            for batch, suffix in ((losses.BATCH, ""), (None, "_chosen")):
                test = _seconds(ev.evaluate, model, ds, "gaussian", 0.5, "mse", batch=batch)
                times["test" + suffix].append(test)
                times["val" + suffix].append(_seconds(validate, model, val_x, cfg, batch))
        medians = {k: statistics.median(v) for k, v in times.items()}
        print(
            f"{name:10s} {losses.inference_batch(model, cpu):5d} "
            f"{_span(times['test']):>12s} {_span(times['test_chosen']):>12s} "
            f"{medians['test_chosen'] / medians['test']:6.2f} "
            f"{_span(times['val']):>12s} {_span(times['val_chosen']):>12s} "
            f"{medians['val_chosen'] / medians['val']:6.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
