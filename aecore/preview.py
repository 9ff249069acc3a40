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
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from aecore.checkpoints import BUNDLED_DIR, Checkpoint
from aecore.corruptions import CORRUPTIONS
from aecore.data import ImageDataset
from aecore.evaluate import corrupted_test_set, reconstruct

PREVIEW_DIR = BUNDLED_DIR / "previews"
# The Home page's first picture: the best denoiser at a level where the median filter fails.
HOME_DEMO = "unet_fashion_salt_pepper_any"
HOME_LEVEL = 0.5
IMAGES = 8
TILE_PX = 84  # one image on screen: 28 px at 3x
LABEL_PX = 150
PAD = 4


def demo_rows(
    ckpt: Checkpoint, ds: ImageDataset, level: float, n: int = IMAGES
) -> dict[str, torch.Tensor]:
    """{row label: (n, C, H, W)} for the first n test images, corrupted with the test seed."""
    cfg = ckpt.config
    clean, noisy = corrupted_test_set(ds, cfg.corruption, level, "cpu", limit=n)
    rows = {"Original": clean}
    if cfg.corruption != "none":
        meta = CORRUPTIONS[cfg.corruption].meta
        rows[f"Corrupted ({meta['level_name']} = {level:g})"] = noisy
    rows["Reconstructed"] = reconstruct(ckpt.model, noisy)
    return rows


def labelled_png(rows: Mapping[str, torch.Tensor], tile_px: int = TILE_PX) -> bytes:
    """One PNG: a row per entry, its label on the left, tiles scaled up without smoothing."""
    n = min(len(x) for x in rows.values())
    width = LABEL_PX + n * (tile_px + PAD)
    height = len(rows) * (tile_px + PAD)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=15)
    for r, (label, images) in enumerate(rows.items()):
        top = r * (tile_px + PAD)
        text = label.replace(" (", "\n(")  # "Corrupted (p 0.5)" on two lines
        draw.multiline_text((4, top + tile_px // 2), text, fill="black", font=font, anchor="lm")
        for i, image in enumerate(images[:n]):
            pixels = (image.detach().float().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
            array = pixels.permute(1, 2, 0).numpy()
            tile = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
            tile = tile.resize((tile_px, tile_px), Image.Resampling.NEAREST)
            canvas.paste(tile, (LABEL_PX + i * (tile_px + PAD), top))
    buf = io.BytesIO()
    canvas.save(buf, format="png", optimize=True)
    return buf.getvalue()


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
