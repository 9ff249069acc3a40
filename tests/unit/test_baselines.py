import numpy as np
import pytest
import scipy.ndimage
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from aecore.baselines import PCABasis, fit_pca, median_filter, median_network, pca_reconstruct


def smooth_images(n: int, c: int, size: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, c, max(2, size // 4), max(2, size // 4), generator=g)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


def digits() -> torch.Tensor:
    """scikit-learn's bundled 8x8 digits as (1797, 1, 8, 8) in [0, 1]."""
    data = load_digits().images.astype(np.float32) / 16.0
    return torch.from_numpy(data).unsqueeze(1)


@pytest.mark.parametrize("size", [3, 5])
@pytest.mark.parametrize(("c", "hw"), [(1, 28), (3, 32), (1, 8)])
def test_median_filter_matches_scipy_mirror(size: int, c: int, hw: int) -> None:
    # Pure noise: every window has a distinct median, so any border or offset error shows up.
    x = torch.rand(4, c, hw, hw, generator=torch.Generator().manual_seed(size * hw + c))
    ours = median_filter(x, size)
    ref = scipy.ndimage.median_filter(x.numpy(), size=(1, 1, size, size), mode="mirror")
    assert ours.shape == x.shape and ours.dtype == torch.float32
    np.testing.assert_array_equal(ours.numpy(), ref)


@pytest.mark.parametrize("size", [3, 5, 7])
def test_median_filter_equals_torch_median_with_ties(size: int) -> None:
    # Few distinct values (as in salt and pepper, or quantised pixels): many ties per window.
    g = torch.Generator().manual_seed(size)
    x = torch.randint(0, 4, (300, 2, 12, 12), generator=g).float() / 3
    padded = F.pad(x.reshape(-1, 1, 12, 12), (size // 2,) * 4, mode="reflect")
    ref = F.unfold(padded, size).median(dim=1).values.reshape(x.shape)
    assert torch.equal(median_filter(x, size), ref)


@pytest.mark.parametrize("n", [3, 9, 15])
def test_median_network_is_exact_on_every_zero_one_input(n: int) -> None:
    # The 0-1 principle: a comparator network that selects the median of every 0/1 input
    # selects it for every input.
    bits = (torch.arange(2**n)[:, None] >> torch.arange(n)) & 1
    wires = list(bits.T)
    for i, j, keep_min, keep_max in median_network(n):
        low = torch.minimum(wires[i], wires[j])
        if keep_max:
            wires[j] = torch.maximum(wires[i], wires[j])
        if keep_min:
            wires[i] = low
    assert torch.equal(wires[n // 2], bits.sort(dim=1).values[:, n // 2])
    with pytest.raises(ValueError):
        median_network(n + 1)


def test_median_filter_differs_from_scipy_default_reflect() -> None:
    # Documents the mode choice: torch "reflect" is scipy "mirror", not scipy "reflect".
    x = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    ref = scipy.ndimage.median_filter(x.numpy(), size=(1, 1, 5, 5), mode="reflect")
    assert not np.array_equal(median_filter(x, 5).numpy(), ref)


def test_median_filter_removes_salt_and_pepper() -> None:
    g = torch.Generator().manual_seed(1)
    clean = torch.full((16, 1, 28, 28), 0.5)
    u = torch.rand(clean.shape, generator=g)
    noisy = clean.clone()
    noisy[u < 0.025] = 0.0
    noisy[u > 0.975] = 1.0
    assert (noisy != clean).float().mean() > 0.04  # the noise is really there
    restored = median_filter(noisy, 3)
    assert (restored == clean).float().mean() > 0.99


def test_median_filter_size_one_is_identity_and_bad_sizes_raise() -> None:
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(median_filter(x, 1), x, rtol=0, atol=0)
    for bad in (0, 2, 4, -1):
        with pytest.raises(ValueError):
            median_filter(x, bad)
    with pytest.raises(ValueError):
        median_filter(x, 17)  # reflect padding cannot exceed the image


def sklearn_reconstruction(train: torch.Tensor, test: torch.Tensor, k: int) -> np.ndarray:
    pca = PCA(k, svd_solver="full").fit(train.flatten(1).double().numpy())
    flat = pca.inverse_transform(pca.transform(test.flatten(1).double().numpy()))
    return flat.reshape(test.shape)


@pytest.mark.parametrize("k", [1, 5, 20])
def test_pca_matches_sklearn_on_digits(k: int) -> None:
    x = digits()
    train, test = x[:1500], x[1500:]
    basis = fit_pca(train, k)
    assert isinstance(basis, PCABasis)
    assert basis.mean.shape == (64,) and basis.components.shape == (k, 64)
    ours = pca_reconstruct(basis, test, clip=False)
    assert ours.shape == test.shape and ours.dtype == torch.float32
    np.testing.assert_allclose(ours.numpy(), sklearn_reconstruction(train, test, k), atol=1e-4)


def test_pca_matches_sklearn_on_rgb() -> None:
    x = smooth_images(500, 3, 8, seed=2)
    train, test = x[:400], x[400:]
    ours = pca_reconstruct(fit_pca(train, 12), test, clip=False)
    np.testing.assert_allclose(ours.numpy(), sklearn_reconstruction(train, test, 12), atol=1e-4)


def test_pca_components_orthonormal_and_full_rank_is_identity() -> None:
    x = digits()[:600]
    basis = fit_pca(x, 64)
    gram = basis.components @ basis.components.T
    torch.testing.assert_close(gram, torch.eye(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(pca_reconstruct(basis, x), x, atol=1e-5, rtol=0)


def test_pca_clip_keeps_images_valid() -> None:
    x = digits()
    basis = fit_pca(x[:1000], 3)
    raw = pca_reconstruct(basis, x[1000:], clip=False)
    clipped = pca_reconstruct(basis, x[1000:])
    assert raw.min() < 0 or raw.max() > 1  # a rank-3 fit overshoots somewhere
    assert clipped.min() >= 0 and clipped.max() <= 1
    torch.testing.assert_close(clipped, raw.clamp(0, 1))


def test_pca_k_out_of_range_raises() -> None:
    x = torch.rand(10, 1, 8, 8)
    for bad in (0, -1, 65):
        with pytest.raises(ValueError):
            fit_pca(x, bad)
    with pytest.raises(ValueError):
        pca_reconstruct(fit_pca(x, 2), torch.rand(3, 3, 8, 8))  # wrong feature count
