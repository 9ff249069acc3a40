"""Latent-space tools for the Latent page: encode, project to 2-D, decode grids and paths.

Plain torch and numpy, no plotting. Every function leaves the model in the train/eval mode it
found it in, runs without gradients, and returns its result on the CPU, ready to display.
Images are float (N, C, H, W) in [0, 1] (uint8 images are converted).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from aecore.baselines import principal_axes
from aecore.data import to_float
from aecore.models import Autoencoder

# t-SNE time grows with N: 2,000 points took 10-25 s on one core of a busy 2-core machine.
TSNE_MAX_POINTS = 2000
TSNE_PCA_DIMS = 50  # reduce wider codes with PCA first, as the t-SNE authors recommend


@contextmanager
def evaluating(model: Autoencoder) -> Iterator[Autoencoder]:
    """Eval mode and no gradients inside; the previous mode is restored after."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def _device(model: Autoencoder) -> torch.device:
    return next(model.parameters()).device


def _as_float(images: torch.Tensor) -> torch.Tensor:
    return to_float(images) if images.dtype == torch.uint8 else images.float()


def encode_all(model: Autoencoder, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Codes of images (N, C, H, W) -> (N, L), conv feature maps flattened; a VAE gives its mean."""
    dev = _device(model)
    with evaluating(model):
        codes = [
            model.encode(_as_float(images[i : i + batch]).to(dev)).flatten(1).cpu()
            for i in range(0, len(images), batch)
        ]
    return torch.cat(codes) if codes else torch.empty(0, 0)


def pca_2d(codes: torch.Tensor, max_fit: int = TSNE_MAX_POINTS, dims: int = 2) -> torch.Tensor:
    """Project codes (N, L) onto their first `dims` principal axes, (N, dims), float64.

    The axes are fitted on the first max_fit rows only (a conv code has thousands of
    dimensions; an SVD of every row would take minutes) and every row is projected. Signs are
    fixed so that each axis's largest loading is positive, so a re-run draws the same picture.
    """
    x = codes.double()
    fit = x[:max_fit]
    mean, axes, _ = principal_axes(fit, min(dims, *fit.shape))
    out = (x - mean) @ axes.T
    if out.shape[1] < dims:  # fewer rows or columns than dims: pad with zeros
        out = torch.cat([out, out.new_zeros(len(out), dims - out.shape[1])], 1)
    return out


def project_2d(
    codes: torch.Tensor, method: str = "auto", seed: int = 0, max_points: int = TSNE_MAX_POINTS
) -> tuple[np.ndarray, str]:
    """(points (M, 2) float32, method used) for codes (N, L).

    - L == 2: the codes themselves ("identity"); L == 1: the code against 0 ("identity").
    - "pca" (and "auto" for L > 2, since it is instant and deterministic): all N points.
    - "tsne": scikit-learn's t-SNE on the first max_points codes only, so M = min(N,
      max_points): callers colour points with labels[:len(points)] (pass shuffled codes for a
      fair sample). Codes wider than 50 are reduced to 50 with PCA first.
    """
    if method not in ("auto", "pca", "tsne"):
        raise ValueError(f"method must be 'auto', 'pca' or 'tsne', got {method!r}")
    codes = codes.detach().cpu().flatten(1).float()
    n, dim = codes.shape
    if dim <= 2:
        points = codes if dim == 2 else torch.cat([codes, torch.zeros(n, 2 - dim)], 1)
        return points.numpy().astype(np.float32), "identity"
    if method in ("auto", "pca"):
        return pca_2d(codes).numpy().astype(np.float32), "pca"
    # Imported here: slow to import, and only this path needs them (threadpoolctl comes with
    # scikit-learn).
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = codes[:max_points]
    if len(x) < 3:
        raise ValueError(f"t-SNE needs at least 3 codes, got {len(x)}")
    if dim > TSNE_PCA_DIMS:
        x = pca_2d(x, dims=TSNE_PCA_DIMS)
    tsne = TSNE(2, perplexity=min(30.0, len(x) - 1.0), init="pca", random_state=seed)
    # t-SNE's OpenMP threads spin-wait; on cores shared with a training job or other sessions
    # two of them ran 2x-60x slower than one. Use half the cores (one on a 2-core box).
    with threadpool_limits(max(1, (os.cpu_count() or 2) // 2)):
        points = tsne.fit_transform(x.numpy())
    return points.astype(np.float32), "tsne"


def manifold_grid(
    model: Autoencoder,
    n: int = 15,
    span: tuple[float, float] = (0.05, 0.95),
    codes: torch.Tensor | None = None,
) -> torch.Tensor:
    """Decode an n x n grid over a 2-D code space -> (n*n, C, H, W), row-major.

    `span` is a pair of quantiles in both cases:
    - a VAE: quantiles of its prior, z = Normal(0, 1).icdf(linspace(*span, n)), as in Kingma &
      Welling's Figure 4 (equal steps in probability, not in z);
    - a plain autoencoder has no prior: equal steps between those quantiles of `codes` (N, 2),
      the codes of some images (from encode_all), per axis, so the grid covers the region the
      codes actually occupy; the default ignores the outer 5% on each side (a few outliers
      would otherwise stretch the grid over empty space), span=(0, 1) spans min..max.
    Row i, column j decodes (x_j, y_{n-1-i}): y grows upwards, as in a scatter plot of codes.
    """
    lo, hi = span
    if not 0 <= lo < hi <= 1:
        raise ValueError(f"span must be two quantiles 0 <= low < high <= 1, got {span!r}")
    if model.variational:
        if model.latent != 2:
            raise ValueError(f"the manifold grid needs a 2-D code; this VAE has {model.latent}")
        if lo == 0 or hi == 1:
            raise ValueError("a VAE's prior is unbounded: span must lie strictly inside (0, 1)")
        q = torch.linspace(lo, hi, n, dtype=torch.float64)
        ticks = torch.distributions.Normal(0.0, 1.0).icdf(q)
        xs, ys = ticks, ticks
    else:
        if codes is None:
            raise ValueError("a plain autoencoder has no prior: pass the codes of some images")
        codes = codes.detach().cpu().flatten(1).double()
        if codes.shape[1] != 2:
            raise ValueError(f"the manifold grid needs 2-D codes, got {codes.shape[1]}-D")
        lo_hi = torch.quantile(codes, torch.tensor([lo, hi], dtype=torch.float64), dim=0)
        xs, ys = (torch.linspace(float(lo_hi[0, d]), float(lo_hi[1, d]), n) for d in (0, 1))
    gy, gx = torch.meshgrid(ys.flip(0), xs, indexing="ij")
    z = torch.stack([gx.flatten(), gy.flatten()], 1).float().to(_device(model))
    with evaluating(model):
        return model.decode(z).clamp(0.0, 1.0).cpu()


def interpolate(
    model: Autoencoder, a: torch.Tensor, b: torch.Tensor, steps: int = 10
) -> torch.Tensor:
    """Decode `steps` codes evenly spaced from code(a) to code(b) -> (steps, C, H, W).

    a and b are images (C, H, W) or (1, C, H, W). The first and last frames are the
    reconstructions of a and b. For a VAE this walks between posterior means.
    """
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    pair = torch.cat([_as_float(a).reshape(1, *model.shape), _as_float(b).reshape(1, *model.shape)])
    with evaluating(model):
        za, zb = model.encode(pair.to(_device(model)))
        t = torch.linspace(0.0, 1.0, steps, device=za.device).reshape(-1, *[1] * za.dim())
        z = (1 - t) * za + t * zb  # exact at both ends: 1*za + 0*zb == za
        return model.decode(z).clamp(0.0, 1.0).cpu()


def code_as_image(code: torch.Tensor | np.ndarray) -> np.ndarray:
    """A flat code (L,) as the most square (h, w) grid with h >= w, h * w == L, row-major.

    32 values -> 8 x 4, 64 -> 8 x 8, 10 -> 5 x 2. A prime L > 3 would only give an L x 1 strip,
    so it gets w = floor(sqrt(L)), h = ceil(L / w) and the spare cells are NaN (drawn blank).
    """
    flat = np.asarray(code.detach().cpu() if torch.is_tensor(code) else code, dtype=np.float64)
    flat = flat.reshape(-1)
    n = flat.size
    if n == 0:
        raise ValueError("empty code")
    w = max(d for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    if w == 1 and n > 3:  # prime
        w = math.isqrt(n)
    h = math.ceil(n / w)
    grid = np.full(h * w, np.nan)
    grid[:n] = flat
    return grid.reshape(h, w)


def samples(model: Autoencoder, n: int, seed: int = 0) -> torch.Tensor:
    """n images decoded from a VAE's prior N(0, I) -> (n, C, H, W); same seed, same draws."""
    if not model.variational:
        raise ValueError(
            "only a VAE can generate new images: a plain autoencoder has no prior to draw codes "
            "from. Train vae_mlp or vae_conv to sample."
        )
    gen = torch.Generator(_device(model)).manual_seed(seed)
    with evaluating(model):
        return model.sample(n, generator=gen).cpu()


