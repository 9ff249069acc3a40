"""Image-quality metrics for batches of images.

All inputs are float tensors of shape (N, C, H, W) with values in [0, data_range] (normally
[0, 1]); every metric returns one value per image, shape (N,), on the input's device.
METHODS and METRICS name the keys of a run's test metrics (test_psnr_noisy, ...) for tables and
charts.
"""

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class Method:
    """One method behind a run's test metrics (aecore.evaluate): `label` names its row in a
    table, `short` its line in a chart. corrupted_only: it is compared only on corrupted inputs
    (without corruption the input is the target itself, and filtering it only loses detail)."""

    label: str
    short: str
    corrupted_only: bool = False


# The one table of the metric keys' names: test_<metric><suffix>, e.g. test_psnr_median3.
METHODS: dict[str, Method] = {
    "": Method("Autoencoder", "Autoencoder"),
    "_noisy": Method("Corrupted input", "Corrupted input", corrupted_only=True),
    "_median3": Method("Median filter 3x3", "Median 3x3", corrupted_only=True),
    "_median5": Method("Median filter 5x5", "Median 5x5", corrupted_only=True),
    # The strongest classical method for the task, tuned on validation images (best_classical)
    "_best": Method("Best classical, tuned", "Best classical", corrupted_only=True),
    "_pca": Method("PCA, k = code size", "PCA"),
}
# metric -> (column label, display format); the order of a metrics table's columns.
METRICS: dict[str, tuple[str, str]] = {
    "psnr": ("PSNR (dB)", "{:.2f}"),
    "ssim": ("SSIM", "{:.3f}"),
    "mse": ("MSE", "{:.4f}"),
}


def metric_key(metric: str, suffix: str = "") -> str:
    """The key of a test metric: metric_key("psnr", "_median3") == "test_psnr_median3"."""
    return f"test_{metric}{suffix}"


# skimage.metrics.structural_similarity defaults (Wang et al. 2004 constants, uniform window).
SSIM_WIN = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03

# An exact match would give MSE 0 and PSNR inf; clamping keeps the mean over a batch finite.
_MIN_MSE = 1e-10


def _check_pair(x: Tensor, y: Tensor) -> None:
    if x.shape != y.shape:
        raise ValueError(f"shape mismatch: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(x.shape)}")


def mse(x: Tensor, y: Tensor) -> Tensor:
    """Per-image mean squared error over C, H, W. x, y: (N, C, H, W) -> (N,)."""
    _check_pair(x, y)
    return (x - y).pow(2).flatten(1).mean(dim=1)


def psnr(x: Tensor, y: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-image peak signal-to-noise ratio in dB. x, y: (N, C, H, W) -> (N,).

    The MSE is clamped at 1e-10, so identical images give a finite value (100 dB for
    data_range=1) instead of inf/NaN; otherwise equal to skimage's peak_signal_noise_ratio.
    """
    err = mse(x, y).clamp_min(_MIN_MSE)
    return 10.0 * torch.log10(data_range**2 / err)


def _box_mean(t: Tensor, win: int) -> Tensor:
    """Mean over each win x win window inside the image (valid, stride 1): (N, C, H, W) ->
    (N, C, H-win+1, W-win+1). Two matrix products with banded averaging matrices: the sums of
    F.avg_pool2d(t, win, stride=1), several times faster on a CPU, equal up to float rounding
    (a few 1e-7). Each is one 2-D product over all images: a batched product would be N*C tiny
    ones, and a threaded BLAS pays its thread start-up on every one of them."""
    n, c, h, w = t.shape

    def band(size: int) -> Tensor:
        idx = torch.arange(size, device=t.device)
        first = idx[: size - win + 1, None]
        return ((idx >= first) & (idx < first + win)).to(t.dtype) / win

    rows = t.reshape(-1, w) @ band(w).T  # (N*C*H, W'): along each row
    cols = rows.reshape(n * c, h, -1).transpose(1, 2).reshape(-1, h) @ band(h).T  # (N*C*W', H')
    return cols.reshape(n, c, w - win + 1, h - win + 1).transpose(2, 3)


def _ssim_chunk(x: Tensor, y: Tensor, data_range: float) -> Tensor:
    c = x.shape[1]
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    # One pooling pass for all five local moments. Unpadded (valid) pooling gives exactly the
    # region skimage keeps after cropping (win-1)//2 pixels, so its border mode never matters.
    moments = torch.cat([x, y, x * x, y * y, x * y], dim=1)
    ux, uy, uxx, uyy, uxy = _box_mean(moments, SSIM_WIN).split(c, dim=1)
    cov_norm = SSIM_WIN**2 / (SSIM_WIN**2 - 1)  # sample covariance, as skimage's default
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    s = (2 * ux * uy + c1) * (2 * vxy + c2) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    # Mean over pixels then channels equals the mean over both since all channels are equal size.
    return s.flatten(1).mean(dim=1)


def ssim(x: Tensor, y: Tensor, data_range: float = 1.0, *, chunk_size: int = 2048) -> Tensor:
    """Per-image mean SSIM (Wang et al. 2004). x, y: (N, C, H, W) with H, W >= 7 -> (N,).

    Matches skimage.metrics.structural_similarity(a, b, data_range=data_range, channel_axis=0)
    with its defaults: 7x7 uniform window, K1=0.01, K2=0.03, sample covariance, mean over the
    pixels whose window lies inside the image, then mean over channels. Batches are processed
    chunk_size images at a time to bound memory.
    """
    _check_pair(x, y)
    if min(x.shape[-2:]) < SSIM_WIN:
        raise ValueError(f"SSIM needs images of at least {SSIM_WIN}x{SSIM_WIN}, got {x.shape}")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    parts = [
        _ssim_chunk(xc, yc, data_range)
        for xc, yc in zip(x.split(chunk_size), y.split(chunk_size), strict=True)
    ]
    return torch.cat(parts)


@torch.no_grad()
def quality(x_hat: Tensor, clean: Tensor) -> dict[str, float]:
    """Batch means of MSE, PSNR (dB) and SSIM for images in [0, 1]. Keys: mse, psnr_db, ssim."""
    return {
        "mse": mse(x_hat, clean).mean().item(),
        "psnr_db": psnr(x_hat, clean).mean().item(),
        "ssim": ssim(x_hat, clean).mean().item(),
    }
