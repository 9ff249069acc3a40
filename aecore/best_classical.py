"""The best classical method for a (dataset, corruption, level), tuned on validation images and
scored on the test set: the line every model is held against.

Tuning (aecore.classical) runs on VAL_IMAGES images of the training split's validation part,
which no model trains on, with their own noise draw (VAL_SEED); the test set is touched once,
by the winner. The result is kept as a small JSON file in <runs>/baselines/ (and shipped for the
bundled tasks in checkpoints/baselines/), so a page computes it once per task and reads it after.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aecore import classical, settings
from aecore.artifacts import write_atomic
from aecore.corruptions import corrupt, has_level
from aecore.data import ImageDataset, to_float
from aecore.evaluate import corrupted_test_set, dataset_fingerprint
from aecore.metrics import metric_key, mse, psnr, ssim
from aecore.train import split_indices

log = logging.getLogger(__name__)

FORMAT, VERSION = "aecore-best-classical", 2
VAL_IMAGES = 200  # tuning images: +-0.1 dB on the ranking of the methods measured here
VAL_SEED = 4321  # not the test set's seed: tuning never sees the test noise either
FOLDER = "baselines"
SUFFIX = "_best"  # its metrics' keys: test_psnr_best (aecore.metrics.METHODS)


@dataclass(frozen=True)
class BestClassical:
    """The winner, its tuned values, its test metrics, and every method's validation score."""

    method: str
    params: dict[str, Any]
    label: str  # "Adaptive median (max_size 9)"
    test: dict[str, float]  # mse, psnr, ssim on the test set
    ranking: tuple[tuple[str, float], ...]  # (tuned method label, validation dB), best first

    @property
    def psnr(self) -> float:
        return self.test["psnr"]

    def metrics(self) -> dict[str, float]:
        """Its test metrics under the keys of a run's metrics: test_psnr_best, ..."""
        return {metric_key(name, SUFFIX): value for name, value in self.test.items()}

    def describe(self) -> str:
        """One sentence for a caption: the winner, and how it was chosen."""
        others = ", ".join(f"{label} {db:.2f} dB" for label, db in self.ranking[1:])
        text = (
            f"Best classical: {self.label}, the best of {len(self.ranking)} classical methods "
            f"tuned on {VAL_IMAGES} validation images (never the test set)"
        )
        return text + (f"; the others there: {others}." if others else ".")


def validation_set(
    ds: ImageDataset, corruption: str, level: float, n: int = VAL_IMAGES
) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, noisy) validation images: the training split's held-out part, its own noise."""
    _, val_idx = split_indices(len(ds.train_images))
    clean = to_float(ds.train_images[val_idx[:n]])
    return clean, corrupt(corruption, clean, level, torch.Generator().manual_seed(VAL_SEED))


def best_classical(
    ds: ImageDataset,
    corruption: str,
    level: float,
    limit: int | None = None,
    keep_in: Path | None = None,
) -> BestClassical | None:
    """The tuned winner for this task (None when the corruption has no level: nothing to undo).
    Read from the cache when it was computed before; `limit` scores the first test images only.
    A new result is kept in the runs folder, or in `keep_in` (the bundled folder, when the
    bundled models' tasks are precomputed by aecore.pretrain)."""
    if not has_level(corruption):
        return None
    key = _key(ds, corruption, level, limit)
    for folder in _folders():
        found = _read(folder / _file_name(ds.name, key), key)
        if found is not None:
            if keep_in is not None and folder != keep_in:
                _write(keep_in / _file_name(ds.name, key), key, found)
            return found
    result = _compute(ds, corruption, level, limit)
    _write((keep_in or _folders()[0]) / _file_name(ds.name, key), key, result)
    return result


def _compute(ds: ImageDataset, corruption: str, level: float, limit: int | None) -> BestClassical:
    ranked = classical.rank(corruption, *validation_set(ds, corruption, level))
    winner = ranked[0]
    clean, noisy = corrupted_test_set(ds, corruption, level, "cpu", limit)
    out = classical.apply(winner.method, noisy, winner.params)
    test = {
        "mse": float(mse(out, clean).mean()),
        "psnr": float(psnr(out, clean).mean()),
        "ssim": float(ssim(out, clean).mean()),
    }
    ranking = tuple((t.label, round(t.val_psnr, 3)) for t in ranked)
    return BestClassical(winner.method, winner.params, winner.label, test, ranking)


# -- the cache --------------------------------------------------------------------------------


def _folders() -> list[Path]:
    now = settings.current()
    return [now.runs_dir / FOLDER, now.bundled_dir / FOLDER]


def _key(ds: ImageDataset, corruption: str, level: float, limit: int | None) -> dict[str, Any]:
    methods = {
        name: classical.CLASSICAL[name].meta["grid"]
        for name in classical.methods_for(corruption, min(ds.shape[1:]))
    }
    return {
        "format": FORMAT,
        "version": VERSION,
        "dataset": ds.name,
        "data_sha256": dataset_fingerprint(ds),
        "corruption": corruption,
        "level": float(level),
        "limit": limit,
        "methods": json.loads(json.dumps(methods)),  # tuples as lists, as JSON reads them back
        "val_images": VAL_IMAGES,
    }


def _file_name(dataset: str, key: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
    return f"{dataset}-classical-{digest}.json"


def _read(path: Path, key: dict[str, Any]) -> BestClassical | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["key"] != key:
            raise ValueError("another task")
        result = BestClassical(
            str(data["method"]),
            dict(data["params"]),
            str(data["label"]),
            {k: float(data["test"][k]) for k in ("mse", "psnr", "ssim")},
            tuple((str(label), float(db)) for label, db in data["ranking"]),
        )
        if data["method"] not in classical.CLASSICAL or not all(
            math.isfinite(v) for v in result.test.values()
        ):
            raise ValueError("an unknown method or a value that is not a number")
        return result
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as err:
        log.warning("ignoring best-classical cache file %s (%s)", path.name, err)
        return None


def _write(path: Path, key: dict[str, Any], result: BestClassical) -> None:
    record = {
        "key": key,
        "method": result.method,
        "params": result.params,
        "label": result.label,
        "test": result.test,
        "ranking": [list(item) for item in result.ranking],
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(record, sort_keys=True, indent=1).encode())
    except OSError as err:  # a read-only or full disk: computed again next time, never fatal
        log.warning("could not keep the best-classical result in %s: %s", path, err)
