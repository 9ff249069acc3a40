"""The one PCA (aecore.baselines.principal_axes), behind both the PCA baseline (fit_pca) and the
Latent page's projection (latent.pca_2d), checked against scikit-learn's PCA."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from aecore.baselines import fit_pca, principal_axes
from aecore.latent import pca_2d

TOL = 1e-4


def correlated(n: int, d: int, seed: int = 0) -> torch.Tensor:
    """Rows with clearly separated variances along random directions (so the axes are unique
    up to sign)."""
    gen = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.1, d)
    mixing = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))[0]
    return (torch.randn(n, d, generator=gen, dtype=torch.float64) * scales) @ mixing.T + 0.5


def same_up_to_sign(ours: np.ndarray, theirs: np.ndarray) -> None:
    """Columns of `ours` equal those of `theirs` after flipping each column's sign to match."""
    signs = np.sign((ours * theirs).sum(axis=0))
    np.testing.assert_allclose(ours * signs, theirs, atol=TOL)


# (rows, columns, k): more rows than columns (the scatter's eigendecomposition) and fewer (SVD).
@pytest.mark.parametrize(("n", "d", "k"), [(400, 12, 5), (30, 80, 4)])
def test_principal_axes_match_scikit_learn(n: int, d: int, k: int):
    x = correlated(n, d)
    mean, axes, variance = principal_axes(x, k)
    sk = PCA(n_components=k, svd_solver="full").fit(x.numpy())
    np.testing.assert_allclose(variance.numpy(), sk.explained_variance_, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(mean.numpy(), sk.mean_, atol=TOL)
    same_up_to_sign(((x - mean) @ axes.T).numpy(), sk.transform(x.numpy()))
    np.testing.assert_allclose((axes @ axes.T).numpy(), np.eye(k), atol=TOL)  # orthonormal


@pytest.mark.parametrize(("n", "d"), [(300, 10), (40, 64)])
def test_pca_2d_is_scikit_learns_projection(n: int, d: int):
    codes = correlated(n, d, seed=1).float()
    ours = pca_2d(codes).numpy()
    theirs = PCA(n_components=2, svd_solver="full").fit_transform(codes.double().numpy())
    same_up_to_sign(ours, theirs)


def test_fit_pca_components_are_scikit_learns():
    images = correlated(200, 16, seed=2).reshape(200, 1, 4, 4).float()
    basis = fit_pca(images, 3)
    sk = PCA(n_components=3, svd_solver="full").fit(images.flatten(1).double().numpy())
    same_up_to_sign(basis.components.double().numpy().T, sk.components_.T)


def test_each_axis_has_a_positive_largest_loading_so_a_rerun_draws_the_same_picture():
    x = correlated(100, 8, seed=3)
    _, axes, _ = principal_axes(x, 4)
    largest = axes.gather(1, axes.abs().argmax(1, keepdim=True))
    assert (largest > 0).all()
    _, flipped, _ = principal_axes(-x, 4)  # mirrored data: the same axes, signs fixed
    torch.testing.assert_close(flipped, axes)


@pytest.mark.parametrize("k", [0, 9, 2.0])
def test_a_k_outside_one_to_d_is_refused(k):
    with pytest.raises(ValueError, match="k must be"):
        principal_axes(correlated(20, 8), k)
