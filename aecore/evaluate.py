"""Test-set evaluation: a model against the noisy input and the classical baselines.

Every method sees the same corrupted test images (a fixed seed), so the numbers compare.
"""

from __future__ import annotations

import threading

import torch

from aecore.baselines import PCABasis, fit_pca, median_filter, pca_reconstruct
from aecore.corruptions import corrupt
from aecore.data import ImageDataset, to_float
from aecore.metrics import mse, psnr, ssim
from aecore.models import Autoencoder
from aecore.train import batch_terms

TEST_SEED = 1234

# Caches are keyed by the dataset object's identity, not its name: tests (and AECORE_DATA_DIR
# changes) can load two different "mnist"s. Each entry keeps its dataset alive, so no id is reused.
_pca_cache: dict[tuple, tuple[ImageDataset, PCABasis]] = {}
_pca_lock = threading.Lock()


def pca_for(ds: ImageDataset, k: int, device: torch.device | str = "cpu") -> PCABasis:
    """PCA with k components fitted on the clean training images, cached per process."""
    key = (id(ds), k, str(device))
    with _pca_lock:
        if key not in _pca_cache:
            _pca_cache[key] = (ds, fit_pca(to_float(ds.train_images).to(device), k))
        return _pca_cache[key][1]


def corrupted_test_set(
    ds: ImageDataset, corruption: str, level: float, device, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, noisy) test images, the noise drawn with TEST_SEED."""
    clean = to_float(ds.test_images[:limit]).to(device)
    gen = torch.Generator(device).manual_seed(TEST_SEED)
    return clean, corrupt(corruption, clean, level, gen) if corruption != "none" else clean


def _quality(prefix: str, x: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    return {
        f"test_mse{prefix}": float(mse(x, clean).mean()),
        f"test_psnr{prefix}": float(psnr(x, clean).mean()),
        f"test_ssim{prefix}": float(ssim(x, clean).mean()),
    }


@torch.no_grad()
def reconstruct(model: Autoencoder, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    model.eval()
    return torch.cat([model.reconstruct(x) for x in images.split(batch)])


def evaluate(
    model: Autoencoder,
    ds: ImageDataset,
    corruption: str,
    level: float,
    loss: str,
    limit: int | None = None,
    batch: int = 1000,
) -> dict[str, float]:
    """Metrics on the test set. Keys: test_loss, test_recon (and test_kl for a VAE);
    test_{mse,psnr,ssim} for the model and with suffixes _noisy, _median3, _median5 and
    (for models with a latent size) _pca, the PCA having as many components as the code."""
    device = next(model.parameters()).device
    clean, noisy = corrupted_test_set(ds, corruption, level, device, limit)
    model.eval()
    model.generator = torch.Generator(device).manual_seed(TEST_SEED + 1)
    sums: dict[str, float] = {}
    for x, target in zip(noisy.split(batch), clean.split(batch), strict=True):
        for k, v in batch_terms(model, x, target, loss).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(x)
    model.generator = None
    out = {f"test_{'loss' if k == 'loss' else k}": v / len(clean) for k, v in sums.items()}
    out |= _quality("", reconstruct(model, noisy, batch), clean)
    return out | baseline_metrics(ds, corruption, level, model.latent, device, limit)


_baseline_cache: dict[tuple, tuple[ImageDataset, dict[str, float]]] = {}


def baseline_metrics(
    ds: ImageDataset, corruption: str, level: float, k: int, device, limit: int | None = None
) -> dict[str, float]:
    """Noisy-input, median and (k > 0) PCA metrics; they do not depend on the model, and the
    median filters cost more than a short training run, so they are computed once per process."""
    key = (id(ds), corruption, float(level), k, str(device), limit)
    if key not in _baseline_cache:
        clean, noisy = corrupted_test_set(ds, corruption, level, device, limit)
        out = _quality("_noisy", noisy, clean)
        out |= _quality("_median3", median_filter(noisy, 3), clean)
        out |= _quality("_median5", median_filter(noisy, 5), clean)
        if k:
            out |= _quality("_pca", pca_reconstruct(pca_for(ds, k, device), noisy), clean)
        with _pca_lock:
            _baseline_cache[key] = (ds, out)
    return dict(_baseline_cache[key][1])
