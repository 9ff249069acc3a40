"""Classical denoising / compression baselines an autoencoder must beat.

Images are float tensors of shape (N, C, H, W) in [0, 1]; results stay on the input's device.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# Bounds peak memory of the batched ops below: unfold makes size*size copies of every pixel,
# and PCA works on float64 rows of up to 3072 features.
_MEDIAN_MAX_ELEMS = 2**25  # ~128 MB of float32 windows per chunk
_PCA_CHUNK = 4096  # rows


def median_filter(images: Tensor, size: int) -> Tensor:
    """Per-channel median over a size x size window (size odd, >= 1). (N, C, H, W) -> same.

    Borders use torch's "reflect" padding (d c b | a b c d | c b a, edge not repeated), which
    equals scipy.ndimage.median_filter(..., mode="mirror"); torch has no pad mode equal to
    scipy's default "reflect" (edge repeated). Requires size // 2 < min(H, W).
    """
    if not isinstance(size, int) or size < 1 or size % 2 == 0:
        raise ValueError(f"size must be an odd int >= 1, got {size!r}")
    if images.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) images, got shape {tuple(images.shape)}")
    if size == 1:
        return images.clone()
    n, c, h, w = images.shape
    pad = size // 2
    if pad >= min(h, w):
        raise ValueError(f"size {size} too large for {h}x{w} images (reflect padding)")
    planes = images.reshape(n * c, 1, h, w)
    per_chunk = max(1, _MEDIAN_MAX_ELEMS // (size * size * h * w))
    out = []
    for chunk in planes.split(per_chunk):
        padded = F.pad(chunk, (pad, pad, pad, pad), mode="reflect")
        windows = F.unfold(padded, size)  # (planes, size*size, H*W)
        # size*size is odd, so torch.median's lower median is the true median.
        out.append(windows.median(dim=1).values)
    return torch.cat(out).reshape(n, c, h, w)


@dataclass(frozen=True)
class PCABasis:
    """Principal subspace of flattened images: mean (D,), components (k, D) with orthonormal
    rows ordered by decreasing explained variance. float32, on the fitting data's device."""

    mean: Tensor
    components: Tensor


def fit_pca(images: Tensor, k: int) -> PCABasis:
    """Fit a k-component PCA to images (N, C, H, W), D = C*H*W, 1 <= k <= D.

    Exact (not randomized): eigendecomposition of the D x D covariance, accumulated in float64
    over row chunks so that e.g. 60,000 x 784 or 50,000 x 3072 stays within a few hundred MB.
    """
    x = images.flatten(1)
    n, d = x.shape
    if not isinstance(k, int) or not 1 <= k <= d:
        raise ValueError(f"k must be an int in 1..{d}, got {k!r}")
    if n < 1:
        raise ValueError("need at least one image to fit PCA")
    # Two passes (mean first, then centred scatter) avoid the cancellation of E[xx^T] - mm^T.
    mean = torch.zeros(d, dtype=torch.float64, device=x.device)
    for chunk in x.split(_PCA_CHUNK):
        mean += chunk.double().sum(dim=0)
    mean /= n
    scatter = torch.zeros(d, d, dtype=torch.float64, device=x.device)
    for chunk in x.split(_PCA_CHUNK):
        centred = chunk.double() - mean
        scatter += centred.T @ centred
    _, eigvecs = torch.linalg.eigh(scatter)  # ascending eigenvalues; scale is irrelevant
    components = eigvecs[:, -k:].flip(1).T
    return PCABasis(mean=mean.float(), components=components.float().contiguous())


def pca_reconstruct(basis: PCABasis, images: Tensor, clip: bool = True) -> Tensor:
    """Project images (N, C, H, W) onto the basis and back; same shape, float32.

    Computed in float64 in row chunks. clip=True clamps the result to [0, 1] so it is a valid
    image; clip=False returns the raw linear reconstruction (as sklearn's inverse_transform).
    """
    x = images.flatten(1)
    if x.shape[1] != basis.mean.shape[0]:
        raise ValueError(f"images have {x.shape[1]} features, basis has {basis.mean.shape[0]}")
    mean = basis.mean.to(x.device, torch.float64)
    comps = basis.components.to(x.device, torch.float64)
    out = []
    for chunk in x.split(_PCA_CHUNK):
        codes = (chunk.double() - mean) @ comps.T
        out.append((codes @ comps + mean).float())
    recon = torch.cat(out)
    if clip:
        recon = recon.clamp(0.0, 1.0)
    return recon.reshape(images.shape)