# -- any point of a 2-D code: the Decode any point and Draw a digit pages ---------------------

PLANE_MARGIN = 0.1  # of the codes' range on each side, so the outermost codes are not on the edge
PRIOR_SIGMAS = 3.0  # a VAE's plane also spans its prior N(0, I) out to ±3σ


def plane_extent(
    codes: torch.Tensor, margin: float = PLANE_MARGIN, prior_sigmas: float | None = None
) -> tuple[float, float, float, float]:
    """(x0, x1, y0, y1): the box the 2-D codes (N, 2) span, widened by `margin` of its width and
    height on each side; with prior_sigmas (a VAE), it also holds ±prior_sigmas in both axes."""
    xy = codes.detach().cpu().flatten(1).double()
    if xy.ndim != 2 or xy.shape[1] != 2 or len(xy) == 0:
        raise ValueError(f"the plane needs 2-D codes, got shape {tuple(codes.shape)}")
    low, high = xy.min(0).values, xy.max(0).values
    if prior_sigmas is not None:
        low, high = low.clamp(max=-prior_sigmas), high.clamp(min=prior_sigmas)
    # A unit that barely varies (a dead ReLU unit: all codes 0) still gets a twentieth of the
    # other axis's span, so the plane is not a sliver; one code alone gets a small square.
    span = high - low
    pad = torch.maximum(span * margin, 0.05 * span.max()).clamp(min=1e-3)
    low, high = low - pad, high + pad
    return float(low[0]), float(high[0]), float(low[1]), float(high[1])


