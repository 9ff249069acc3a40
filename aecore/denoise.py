"""What the Denoise page computes, without a UI: a trained model against the classical filters on
test images, on an uploaded image, and across corruption levels (the severity sweep).

Images are float (N, C, H, W) in [0, 1]; results are on the CPU, ready to draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from aecore import classical
from aecore.baselines import median_filter, pca_reconstruct
from aecore.best_classical import BestClassical
from aecore.corruptions import CORRUPTIONS, corrupt, has_level
from aecore.data import ImageDataset
from aecore.evaluate import pca_for, reconstruct
from aecore.metrics import METHODS, metric_key
from aecore.models import Autoencoder

SWEEP_LEVELS = 6  # levels of the severity sweep (the trained level is added to them)
UPLOAD_SEED = 0  # an upload is corrupted the same way on every rerun of the page
UPLOAD_COLUMNS = ("yours", "corrupted", "autoencoder")


def comparison_rows(
    model: Autoencoder,
    ds: ImageDataset,
    clean: torch.Tensor,
    noisy: torch.Tensor,
    best: BestClassical | None = None,
) -> dict[str, torch.Tensor]:
    """{row name: images}: the clean and corrupted test images, the model's reconstruction, a
    3x3 median filter, the best tuned classical method (if given) and, for a model with a code
    size, PCA with as many components as the code (as in the run's metrics; its basis is fitted
    on ds's training images, once)."""
    rows = {"Original": clean, "Corrupted": noisy, "Autoencoder": reconstruct(model, noisy)}
    rows["Median 3x3"] = median_filter(noisy, 3)
    if best is not None:
        rows["Best classical"] = classical.apply(best.method, noisy, best.params)
    if model.latent:
        rows[f"PCA ({model.latent})"] = pca_reconstruct(pca_for(ds, model.latent), noisy)
    return rows


def upload_row(
    model: Autoencoder, image: torch.Tensor, corruption: str, level: float, invert: bool
) -> torch.Tensor:
    """(3, C, H, W) for one uploaded image (1, C, H, W): the image (negated if `invert`), it
    corrupted at `level` with a fixed seed, and the model's reconstruction of that; the columns
    are UPLOAD_COLUMNS."""
    x = 1.0 - image if invert else image
    if has_level(corruption):
        noisy = corrupt(corruption, x, level, torch.Generator().manual_seed(UPLOAD_SEED))
    else:
        noisy = x
    return torch.cat([x, noisy, reconstruct(model, noisy)])


def sweep_levels(corruption: str, trained_level: float, count: int = SWEEP_LEVELS) -> list[float]:
    """`count` evenly spaced levels over the corruption's range, on its slider's grid (0.35, not
    0.3333), with the trained level among them. Level 0 is left out: an uncorrupted input scores
    the metric's 100 dB cap and would flatten every other line. Integer levels stay integers."""
    meta = CORRUPTIONS[corruption].meta
    cast = int if meta.get("integer") else float
    step = float(meta["step"])
    grid = np.linspace(meta["min"], meta["max"], count + 1)[1:]
    levels = {cast(round(round(float(x) / step) * step, 4)) for x in grid}
    if trained_level > 0:
        levels.add(cast(trained_level))
    return sorted(levels)


def sweep_series(results: Sequence[Mapping[str, float]], metric: str) -> dict[str, list[float]]:
    """{method's short name: its `metric` at each level} from one metrics dict per level (keys
    as in Checkpoint.metrics); methods missing from the results are left out."""
    return {
        method.short: [r[metric_key(metric, suffix)] for r in results]
        for suffix, method in METHODS.items()
        if results and metric_key(metric, suffix) in results[0]
    }
