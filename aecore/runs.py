"""Train, evaluate and save in one call; or load the run if it was trained before.

Every save also keeps the runs folder within its size limit (aecore.runcache): the runs used
least recently are deleted, never the one just saved. Every save is indexed (aecore.runindex),
so pages list runs without loading them. The test metrics of the baselines are kept
in its baselines/ subfolder (small JSON files), which runcache leaves alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import torch

from aecore import runcache, runindex
from aecore.checkpoints import (
    Checkpoint,
    checkpoint_name,
    hardware,
    load_for,
    runs_dir,
    save_checkpoint,
)
from aecore.config import TrainConfig
from aecore.data import load_dataset
from aecore.evaluate import baseline_metrics, evaluate
from aecore.history import EpochStats
from aecore.train import train

BASELINES_SUBDIR = "baselines"  # in the runs folder: the baselines' metrics, as JSON files


def train_and_save(
    cfg: TrainConfig,
    on_epoch: Callable[[EpochStats], None] = lambda stats: None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[float], None] = lambda fraction: None,
    device: torch.device | str | None = None,
    out_dir: Path | None = None,
) -> Checkpoint | None:
    """Train cfg, evaluate it on the test set and save it. A cancelled run saves nothing: None."""
    ds = load_dataset(cfg.dataset)
    t0 = time.perf_counter()
    result = train(cfg, on_epoch, should_stop, on_batch, device=device, dataset=ds)
    if result.cancelled:
        return None
    seconds = time.perf_counter() - t0
    folder = out_dir or runs_dir()
    # The baselines' metrics do not depend on the model: computed once per dataset, corruption
    # and level, and kept next to the runs (aecore.evaluate.baseline_metrics). Read here; written
    # only once the run is saved, since a cancelled run writes nothing.
    baselines = runs_dir() / BASELINES_SUBDIR  # never the bundled folder: a cache, not a model
    metrics = evaluate(
        result.model,
        ds,
        cfg.corruption,
        cfg.level,
        cfg.loss,
        cache_dir=baselines,
        write_cache=False,
    )
    metrics["sec_per_epoch"] = result.sec_per_epoch
    info = {
        "device": result.device,
        "hardware": hardware(),
        "train_seconds": seconds,
        "shape": list(ds.shape),
        # How the step ran: a replayed CUDA graph, or eagerly and why (aecore.cudagraph's
        # reasons each begin with "eager").
        "step": result.eager_reason or "cuda graph",
    }
    path = folder / checkpoint_name(cfg)
    if should_stop():  # cancelled while it was being evaluated: still nothing is written
        return None
    save_checkpoint(path, cfg, result.model, result.history, metrics, info)
    runindex.write_entry(path, cfg, metrics, info, len(result.history))  # pages list from it
    device_used = next(result.model.parameters()).device
    baseline_metrics(
        ds, cfg.corruption, cfg.level, result.model.latent, device_used, None, baselines
    )
    runcache.evict(folder, runcache.max_bytes(), keep={path})
    return Checkpoint(cfg, result.model.eval(), result.history, metrics, info | {"path": str(path)})


def load_or_train(cfg: TrainConfig, device=None, **train_kwargs) -> tuple[Checkpoint | None, bool]:
    """(checkpoint, cached): a saved run for cfg if one loads, else a freshly trained one. A
    corrupt or mismatched file is logged, moved aside and trained again (checkpoints.load_for)."""
    ckpt = load_for(cfg, device or "cpu")
    if ckpt is not None:
        return ckpt, True
    return train_and_save(cfg, device=device, **train_kwargs), False
