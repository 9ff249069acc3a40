"""Classical denoisers: the methods people actually use, each tuned before it is compared.

The lab holds every model against classical image restoration, not only the 3x3 median. Each
method is one registered function `(planes (P, H, W) float32 in [0, 1], **params) -> planes`,
with its facts in meta:
- `suits`: the corruptions it is meant for (it is tried only on those);
- `grid`: the parameter values tuning tries (every combination); `shown`: how a setting reads;
- `needs`: the optional package it needs (absent: the method is skipped, and says so);
- `min_side`: the smallest image side it works on;
- `tune_images`: a slow method tunes on this many of the validation images only (its tuned
  setting is then scored on all of them, like every other method's).

`tune()` picks each method's parameters by PSNR on validation images (the training split's
validation part, which training never fits; never the test set) and `rank()` orders the tuned
methods there; aecore.best_classical applies the winner to the test set, and the pages call it
"best classical", with its values.
Images are processed per plane (a colour image's channels separately).
"""

from __future__ import annotations

import importlib.util
import itertools
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aecore.baselines import median_filter
from aecore.metrics import psnr
from aecore.registry import Registry

CLASSICAL = Registry("classical method")
IMPULSE = ("salt_pepper", "masking")  # pixels replaced by extremes: order statistics suit them
ADDITIVE = ("gaussian",)
# bm3d's per-call overhead (~0.3 s) dwarfs a 28x28 image: it denoises mosaics of this many
# images, each framed by MOSAIC_GAP pixels of its own edge (so no block straddles two images).
MOSAIC_IMAGES = 256
MOSAIC_GAP = 4


def available(name: str) -> bool:
    """Whether the method's optional package is installed."""
    need = CLASSICAL[name].meta.get("needs")
    return need is None or importlib.util.find_spec(need) is not None


def methods_for(corruption: str, side: int | None = None) -> list[str]:
    """The installed methods meant for a corruption (and for images at least `min_side` pixels
    on their shorter side, when `side` is given), in registry order."""
    return [
        e.name
        for e in CLASSICAL
        if corruption in e.meta["suits"]
        and available(e.name)
        and (side is None or side >= e.meta.get("min_side", 0))
    ]


def settings(name: str) -> list[dict[str, Any]]:
    """Every parameter combination in the method's grid."""
    grid = CLASSICAL[name].meta["grid"]
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def apply(name: str, images: torch.Tensor, params: dict[str, Any]) -> torch.Tensor:
    """Run a method on (N, C, H, W) images in [0, 1]; same shape, device and dtype back."""
    n, c, h, w = images.shape
    planes = images.detach().reshape(n * c, h, w).float()
    out = CLASSICAL[name].fn(planes.cpu(), **params)
    return out.clamp(0, 1).reshape(n, c, h, w).to(images.device, images.dtype)


@dataclass(frozen=True)
class Tuned:
    """One method with its best parameters and their validation PSNR (dB)."""

    method: str
    params: dict[str, Any]
    val_psnr: float
    tried: tuple[tuple[str, float], ...] = field(default=())  # (params as text, dB) per setting

    @property
    def label(self) -> str:
        """The method and its tuned values for people: "Adaptive median (window up to 7x7)"."""
        meta = CLASSICAL[self.method].meta
        return f"{meta['label']} ({meta['shown'].format(**self.params)})"


def tune(name: str, clean: torch.Tensor, noisy: torch.Tensor) -> Tuned:
    """The method's grid setting with the best mean PSNR on these (validation) images; a slow
    method chooses on its first `tune_images` of them, then is scored on all."""
    n = CLASSICAL[name].meta.get("tune_images") or len(clean)
    tried = []
    for params in settings(name):
        score = float(psnr(apply(name, noisy[:n], params), clean[:n]).mean())
        tried.append((params, score))
    params, score = max(tried, key=lambda item: item[1])
    if n < len(clean):
        score = float(psnr(apply(name, noisy, params), clean).mean())
    return Tuned(name, params, score, tuple((_text(p), s) for p, s in tried))


def rank(
    corruption: str, clean: torch.Tensor, noisy: torch.Tensor, names: Iterable[str] | None = None
) -> list[Tuned]:
    """Every suitable method tuned on these validation images, best first."""
    side = min(clean.shape[-2:])
    names = methods_for(corruption, side) if names is None else list(names)
    return sorted((tune(n, clean, noisy) for n in names), key=lambda t: -t.val_psnr)


