import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from aecore.metrics import mse, psnr, quality, ssim


def smooth_images(n: int, c: int, size: int, seed: int) -> torch.Tensor:
    """Natural-ish images: upsampled low-resolution noise, rescaled into [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, c, max(2, size // 4), max(2, size // 4), generator=g)
    img = F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
    return img.clamp(0, 1)


def noisy(clean: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (clean + sigma * torch.randn(clean.shape, generator=g)).clamp(0, 1)


def skimage_ssim(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return np.array(
        [
            structural_similarity(ai.numpy(), bi.numpy(), data_range=1.0, channel_axis=0)
            for ai, bi in zip(a, b, strict=True)
        ]
    )


@pytest.mark.parametrize(("c", "size"), [(1, 28), (3, 32), (1, 8), (3, 8)])
@pytest.mark.parametrize("sigma", [0.05, 0.3])
def test_ssim_matches_skimage(c: int, size: int, sigma: float) -> None:
    clean = smooth_images(6, c, size, seed=size + c)
    corrupted = noisy(clean, sigma, seed=1)
    ours = ssim(corrupted, clean)
    assert ours.shape == (6,)
    ref = skimage_ssim(corrupted, clean)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-3)


@pytest.mark.parametrize("c", [1, 3])
def test_ssim_matches_skimage_low_contrast(c: int) -> None:
    # With local variances near C2 the N/(N-1) sample-covariance factor moves SSIM by ~4e-3,
    # so this case catches population covariance, which high-contrast images would hide.
    clean = 0.5 + 0.04 * (smooth_images(4, c, 28, seed=3) - 0.5)
    corrupted = noisy(clean, 0.03, seed=1)
    np.testing.assert_allclose(
        ssim(corrupted, clean).numpy(), skimage_ssim(corrupted, clean), atol=1e-3
    )


def test_ssim_orders_noise_levels() -> None:
    clean = smooth_images(4, 1, 28, seed=0)
    light = ssim(noisy(clean, 0.05, seed=1), clean)
    heavy = ssim(noisy(clean, 0.3, seed=1), clean)
    assert torch.all(heavy < light)
    assert torch.all(light < 1)


def test_ssim_is_symmetric() -> None:
    # Catches implementations that mix up the x and y moments.
    a = smooth_images(3, 3, 32, seed=2)
    b = noisy(a, 0.2, seed=3)
    torch.testing.assert_close(ssim(a, b), ssim(b, a), atol=1e-6, rtol=0)


def test_ssim_chunking_does_not_change_result() -> None:
    clean = smooth_images(7, 3, 32, seed=4)
    corrupted = noisy(clean, 0.1, seed=5)
    torch.testing.assert_close(ssim(corrupted, clean, chunk_size=3), ssim(corrupted, clean))


def test_ssim_box_filter_equals_average_pooling() -> None:
    from aecore.metrics import _box_mean

    x = smooth_images(5, 3, 28, seed=7)
    torch.testing.assert_close(_box_mean(x, 7), F.avg_pool2d(x, 7, stride=1), atol=1e-6, rtol=0)
    y = torch.rand(2, 1, 9, 13, dtype=torch.float64)
    torch.testing.assert_close(_box_mean(y, 7), F.avg_pool2d(y, 7, stride=1))


def test_ssim_rejects_tiny_or_mismatched_images() -> None:
    with pytest.raises(ValueError):
        ssim(torch.rand(2, 1, 6, 6), torch.rand(2, 1, 6, 6))
    with pytest.raises(ValueError):
        ssim(torch.rand(2, 1, 8, 8), torch.rand(2, 3, 8, 8))


def test_identical_images_give_perfect_scores() -> None:
    x = smooth_images(3, 3, 32, seed=6)
    s, p = ssim(x, x), psnr(x, x)
    torch.testing.assert_close(s, torch.ones(3), atol=1e-5, rtol=0)
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p, torch.full((3,), 100.0), atol=1e-3, rtol=0)


def test_psnr_matches_skimage() -> None:
    clean = smooth_images(5, 3, 32, seed=7)
    corrupted = noisy(clean, 0.1, seed=8)
    ref = [
        peak_signal_noise_ratio(c.numpy(), d.numpy(), data_range=1.0)
        for c, d in zip(clean, corrupted, strict=True)
    ]
    np.testing.assert_allclose(psnr(corrupted, clean).numpy(), ref, rtol=0, atol=1e-3)
    # data_range scales the peak: doubling it adds 20*log10(2) dB.
    torch.testing.assert_close(
        psnr(2 * corrupted, 2 * clean, data_range=2.0), psnr(corrupted, clean), atol=1e-3, rtol=0
    )


def test_mse_is_per_image() -> None:
    x = torch.zeros(3, 2, 4, 4)
    y = torch.zeros(3, 2, 4, 4)
    y[1] = 0.5  # every pixel off by 0.5
    y[2, 0, 0, 0] = 1.0  # one pixel out of 32 off by 1
    out = mse(x, y)
    assert out.shape == (3,)
    torch.testing.assert_close(out, torch.tensor([0.0, 0.25, 1 / 32]))


def test_quality_returns_batch_means_with_units() -> None:
    clean = smooth_images(4, 1, 28, seed=9)
    corrupted = noisy(clean, 0.1, seed=10)
    q = quality(corrupted, clean)
    assert set(q) == {"mse", "psnr_db", "ssim"}
    assert all(isinstance(v, float) for v in q.values())
    assert q["mse"] == pytest.approx(mse(corrupted, clean).mean().item())
    assert q["psnr_db"] == pytest.approx(psnr(corrupted, clean).mean().item())
    assert q["ssim"] == pytest.approx(ssim(corrupted, clean).mean().item())
    assert 10 < q["psnr_db"] < 30 and 0 < q["ssim"] < 1
