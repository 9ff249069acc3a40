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
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from aecore import artifacts
from aecore.baselines import median_filter
from aecore.best_classical import FOLDER as BASELINES_FOLDER
from aecore.best_classical import best_classical
from aecore.checkpoints import BUNDLED_DIR, Checkpoint
from aecore.corruptions import CORRUPTIONS, has_level
from aecore.data import ImageDataset
from aecore.evaluate import corrupted_test_set, reconstruct
from aecore.metrics import psnr
from aecore.plots import labelled_png

PREVIEW_DIR = BUNDLED_DIR / "previews"
# The Home page's first picture: the best denoiser at a level where the median filter fails.
HOME_DEMO = "unet_wide_fashion_salt_pepper"
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
    artifacts.write_atomic(path, labelled_png(demo_rows(ckpt, ds, HOME_LEVEL)))
    return path


# The demo model against the best tuned classical method at these levels (whole test set),
# stored beside the picture: computing it takes minutes, reading it nothing.
HOME_MARGINS = PREVIEW_DIR / "home_margins.json"
MARGIN_LEVELS = (0.05, 0.1, 0.2, 0.5)


def margins(
    ckpt: Checkpoint,
    ds: ImageDataset,
    levels: Sequence[float] = MARGIN_LEVELS,
    limit: int | None = None,
    keep_in: Path | None = None,
) -> list[dict[str, Any]]:
    """Per level: the model's test PSNR, the 3x3 median's, and the best tuned classical
    method's (its label too), on the first `limit` test images (all: None)."""
    rows = []
    for level in levels:
        clean, noisy = corrupted_test_set(ds, ckpt.config.corruption, level, "cpu", limit)
        best = best_classical(ds, ckpt.config.corruption, level, limit, keep_in)
        rows.append(
            {
                "level": level,
                "model": round(float(psnr(reconstruct(ckpt.model, noisy), clean).mean()), 3),
                "median3": round(float(psnr(median_filter(noisy, 3), clean).mean()), 3),
                "best": round(best.psnr, 3),
                "best_label": best.label,
            }
        )
    return rows


def write_home_margins(ckpt: Checkpoint, ds: ImageDataset, path: Path = HOME_MARGINS) -> Path:
    """Store margins() of ckpt (the HOME_DEMO model), the classical results in the bundled
    baselines folder beside it, so the Home page and the other pages read them at once."""
    keep_in = path.parent.parent / BASELINES_FOLDER
    record = {"key": ckpt.config.key(), "rows": margins(ckpt, ds, keep_in=keep_in)}
    path.parent.mkdir(parents=True, exist_ok=True)
    artifacts.write_atomic(path, (json.dumps(record, indent=1) + "\n").encode())
    return path


def read_home_margins(key: str, path: Path = HOME_MARGINS) -> list[dict[str, Any]] | None:
    """The stored rows if they belong to the run with this config key, else None."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record["rows"] if isinstance(record, dict) and record.get("key") == key else None


def png_pixels(data: bytes) -> np.ndarray:
    """Decoded RGB pixels of a PNG, for comparing pictures."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))
