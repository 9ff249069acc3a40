"""The classic latent-size comparison: a shallow dense autoencoder against PCA with as many
components as the code, on clean images (experiments/RESULTS.md, section 2).

On MNIST the bundled dense1_mnist ... dense32_mnist checkpoints have exactly these configs, so
the app shows the sweep without training; other datasets use the same settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from aecore.baselines import PCABasis, pca_reconstruct
from aecore.checkpoints import Checkpoint
from aecore.config import TrainConfig
from aecore.data import DATASETS, ImageDataset, to_float
from aecore.evaluate import pca_for, reconstruct
from aecore.latent import encode_all
from aecore.metrics import mse

LATENTS = (1, 2, 8, 32)


def sweep_config(dataset: str, latent: int) -> TrainConfig:
    """The dense AE of the sweep at one code size: clean inputs, MSE, Adam 1e-3, batch 128."""
    return TrainConfig(
        dataset=dataset,
        corruption="none",
        level=0.0,
        model="dense",
        latent=latent,
        lr=1e-3,
        batch_size=128,
        # 20 epochs of MNIST are ~8,600 steps; a small dataset's meta asks for more epochs
        epochs=DATASETS[dataset].meta["sweep_epochs"],
    )


@dataclass(frozen=True)
class SweepPoint:
    latent: int
    pca_mse: float  # test MSE per pixel of PCA with `latent` components (clipped to [0, 1])
    ae_mse: float | None  # the dense AE's test MSE per pixel; None while it is not trained
    # The AE's code units that are 0 for every test image (a ReLU unit whose hyperplane has all
    # the images on its dark side): the code really has latent - dead_units numbers.
    dead_units: int | None = None


def sweep_points(ds: ImageDataset, runs: Mapping[int, Checkpoint | None]) -> list[SweepPoint]:
    """Test MSE per pixel on the whole (clean) test set for every latent size in `runs`: PCA
    always (fitted on the clean training images, cached per process), the AE where trained,
    with its dead code units."""
    clean = to_float(ds.test_images)
    points = []
    for k, ckpt in sorted(runs.items()):
        pca = float(mse(pca_reconstruct(_pca(ds, k, max(runs)), clean), clean).mean())
        if ckpt is None:
            points.append(SweepPoint(k, pca, None))
            continue
        dead = dead_units(encode_all(ckpt.model, clean))
        points.append(SweepPoint(k, pca, ckpt.metrics.get("test_mse"), dead))
    return points


def dead_units(codes: torch.Tensor) -> int:
    """How many code units (columns of codes, one row per image) are 0 for every image."""
    return int((codes.abs().amax(dim=0) == 0).sum())


def sweep_rows(
    ds: ImageDataset, runs: Mapping[int, Checkpoint | None], n: int = 10
) -> dict[str, torch.Tensor]:
    """Image rows for a grid: the first n clean test images, then per latent size the AE's and
    PCA's reconstructions (the AE row only where it is trained)."""
    clean = to_float(ds.test_images[:n])
    rows = {"Original": clean}
    for k, ckpt in sorted(runs.items()):
        if ckpt is not None:
            rows[f"AE, k = {k}"] = reconstruct(ckpt.model, clean)
        rows[f"PCA, k = {k}"] = pca_reconstruct(_pca(ds, k, max(runs)), clean)
    return rows


def _pca(ds: ImageDataset, k: int, k_max: int) -> PCABasis:
    # fit_pca sorts one eigendecomposition of the covariance, so the first k of k_max components
    # are exactly the k-component fit: one fit serves every size (each costs seconds on MNIST).
    basis = pca_for(ds, k_max)
    return PCABasis(basis.mean, basis.components[:k])


def verdict(points: list[SweepPoint]) -> str:
    """One sentence: at which trained sizes the AE beats PCA (lower test MSE) and loses."""
    trained = [p for p in points if p.ae_mse is not None]
    if not trained:
        return "No autoencoder of the sweep is trained yet."
    wins = [p.latent for p in trained if p.ae_mse < p.pca_mse]
    losses = [p.latent for p in trained if p.ae_mse >= p.pca_mse]
    parts = []
    if losses:
        parts.append(f"loses to PCA at k = {_list(losses)}")
    if wins:
        parts.append(f"beats PCA at k = {_list(wins)}")
    return "The shallow AE " + " and ".join(parts) + " (test MSE)."


def _list(values: list[int]) -> str:
    return ", ".join(str(v) for v in values)