def decode_point(model: Autoencoder, x: float, y: float) -> torch.Tensor:
    """The decoder's image of the code (x, y) -> (C, H, W) in [0, 1]."""
    if model.latent != 2:
        raise ValueError(f"a point of the plane is a 2-unit code; this model's has {model.latent}")
    z = torch.tensor([[float(x), float(y)]], device=_device(model))
    with evaluating(model):
        return model.decode(z).clamp(0.0, 1.0)[0].cpu()


def nearest_codes(
    codes: torch.Tensor, point: torch.Tensor | tuple[float, ...], k: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, Euclidean distances) of the k rows of codes (N, L) nearest to point (L,),
    nearest first; fewer when N < k."""
    flat = codes.detach().cpu().flatten(1).float()
    query = torch.as_tensor(point, dtype=torch.float32).reshape(1, -1)
    if query.shape[1] != flat.shape[1]:
        raise ValueError(f"a {query.shape[1]}-D point among {flat.shape[1]}-D codes")
    dist = torch.cdist(query, flat)[0]
    top = torch.topk(dist, min(k, len(flat)), largest=False)  # sorted, nearest first
    return top.indices, top.values


def plane_grid(extent: tuple[float, float, float, float], n: int = 80) -> np.ndarray:
    """n x n points (n*n, 2) evenly over extent (x0, x1, y0, y1): a click anywhere on the plane
    lands on one of them."""
    if n < 2:
        raise ValueError(f"the grid needs at least 2 points a side, got {n}")
    x0, x1, y0, y1 = extent
    gx, gy = np.meshgrid(np.linspace(x0, x1, n), np.linspace(y0, y1, n))
    return np.stack([gx.ravel(), gy.ravel()], 1)
