"""What a training run will cost, estimated before it is queued, and the budget it must fit.

The estimate is steps x seconds per step, where a step's time is measured on this machine: the
config's model takes a few real optimizer steps on random images at the config's batch size (a
batch of 1 costs far more per image than a batch of 128, so it is timed, not scaled). Timings are
cached per (model, shape, code size, width, regulariser, batch size), so an estimate after the
first one is free. Testing after training is estimated from the same timing.

A shared server refuses runs over its budget (JobManager(budget_seconds=...)); the command line
trains what it is asked to.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace

import torch

from aecore.config import TrainConfig
from aecore.data import DATASETS
from aecore.train import VAL_FRACTION, VAL_MAX, init_model, make_optimizer, step_autocast

TIMED_STEPS = 3  # the fastest of these is the step time (the first one warms up)
MAX_TIMED_BATCH = 512  # a bigger batch is timed at this size and scaled: it costs per image
TEST_IMAGES = 10_000  # testing runs the model, baselines and metrics over the test set
TEST_COST = 1.5  # a test image costs about this many training images (baselines, metrics)

_step_seconds: dict[tuple, float] = {}
_lock = threading.Lock()


class OverBudget(ValueError):
    """A run's estimate is over the budget; the message gives it and a cheaper config."""


@dataclass(frozen=True)
class Estimate:
    seconds: float  # training and testing
    steps: int
    step_seconds: float
    test_seconds: float


def train_images(cfg: TrainConfig) -> int:
    """The number of images one epoch trains on (the validation hold-out taken off)."""
    n = DATASETS[cfg.dataset].meta["train_size"]
    n -= min(VAL_MAX, int(n * VAL_FRACTION))
    return min(n, cfg.limit_train) if cfg.limit_train else n


def step_seconds(cfg: TrainConfig, device: torch.device | str = "cpu") -> float:
    """Seconds for one optimizer step of cfg's model at cfg's batch size, measured once."""
    batch = min(cfg.batch_size, MAX_TIMED_BATCH)
    shape = tuple(DATASETS[cfg.dataset].meta["shape"])
    model = (cfg.model, shape, cfg.latent, cfg.width, cfg.regularizer, cfg.precision)
    key = (*model, batch, str(device))
    with _lock:
        if key in _step_seconds:
            return _step_seconds[key] * cfg.batch_size / batch
    timed = _time_steps(cfg, shape, batch, torch.device(device))
    with _lock:
        _step_seconds[key] = timed
    return timed * cfg.batch_size / batch


def _time_steps(cfg: TrainConfig, shape, batch: int, device: torch.device) -> float:
    torch.manual_seed(0)
    model = init_model(cfg, shape, device)
    opt = make_optimizer(cfg, model)
    x = torch.rand((batch, *shape), device=device)
    best = math.inf
    for _ in range(TIMED_STEPS):
        t0 = time.perf_counter()
        with step_autocast(cfg, device):
            terms = model.loss_terms(x, x, cfg.loss)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        best = min(best, time.perf_counter() - t0)
    return best


def estimate(cfg: TrainConfig, device: torch.device | str = "cpu") -> Estimate:
    """Training plus testing time of cfg on this machine, in seconds."""
    step = step_seconds(cfg, device)
    steps = cfg.epochs * math.ceil(train_images(cfg) / cfg.batch_size)
    # Tests run in big batches, and in float32 whatever the training's precision.
    per_image = step_seconds(replace(cfg, batch_size=128, precision="fp32"), device) / 128
    test = per_image * TEST_IMAGES * TEST_COST / 3  # forward only: about a third of a step
    return Estimate(steps * step + test, steps, step, test)


def check_budget(cfg: TrainConfig, budget_seconds: float, device="cpu") -> Estimate:
    """The estimate, or OverBudget with a cheaper config that fits (fewer epochs, then fewer
    images, then a larger batch)."""
    est = estimate(cfg, device)
    if est.seconds <= budget_seconds:
        return est
    raise OverBudget(
        f"This run would take about {_minutes(est.seconds)} here, and runs on this server are "
        f"limited to {_minutes(budget_seconds)} so that everyone gets a turn. "
        f"{_suggestion(cfg, budget_seconds, device)}"
    )


def _suggestion(cfg: TrainConfig, budget: float, device) -> str:
    est = estimate(cfg, device)
    per_epoch = (est.seconds - est.test_seconds) / cfg.epochs
    epochs = int((budget - est.test_seconds) // per_epoch)
    if epochs >= 1:
        return f"With {epochs} epoch{'s' if epochs != 1 else ''} instead of {cfg.epochs} it fits."
    one = estimate(replace(cfg, epochs=1), device)
    share = (budget - one.test_seconds) / (one.seconds - one.test_seconds)
    images = int(train_images(cfg) * share / 1000) * 1000
    if images >= 1000:
        return f"With 1 epoch on {images:,} training images it fits."
    if cfg.batch_size < 64:
        return "Try a batch size of 64 or more: small batches cost far more per image."
    return "Try a smaller model or a smaller dataset."


def _minutes(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} minutes"
    return f"{seconds / 3600:.1f} hours"