def _text(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


# -- the methods ------------------------------------------------------------------------------


@CLASSICAL.register(
    "median",
    label="Median filter",
    shown="{size}x{size}",
    suits=(*IMPULSE, *ADDITIVE, "stripes", "block", "blur"),
    grid={"size": (3, 5, 7)},
)
def median(planes: torch.Tensor, size: int) -> torch.Tensor:
    return median_filter(planes[:, None], size)[:, 0]


@CLASSICAL.register(
    "adaptive_median",
    label="Adaptive median",
    shown="window up to {max_size}x{max_size}",
    suits=IMPULSE,
    grid={"max_size": (5, 7, 9)},
)
def adaptive_median(planes: torch.Tensor, max_size: int) -> torch.Tensor:
    """Gonzalez and Woods' adaptive median (Digital Image Processing, 3rd ed., 5.3.3): grow the
    window from 3x3 until its median is not an extreme of the window (zmin < zmed < zmax); then
    keep the pixel if it is not an extreme either, else take the median. A pixel whose windows
    all fail up to max_size gets the largest window's median."""
    z = planes[:, None]
    out = median_filter(z, max_size)
    decided = torch.zeros_like(z, dtype=torch.bool)
    for size in range(3, max_size + 1, 2):
        padded = F.pad(z, (size // 2,) * 4, mode="reflect")
        zmax = F.max_pool2d(padded, size, stride=1)
        zmin = -F.max_pool2d(-padded, size, stride=1)
        zmed = median_filter(z, size)
        good_median = (zmin < zmed) & (zmed < zmax) & ~decided
        keep_pixel = (zmin < z) & (z < zmax)
        out = torch.where(good_median, torch.where(keep_pixel, z, zmed), out)
        decided |= good_median
    return out[:, 0]


def _per_plane(fn, planes: torch.Tensor, **params) -> torch.Tensor:
    with warnings.catch_warnings():  # scikit-image warns about float64 casts per call
        warnings.simplefilter("ignore")
        out = [fn(p, **params) for p in planes.numpy().astype(np.float64)]
    return torch.from_numpy(np.stack(out)).float()


@CLASSICAL.register(
    "nl_means",
    label="Non-local means",
    shown="h {h:g}, {patch_size}x{patch_size} patches",
    suits=ADDITIVE,
    grid={"h": (0.1, 0.2, 0.3, 0.45, 0.6), "patch_size": (3, 5)},
    needs="skimage",
)
def nl_means(planes: torch.Tensor, h: float, patch_size: int) -> torch.Tensor:
    from skimage.restoration import denoise_nl_means

    return _per_plane(denoise_nl_means, planes, h=h, patch_size=patch_size, patch_distance=5)


@CLASSICAL.register(
    "total_variation",
    label="Total variation",
    shown="weight {weight:g}",
    suits=ADDITIVE,
    grid={"weight": (0.05, 0.1, 0.2, 0.4, 0.8)},
    needs="skimage",
)
def total_variation(planes: torch.Tensor, weight: float) -> torch.Tensor:
    from skimage.restoration import denoise_tv_chambolle

    return _per_plane(denoise_tv_chambolle, planes, weight=weight)


@CLASSICAL.register(
    "wavelet",
    label="Wavelet shrinkage",
    shown="sigma {sigma:g}",
    suits=ADDITIVE,
    grid={"sigma": (0.1, 0.2, 0.3, 0.45, 0.6)},
    needs="pywt",  # scikit-image's wavelet denoiser calls PyWavelets
)
def wavelet(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    from skimage.restoration import denoise_wavelet

    return _per_plane(denoise_wavelet, planes, sigma=sigma, mode="soft", method="BayesShrink")


@CLASSICAL.register(
    "bm3d",
    label="BM3D",
    shown="sigma {sigma:g}",
    suits=ADDITIVE,
    grid={"sigma": (0.15, 0.3, 0.5)},
    needs="bm3d",  # optional (pip install bm3d): free for non-commercial use only
    tune_images=64,  # ~25 ms per 28x28 image, two orders slower than the others
    min_side=16,  # it matches 8x8 blocks: an 8x8 image (digits) is a single block
)
def bm3d(planes: torch.Tensor, sigma: float) -> torch.Tensor:
    import bm3d as bm3d_package

    out = []
    for start in range(0, len(planes), MOSAIC_IMAGES):
        chunk = planes[start : start + MOSAIC_IMAGES].numpy()
        mosaic, cols = _mosaic(chunk)
        out.append(_unmosaic(bm3d_package.bm3d(mosaic, sigma_psd=sigma), chunk.shape, cols))
    return torch.from_numpy(np.concatenate(out)).float()


def _mosaic(planes: np.ndarray) -> tuple[np.ndarray, int]:
    n, h, w = planes.shape
    cols = int(np.ceil(np.sqrt(n)))
    rows = -(-n // cols)
    g = MOSAIC_GAP
    framed = np.pad(planes, ((0, rows * cols - n), (g, g), (g, g)), mode="edge")
    tiles = framed.reshape(rows, cols, h + 2 * g, w + 2 * g).transpose(0, 2, 1, 3)
    return tiles.reshape(rows * (h + 2 * g), cols * (w + 2 * g)), cols


def _unmosaic(mosaic: np.ndarray, shape: tuple[int, int, int], cols: int) -> np.ndarray:
    n, h, w = shape
    g = MOSAIC_GAP
    rows = mosaic.shape[0] // (h + 2 * g)
    tiles = mosaic.reshape(rows, h + 2 * g, cols, w + 2 * g).transpose(0, 2, 1, 3)
    return tiles.reshape(rows * cols, h + 2 * g, w + 2 * g)[:n, g : g + h, g : g + w]
