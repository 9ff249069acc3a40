"""A digit drawn on the app's canvas, made into one model input the way its dataset was made.

The canvas gives RGBA pixels (H, W, 4) uint8: light strokes on a dark or transparent background.
Its ink is converted per dataset, chosen by the dataset's `upload_layout` meta (aecore.data):

- "mnist": MNIST's preprocessing (LeCun et al.): the ink's bounding box scaled, aspect kept and
  anti-aliased, so its long side is 20 pixels, then placed in 28x28 with its centre of mass at
  the centre.
- "fashion": Fashion-MNIST's: the long side scaled to 28, centred by its bounding box.
- "digits": scikit-learn's 8x8 digits (UCI optdigits): the box scaled to fill a 32x32 bitmap,
  thresholded, and the on-pixels of each 4x4 block counted, 0..16; stored as aecore's loader
  stores them, round(count * 255 / 16) / 255.

Pure functions on numpy arrays; only to_model_input returns a torch tensor.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from aecore.data import DATASETS

INK_THRESHOLD = 0.05  # ink below this (antialiasing fringe, canvas noise) is not a stroke
MNIST_BOX, MNIST_SIDE = 20, 28
OPTDIGITS_SIDE, OPTDIGITS_BLOCK = 32, 4
DRAWABLE_LAYOUTS = ("mnist", "fashion", "digits")  # the gray digit and clothing sets


class BlankDrawing(ValueError):
    """The canvas holds no stroke yet."""


def layout_of(dataset: str) -> str | None:
    """The drawing layout of a dataset, or None when a drawing cannot stand for its images (a
    colour set, or one whose images are not drawn strokes)."""
    layout = DATASETS[dataset].meta["upload_layout"]
    return layout if layout in DRAWABLE_LAYOUTS else None


def ink_from_rgba(rgba: np.ndarray) -> np.ndarray:
    """Canvas pixels (H, W, 4) or (H, W, 3) uint8 -> ink (H, W) float32 in [0, 1]: the
    brightness of each pixel times its opacity (a transparent background counts as black)."""
    pixels = np.asarray(rgba)
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ValueError(f"expected (H, W, 3 or 4) pixels, got shape {pixels.shape}")
    rgb = pixels[..., :3].astype(np.float32) / 255.0
    light = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 luma
    alpha = pixels[..., 3].astype(np.float32) / 255.0 if pixels.shape[2] == 4 else 1.0
    return np.clip(light * alpha, 0.0, 1.0)


def crop_to_ink(ink: np.ndarray, threshold: float = INK_THRESHOLD) -> np.ndarray:
    """The ink's bounding box; BlankDrawing when no pixel reaches the threshold."""
    on = ink >= threshold
    if not on.any():
        raise BlankDrawing("Draw a digit on the canvas first: it is empty.")
    rows, cols = np.flatnonzero(on.any(1)), np.flatnonzero(on.any(0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def scale_long_side(ink: np.ndarray, side: int) -> np.ndarray:
    """ink resized so its long side is `side` pixels, aspect kept; shrinking averages the pixels
    under each new one (anti-aliasing), so thin strokes turn gray instead of vanishing."""
    h, w = ink.shape
    scale = side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    filt = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    out = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32)).resize(size, filt)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def paste(patch: np.ndarray, side: int, centre: tuple[float, float] | None = None) -> np.ndarray:
    """patch on a black side x side square, the point `centre` (row, col) of the patch at the
    square's centre (None: the patch's own centre), moved back inside if it would stick out."""
    h, w = patch.shape
    cy, cx = ((h - 1) / 2, (w - 1) / 2) if centre is None else centre
    top = min(max(round((side - 1) / 2 - cy), 0), side - h)
    left = min(max(round((side - 1) / 2 - cx), 0), side - w)
    out = np.zeros((side, side), dtype=np.float32)
    out[top : top + h, left : left + w] = patch
    return out


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    """(row, col) of the intensity-weighted centre."""
    ys, xs = np.indices(image.shape)
    total = float(image.sum())
    return float((image * ys).sum()) / total, float((image * xs).sum()) / total


def as_mnist(ink: np.ndarray) -> np.ndarray:
    """(28, 28) in [0, 1]: the box's long side 20, centred by centre of mass, strongest pixel 1."""
    patch = scale_long_side(crop_to_ink(ink), MNIST_BOX)
    patch = patch / max(float(patch.max()), 1e-6)  # MNIST's strokes reach full white
    return paste(patch, MNIST_SIDE, centre_of_mass(patch))


def as_fashion(ink: np.ndarray, side: int = MNIST_SIDE) -> np.ndarray:
    """(28, 28) in [0, 1]: the long side 28, centred by its box, gray levels kept."""
    return paste(scale_long_side(crop_to_ink(ink), side), side)


def as_optdigits(ink: np.ndarray) -> np.ndarray:
    """(8, 8) in [0, 1] with the loader's 17 levels: on-pixels of a 32x32 bitmap per 4x4 block."""
    bitmap = paste(scale_long_side(crop_to_ink(ink), OPTDIGITS_SIDE), OPTDIGITS_SIDE) >= 0.5
    n, k = OPTDIGITS_SIDE // OPTDIGITS_BLOCK, OPTDIGITS_BLOCK
    counts = bitmap.reshape(n, k, n, k).sum((1, 3))  # 0..16
    return (np.round(counts * (255.0 / 16.0)) / 255.0).astype(np.float32)


CONVERTERS = {"mnist": as_mnist, "fashion": as_fashion, "digits": as_optdigits}


def to_model_input(rgba: np.ndarray, dataset: str) -> torch.Tensor:
    """Canvas pixels -> float (1, C, H, W) for a model of `dataset`. BlankDrawing for an empty
    canvas; ValueError when the dataset cannot take a drawing (layout_of is None)."""
    layout = layout_of(dataset)
    if layout is None:
        label = DATASETS[dataset].meta["label"]
        raise ValueError(
            f"Drawing is for the gray digit and clothing sets; {label} is not one of them."
        )
    image = CONVERTERS[layout](ink_from_rgba(rgba))
    c, h, w = DATASETS[dataset].meta["shape"]
    if image.shape != (h, w) or c != 1:
        raise ValueError(f"{layout} gives {image.shape} images, the dataset has {(c, h, w)}")
    return torch.from_numpy(image)[None, None]
