"""The Home page's demo picture: labelled rows of original / corrupted / reconstructed images.

A cold start of the app spends seconds importing torch and torchvision and loading a dataset
before it can reconstruct anything, so the bundled demo model's picture is also stored as a PNG
(checkpoints/previews/home.png, written by `python -m aecore pretrain`): the Home page shows it
at once,
then draws the live picture with this same function into the same place. A test checks that the
stored PNG is what the model produces now.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from aecore.checkpoints import BUNDLED_DIR, Checkpoint
from aecore.corruptions import CORRUPTIONS, has_level
from aecore.data import ImageDataset
from aecore.evaluate import corrupted_test_set, reconstruct
from aecore.plots import labelled_png

PREVIEW_DIR = BUNDLED_DIR / "previews"
# The Home page's first picture: the best denoiser at a level where the median filter fails.
HOME_DEMO = "unet_fashion_salt_pepper_any"
HOME_LEVEL = 0.5
IMAGES = 8


def demo_rows(
    ckpt: Checkpoint, ds: ImageDataset, level: float, n: int = IMAGES
) -> dict[str, torch.Tensor]:
    """{row label: (n, C, H, W)} for the first n test images, corrupted with the test seed."""
    cfg = ckpt.config
    clean, noisy = corrupted_test_set(ds, cfg.corruption, level, "cpu", limit=n)
    rows = {"Original": clean}
    if has_level(cfg.corruption):
        meta = CORRUPTIONS[cfg.corruption].meta
        rows[f"Corrupted ({meta['level_name']} = {level:g})"] = noisy
    rows["Reconstructed"] = reconstruct(ckpt.model, noisy)
    return rows


HOME_PREVIEW = PREVIEW_DIR / "home.png"  # the Home page reads this path without importing aecore


def write_home_preview(ckpt: Checkpoint, ds: ImageDataset, path: Path = HOME_PREVIEW) -> Path:
    """Store the demo picture of ckpt (the HOME_DEMO model) at HOME_LEVEL; returns its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(labelled_png(demo_rows(ckpt, ds, HOME_LEVEL)))
    return path


def png_pixels(data: bytes) -> np.ndarray:
    """Decoded RGB pixels of a PNG, for comparing pictures."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))
