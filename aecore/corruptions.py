"""Corruptions: pure, batched functions (images, level, generator) -> images in [0, 1].

`images` is float (N, C, H, W) in [0, 1] on any device; `generator` is a torch.Generator on the
same device, so the same seed gives the same corruption. Pixel-wise corruptions hit all channels of
a pixel together, as a dead or saturated sensor pixel would.

Each entry's meta gives the level's name, range, default and slider step; `has_level`, False only
for a corruption that leaves images as they are (its level means nothing and is stored as 0); and
`random`, False for one that draws nothing from the generator (blur).
`check_level` turns an out-of-range level into a ValueError that names the range.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torchvision.transforms.v2 import functional as TF

from aecore.registry import Registry

CORRUPTIONS = Registry(
    "corruption",
    required=("label", "level_name", "min", "max", "default", "step"),
    defaults={"has_level": True, "integer": False, "random": True},
)


def has_level(name: str) -> bool:
    """Whether the corruption takes a level (False: it changes nothing, so no level applies)."""
    return bool(CORRUPTIONS[name].meta["has_level"])


def check_level(name: str, level: float) -> float:
    """Return `level` as a float, or raise ValueError naming the allowed range."""
    entry = CORRUPTIONS[name]
    what, low, high = entry.meta["level_name"], entry.meta["min"], entry.meta["max"]
    if not isinstance(level, int | float) or math.isnan(level) or not low <= level <= high:
        raise ValueError(f"{entry.label}: {what} must be between {low} and {high}, got {level!r}")
    if entry.meta.get("integer") and float(level) != int(level):
        raise ValueError(f"{entry.label}: {what} must be a whole number, got {level!r}")
    return float(level)


def corrupt(name: str, images: torch.Tensor, level: float, generator: torch.Generator):
    """Apply a registered corruption after checking its level."""
    return CORRUPTIONS[name].fn(images, check_level(name, level), generator)


def training_sampler(name: str) -> Callable[..., torch.Tensor]:
    """The function that corrupts training batches: the registered one, or its faster sampler of
    the same distribution (TRAINING_SAMPLERS). Evaluation keeps the registered one, so that every
    recorded test metric (the bundled models') stays reproducible to its last digit."""
    return TRAINING_SAMPLERS.get(name) or CORRUPTIONS[name].fn


def corrupt_for_training(name: str, images: torch.Tensor, level, generator: torch.Generator):
    """corrupt() for a training batch (training_sampler)."""
    return training_sampler(name)(images, check_level(name, level), generator)


def _pixel_uniform(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One uniform draw per pixel, shared by the channels: (N, 1, H, W)."""
    n, _, h, w = images.shape
    return torch.rand((n, 1, h, w), generator=generator, device=images.device)


def _pixel_int16(images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One draw per pixel, uniform over the 65,536 int16 values, shared by the channels:
    (N, 1, H, W). Drawn 64 bits at a time and split in four: on a CPU a third of the cost of
    torch.rand (0.09 against 0.29 ms per 128 MNIST images, ~9% of a JANet-50 epoch), and a
    resolution of 1/65,536 is finer than any level a user sets."""
    n, _, h, w = images.shape
    if images.device.type not in ("cpu", "cuda"):  # MPS and others: the same values from rand
        u = torch.rand((n, 1, h, w), generator=generator, device=images.device)
        return u.mul_(65536).floor_().sub_(32768)
    count = n * h * w
    # From -2**63 to the top of int64: every bit random (the default range leaves the sign bit 0).
    words = torch.empty(-(-count // 4), dtype=torch.int64, device=images.device)
    words.random_(-(2**63), None, generator=generator)
    return words.view(torch.int16)[:count].view(n, 1, h, w)


@CORRUPTIONS.register(
    "none",
    label="None (plain autoencoder)",
    level_name="level",
    min=0,
    max=0,
    default=0,
    step=1,
    has_level=False,
    random=False,
)
def no_corruption(images: torch.Tensor, level: float, generator: torch.Generator):
    return images


def _salt_pepper(images: torch.Tensor, p, draws: torch.Tensor, low: float, span: float):
    """Pixels whose draw (uniform over [low, low + span)) falls in the first p/2 of the span
    become black, in the next p/2 white. Thresholds as floats: a level tensor (drawn inside a CUDA
    graph) works as well, and p = 0 and p = 1 stay exact. Two fused selects rather than masked
    fills and a mask AND: the same pixels in fewer passes."""
    pepper, hit = low + p / 2 * span, low + p * span
    return torch.where(draws < pepper, 0.0, torch.where(draws < hit, 1.0, images))


def salt_pepper_fast(images: torch.Tensor, p: float, generator: torch.Generator):
    """salt_pepper's distribution from 16-bit draws (see _pixel_int16): the training sampler."""
    return _salt_pepper(images, p, _pixel_int16(images, generator), -32768.0, 65536.0)


@CORRUPTIONS.register(
    "salt_pepper",
    label="Salt and pepper",
    level_name="probability p",
    min=0.0,
    max=1.0,
    default=0.1,
    step=0.01,
)
def salt_pepper(images: torch.Tensor, p: float, generator: torch.Generator):
    """Each pixel becomes black with probability p/2 and white with probability p/2."""
    return _salt_pepper(images, p, _pixel_uniform(images, generator), 0.0, 1.0)


# Faster samplers of a registered corruption's distribution, for training batches only.
TRAINING_SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {"salt_pepper": salt_pepper_fast}


@CORRUPTIONS.register(
    "gaussian",
    label="Gaussian noise",
    level_name="sigma",
    min=0.0,
    max=2.0,
    default=0.5,
    step=0.05,
)
def gaussian(images: torch.Tensor, sigma: float, generator: torch.Generator):
    """Add N(0, sigma^2) per value, then clip to [0, 1] (as the Keras blog post does)."""
    noise = torch.randn(images.shape, generator=generator, device=images.device)
    return (images + sigma * noise).clamp_(0.0, 1.0)


@CORRUPTIONS.register(
    "masking",
    label="Masking (zeroed pixels)",
    level_name="fraction zeroed",
    min=0.0,
    max=1.0,
    default=0.3,
    step=0.05,
)
def masking(images: torch.Tensor, fraction: float, generator: torch.Generator):
    return images.masked_fill(_pixel_uniform(images, generator) < fraction, 0.0)


@CORRUPTIONS.register(
    "stripes",
    label="Black stripes",
    level_name="rows",
    min=0,
    max=32,
    default=10,
    step=1,
    integer=True,
)
def stripes(images: torch.Tensor, rows: float, generator: torch.Generator):
    """Blacken `rows` distinct full-width rows per image (all rows if the image is shorter)."""
    n, _, h, _ = images.shape
    k = min(int(rows), h)
    # Random distinct rows per image: the k smallest of h uniform keys.
    keys = torch.rand((n, h), generator=generator, device=images.device)
    chosen = keys.argsort(dim=1)[:, :k]
    hit = torch.zeros((n, h), dtype=torch.bool, device=images.device).scatter_(1, chosen, True)
    return images.masked_fill(hit[:, None, :, None], 0.0)


@CORRUPTIONS.register(
    "block",
    label="Gray block (inpainting)",
    level_name="side (pixels)",
    min=0,
    max=32,
    default=10,
    step=1,
    integer=True,
)
def block(images: torch.Tensor, side: float, generator: torch.Generator):
    """Cover a side x side square at a random place, fully inside the image, with gray 0.5."""
    n, _, h, w = images.shape
    s = min(int(side), h, w)
    top = torch.randint(0, h - s + 1, (n,), generator=generator, device=images.device)
    left = torch.randint(0, w - s + 1, (n,), generator=generator, device=images.device)
    rows = torch.arange(h, device=images.device)
    cols = torch.arange(w, device=images.device)
    in_rows = (rows[None] >= top[:, None]) & (rows[None] < top[:, None] + s)  # (N, H)
    in_cols = (cols[None] >= left[:, None]) & (cols[None] < left[:, None] + s)  # (N, W)
    inside = in_rows[:, :, None] & in_cols[:, None, :]
    return images.masked_fill(inside[:, None], 0.5)


@CORRUPTIONS.register(
    "blur",
    label="Gaussian blur",
    level_name="sigma (pixels)",
    min=0.0,
    max=5.0,
    default=1.5,
    step=0.1,
    random=False,
)
def blur(images: torch.Tensor, sigma: float, generator: torch.Generator):
    """Gaussian blur; the kernel spans +-3 sigma, cut to the image size (deterministic)."""
    if sigma <= 0:
        return images
    _, _, h, w = images.shape
    size = 2 * math.ceil(3 * sigma) + 1
    odd_below = lambda n: n if n % 2 else n - 1  # noqa: E731
    kernel = [min(size, odd_below(w)), min(size, odd_below(h))]
    return TF.gaussian_blur(images, kernel_size=kernel, sigma=[sigma, sigma])
