"""Latent tools: shapes, the VAE grid at prior quantiles, projections, interpolation, code grids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA

from aecore.config import TrainConfig
from aecore.latent import (
    code_as_image,
    encode_all,
    interpolate,
    manifold_grid,
    project_2d,
    samples,
)
from aecore.models import build_model

SHAPE = (1, 8, 8)


def digits(n: int = 300) -> torch.Tensor:
    """scikit-learn's 8x8 digits as (n, 1, 8, 8) floats in [0, 1]."""
    data = load_digits().images[:n].astype(np.float32) / 16.0
    return torch.from_numpy(data).unsqueeze(1)


def model(name: str, latent: int = 2, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(TrainConfig(dataset="digits", model=name, latent=latent), SHAPE)


class DecodeSpy:
    """Records every z a model's decode() is called with."""

    def __init__(self, m) -> None:
        self.calls: list[torch.Tensor] = []
        original = m.decode

        def decode(z):
            self.calls.append(z.detach().clone())
            return original(z)

        m.decode = decode


@pytest.mark.parametrize(
    ("name", "latent", "code_dim"),
    [("dense", 2, 2), ("deep_mlp", 5, 5), ("vae_mlp", 3, 3), ("conv_same", 0, 8 * 8 * 8)],
)
def test_encode_all_shapes_batches_and_restores_mode(name, latent, code_dim) -> None:
    m = model(name, latent)
    m.train()
    x = digits(250)
    codes = encode_all(m, x, batch=64)  # 4 batches, the last one short
    assert codes.shape == (250, code_dim) and not codes.requires_grad
    with torch.no_grad():
        torch.testing.assert_close(codes, m.eval().encode(x).flatten(1))
    m.train()
    encode_all(m, x[:3])
    assert m.training  # left as found
    # uint8 images are scaled like the training data
    as_uint8 = (x[:10] * 255).round().to(torch.uint8)
    torch.testing.assert_close(encode_all(m, as_uint8), encode_all(m, as_uint8.float() / 255))


def test_vae_manifold_grid_decodes_prior_quantiles() -> None:
    m = model("vae_mlp", 2)
    spy = DecodeSpy(m)
    grid = manifold_grid(m, n=5)
    assert grid.shape == (25, *SHAPE) and grid.min() >= 0 and grid.max() <= 1
    (z,) = spy.calls
    ticks = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, 5))
    assert z.shape == (25, 2)
    # Row-major; x = z[:, 0] steps along a row, y = z[:, 1] falls down the rows.
    torch.testing.assert_close(z[:5, 0], ticks)
    torch.testing.assert_close(z[::5, 1], ticks.flip(0))
    assert z[0, 0] == pytest.approx(-1.6449, abs=1e-4)  # the 5% quantile, not linspace(-2, 2)
    # Equal steps in probability are unequal steps in z: wider at the tails.
    steps = ticks.diff()
    assert steps[0] > steps[1] and steps[-1] > steps[-2]


def test_autoencoder_manifold_grid_covers_the_codes() -> None:
    m = model("dense", 2)
    codes = encode_all(m, digits())
    spy = DecodeSpy(m)
    grid = manifold_grid(m, n=4, span=(0.0, 1.0), codes=codes)
    assert grid.shape == (16, *SHAPE)
    (z,) = spy.calls
    lo, hi = codes.min(0).values, codes.max(0).values
    torch.testing.assert_close(z[:4, 0], torch.linspace(lo[0], hi[0], 4))
    torch.testing.assert_close(z[::4, 1], torch.linspace(lo[1], hi[1], 4).flip(0))
    # The default trims the outer 5% of the codes on each axis.
    manifold_grid(m, n=4, codes=codes)
    inner = spy.calls[-1]
    assert torch.quantile(codes[:, 0], 0.05) == pytest.approx(float(inner[0, 0]), abs=1e-5)


def test_manifold_grid_refuses_what_it_cannot_draw() -> None:
    with pytest.raises(ValueError, match="2-D code"):
        manifold_grid(model("vae_mlp", 3))
    with pytest.raises(ValueError, match="pass the codes"):
        manifold_grid(model("dense", 2))
    with pytest.raises(ValueError, match="2-D codes"):
        manifold_grid(model("dense", 3), codes=torch.rand(10, 3))
    with pytest.raises(ValueError, match="unbounded"):
        manifold_grid(model("vae_mlp", 2), span=(0.0, 1.0))


def test_project_2d_keeps_2d_codes_and_uses_pca_otherwise() -> None:
    two = torch.randn(50, 2)
    points, method = project_2d(two, method="tsne")
    assert method == "identity" and points.shape == (50, 2)
    np.testing.assert_array_equal(points, two.numpy())

    codes = encode_all(model("deep_mlp", 16), digits()) + 0.01 * torch.randn(300, 16)
    points, method = project_2d(codes)
    assert method == "pca" and points.shape == (300, 2) and points.dtype == np.float32
    ref = PCA(2).fit_transform(codes.double().numpy())
    signs = np.sign((points * ref).sum(0))  # each axis is defined up to its sign
    np.testing.assert_allclose(points, ref * signs, atol=1e-3)
    # Deterministic: the same picture twice.
    np.testing.assert_array_equal(points, project_2d(codes, "pca")[0])

    one, method = project_2d(torch.arange(5.0)[:, None])
    assert method == "identity" and one.tolist() == [[i, 0.0] for i in range(5)]
    with pytest.raises(ValueError, match="method"):
        project_2d(codes, method="umap")


def test_project_2d_tsne_limits_points() -> None:
    codes = torch.randn(200, 64)
    points, method = project_2d(codes, method="tsne", max_points=80, seed=3)
    assert method == "tsne" and points.shape == (80, 2) and np.isfinite(points).all()
    again, _ = project_2d(codes, method="tsne", max_points=80, seed=3)
    np.testing.assert_allclose(points, again, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("name", "latent"), [("dense", 4), ("conv_same", 0), ("vae_conv", 2)])
def test_interpolate_ends_at_the_reconstructions(name, latent) -> None:
    m = model(name, latent).eval()
    x = digits(2)
    frames = interpolate(m, x[0], x[1:2], steps=7)
    assert frames.shape == (7, *SHAPE)
    with torch.no_grad():
        recon = m.reconstruct(x)
    torch.testing.assert_close(frames[0], recon[0])
    torch.testing.assert_close(frames[-1], recon[1])
    assert not torch.allclose(frames[3], recon[0]) and not torch.allclose(frames[3], recon[1])
    with pytest.raises(ValueError):
        interpolate(m, x[0], x[1], steps=1)


@pytest.mark.parametrize(
    ("n", "shape"),
    [(32, (8, 4)), (64, (8, 8)), (10, (5, 2)), (2, (2, 1)), (1, (1, 1)), (7, (4, 2)), (13, (5, 3))],
)
def test_code_as_image_is_the_most_square_grid(n, shape) -> None:
    img = code_as_image(torch.arange(float(n)))
    assert img.shape == shape
    flat = img.reshape(-1)
    np.testing.assert_array_equal(flat[:n], np.arange(n))  # row-major, values unchanged
    assert np.isnan(flat[n:]).all()  # only primes > 3 are padded


def test_samples_are_seeded_and_only_for_vaes() -> None:
    m = model("vae_mlp", 4)
    a, b = samples(m, 6, seed=1), samples(m, 6, seed=1)
    assert a.shape == (6, *SHAPE)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, samples(m, 6, seed=2))
    with pytest.raises(ValueError, match="only a VAE"):
        samples(model("dense", 4), 6, seed=1)
