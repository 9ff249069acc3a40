"""Each corruption's statistics. What every corruption must do (range, shape, determinism, level
checks, facts) is in test_registries.py."""

import math

import pytest
import torch

from aecore.corruptions import (
    CORRUPTIONS,
    _pixel_int16,
    corrupt,
    corrupt_for_training,
    salt_pepper_fast,
    training_sampler,
)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# Salt and pepper has two samplers of one distribution: the registered one (evaluation) and the
# faster one that training batches use (corruptions.training_sampler).
SALT_PEPPER = {"registered": CORRUPTIONS["salt_pepper"].fn, "training": salt_pepper_fast}


@pytest.mark.parametrize("sampler", SALT_PEPPER)
@pytest.mark.parametrize("p", [0.01, 0.1, 0.5, 0.9])
def test_salt_pepper_fractions_within_three_standard_errors(p, sampler):
    x = torch.full((200, 1, 28, 28), 0.5)
    y = SALT_PEPPER[sampler](x, p, gen())
    n = y.numel()
    for value in (0.0, 1.0):
        frac = float((y == value).float().mean())
        se = math.sqrt((p / 2) * (1 - p / 2) / n)
        assert abs(frac - p / 2) < 3 * se, (value, frac, p / 2)


@pytest.mark.parametrize("sampler", SALT_PEPPER)
def test_salt_pepper_hits_all_channels_of_a_pixel(sampler):
    y = SALT_PEPPER[sampler](torch.full((10, 3, 16, 16), 0.5), 0.5, gen())
    hit = y != 0.5
    assert torch.equal(hit[:, 0], hit[:, 1]) and torch.equal(hit[:, 1], hit[:, 2])


@pytest.mark.parametrize("sampler", SALT_PEPPER)
@pytest.mark.parametrize("shape", [(7, 1, 5, 3), (200, 1, 28, 28)])
def test_salt_pepper_at_the_ends_of_its_range(shape, sampler):
    """p = 0 touches nothing and p = 1 every pixel, half black and half white; image sizes
    whose pixel count is not a multiple of four (the draws come four to a 64-bit word) too."""
    x = torch.full(shape, 0.5)
    assert torch.equal(SALT_PEPPER[sampler](x, 0.0, gen()), x)
    y = SALT_PEPPER[sampler](x, 1.0, gen())
    assert bool(((y == 0) | (y == 1)).all())
    if y.numel() > 10_000:
        assert abs(float((y == 0).float().mean()) - 0.5) < 0.01


def test_pixel_draws_are_uniform_in_every_lane_of_a_word():
    """The four 16-bit draws of each 64-bit word are each uniform: the word's top draw too,
    whose sign bit a default-range int64 draw would leave at 0."""
    r = _pixel_int16(torch.zeros(1000, 1, 20, 20), gen()).reshape(-1, 4)
    for lane in range(4):
        negative = float((r[:, lane] < 0).float().mean())
        assert abs(negative - 0.5) < 0.01, (lane, negative)
    assert int(r.min()) < -32000 and int(r.max()) > 32000


@pytest.mark.parametrize("sampler", SALT_PEPPER)
def test_salt_pepper_takes_its_level_as_a_tensor(sampler):
    """Inside a CUDA graph the sampled level is a device tensor, never read on the host."""
    x = torch.full((100, 1, 28, 28), 0.5)
    a = SALT_PEPPER[sampler](x, 0.3, gen())
    assert torch.equal(a, SALT_PEPPER[sampler](x, torch.tensor(0.3), gen()))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_training_sampler_on_cuda_has_the_right_fractions():
    x = torch.full((200, 1, 28, 28), 0.5, device="cuda")
    y = salt_pepper_fast(x, 0.1, torch.Generator("cuda").manual_seed(0))
    for value in (0.0, 1.0):
        assert abs(float((y == value).float().mean()) - 0.05) < 0.002


def test_training_uses_the_fast_sampler_and_evaluation_the_registered_one():
    """Evaluation's draws are the registered sampler's, so the test metrics recorded with the
    bundled models reproduce exactly (test_pretrain); training batches draw faster."""
    x = torch.full((50, 1, 28, 28), 0.5)
    assert training_sampler("salt_pepper") is salt_pepper_fast
    assert torch.equal(
        corrupt_for_training("salt_pepper", x, 0.2, gen()), salt_pepper_fast(x, 0.2, gen())
    )
    assert not torch.equal(corrupt("salt_pepper", x, 0.2, gen()), salt_pepper_fast(x, 0.2, gen()))
    assert training_sampler("gaussian") is CORRUPTIONS["gaussian"].fn
    with pytest.raises(ValueError):
        corrupt_for_training("salt_pepper", x, 1.5, gen())


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
