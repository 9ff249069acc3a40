"""Each corruption's statistics. What every corruption must do (range, shape, determinism, level
checks, facts) is in test_registries.py."""

import math

import pytest
import torch

from aecore.corruptions import corrupt


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("p", [0.01, 0.1, 0.5, 0.9])
def test_salt_pepper_fractions_within_three_standard_errors(p):
    x = torch.full((200, 1, 28, 28), 0.5)
    y = corrupt("salt_pepper", x, p, gen())
    n = y.numel()
    for value in (0.0, 1.0):
        frac = float((y == value).float().mean())
        se = math.sqrt((p / 2) * (1 - p / 2) / n)
        assert abs(frac - p / 2) < 3 * se, (value, frac, p / 2)


def test_salt_pepper_hits_all_channels_of_a_pixel():
    y = corrupt("salt_pepper", torch.full((10, 3, 16, 16), 0.5), 0.5, gen())
    hit = y != 0.5
    assert torch.equal(hit[:, 0], hit[:, 1]) and torch.equal(hit[:, 1], hit[:, 2])


def test_gaussian_noise_has_the_right_sigma_and_is_clipped():
    x = torch.full((100, 1, 28, 28), 0.5)
    sigma = 0.1  # small enough that clipping at 0 and 1 (5 sigma away) is negligible
    noise = corrupt("gaussian", x, sigma, gen()) - x
    assert abs(float(noise.std()) - sigma) < 0.002
    assert abs(float(noise.mean())) < 0.002
    big = corrupt("gaussian", x, 2.0, gen())
    assert float(big.min()) == 0.0 and float(big.max()) == 1.0


def test_masking_zeroes_the_requested_fraction():
    y = corrupt("masking", torch.full((100, 1, 28, 28), 0.5), 0.3, gen())
    frac = float((y == 0).float().mean())
    assert abs(frac - 0.3) < 3 * math.sqrt(0.3 * 0.7 / y.numel())


def test_stripes_blacken_exactly_k_full_rows():
    y = corrupt("stripes", torch.full((20, 1, 28, 28), 0.5), 10, gen())
    black_rows = (y == 0).all(dim=-1).squeeze(1)  # (N, H)
    assert torch.equal(black_rows.sum(1), torch.full((20,), 10))
    assert torch.equal((y == 0).any(dim=-1).squeeze(1), black_rows)  # nothing but full rows
    assert corrupt("stripes", torch.rand(2, 1, 8, 8), 32, gen()).max() == 0  # capped at H


def test_block_is_one_gray_square_inside_the_image():
    x = torch.zeros(50, 1, 28, 28)
    y = corrupt("block", x, 10, gen())
    gray = y == 0.5
    assert torch.equal(gray.flatten(1).sum(1), torch.full((50,), 100))
    rows = gray.squeeze(1).any(2).float()
    assert torch.equal(rows.sum(1), torch.full((50,), 10.0))  # 10 contiguous... rows
    firsts = rows.argmax(1)
    assert len(set(firsts.tolist())) > 5  # placed at random


def test_blur_keeps_the_mean_and_smooths():
    x = torch.zeros(1, 1, 28, 28)
    x[..., 14, 14] = 1.0
    y = corrupt("blur", x, 1.5, gen())
    assert abs(float(y.sum()) - 1.0) < 1e-4  # the kernel is normalised
    assert float(y.max()) < 0.1
    assert torch.equal(corrupt("blur", x, 0.0, gen()), x)


def test_none_returns_input_and_config_normalises_its_level():
    from aecore.config import TrainConfig

    x = torch.rand(2, 1, 8, 8)
    assert torch.equal(corrupt("none", x, 0, gen()), x)
    assert TrainConfig(corruption="none", level=0.7).level == 0.0
