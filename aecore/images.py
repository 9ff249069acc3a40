"""Decode an untrusted image file (an upload) into one model input, or refuse it with a message
fit to show the user.

Only the decoders of FORMATS are used: Pillow would otherwise also open formats like EPS, whose
plugin runs Ghostscript. Sizes are checked from the header, before any pixel is decoded, so a
small file that claims a huge image (a decompression bomb) costs nothing. Everything a valid file
can hold is mapped onto [0, 1] on purpose: 16-bit samples are scaled (not clipped to white),
transparency is composited onto white (how viewers show it: a dark drawing stays visible), CMYK
and palettes become RGB, an animated file gives its first frame, EXIF rotation is applied.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # refuse larger images before decoding them (a 5 MB PNG can hold more)
FORMATS = ("png", "jpg", "jpeg", "bmp", "gif", "webp")  # file extensions the uploader offers
DECODERS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # Pillow format names: nothing else is opened
BACKGROUND = 255  # what transparent pixels become: white paper
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")


class ImageRejected(ValueError):
    """The file cannot be used; str(err) says why, for the user."""


def image_from_upload(data: bytes, shape: tuple[int, int, int]) -> torch.Tensor:
    """Decode `data` into float (1, C, H, W) in [0, 1] for a model of input shape (C, H, W).

    The central crop with the model's aspect ratio is kept. Raises ImageRejected (a ValueError)
    with a message for the user when the file is not an image this function accepts.
    """
    c, h, w = shape
    if not data:
        raise ImageRejected("The file is empty. Upload a PNG, JPEG, BMP, GIF or WebP image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=DECODERS) as img:
                _check_size(img.width, img.height)
                img.seek(0)  # an animated GIF or WebP: its first frame
                if img.format == "JPEG":  # decode at 1/2..1/8 scale when that is still enough
                    img.draft(None, (4 * w, 4 * h))
                small = _fit(_upright(img), (w, h))
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected(
            "That file is not an image this app can read. Upload a PNG, JPEG, BMP, GIF or WebP."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(_too_large_message()) from None
    except Exception as err:  # truncated or corrupt files raise OSError, SyntaxError, ValueError...
        why = " ".join(str(err).split())[:120] or type(err).__name__
        raise ImageRejected(f"The image could not be decoded ({why}). Try another file.") from None
    small = small.convert("L" if c == 1 else "RGB")
    pixels = np.asarray(small, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(pixels.copy())
    tensor = tensor[None] if c == 1 else tensor.permute(2, 0, 1)  # (C, H, W)
    return tensor[None]


def looks_light(image: torch.Tensor) -> bool:
    """Whether an image is mostly light: dark strokes on paper, the opposite of MNIST's digits."""
    return float(image.mean()) > 0.5


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ImageRejected("The image has no pixels. Try another file.")
    if width * height > MAX_PIXELS:
        raise ImageRejected(_too_large_message(f"{width}x{height} pixels"))


def _too_large_message(size: str = "too large") -> str:
    return (
        f"The image is {size}; the limit is {MAX_PIXELS // 1_000_000} million pixels. "
        "Please upload a smaller one."
    )


def _upright(img: Image.Image) -> Image.Image:
    """EXIF rotation applied; a broken EXIF block is ignored rather than refusing the image."""
    try:
        return ImageOps.exif_transpose(img)
    except Exception:
        return img


def _eight_bit(img: Image.Image) -> Image.Image:
    """img in L, LA, RGB or RGBA: 8 bits per sample, alpha kept for compositing after resizing."""
    if img.mode in SIXTEEN_BIT:
        # convert("L") would clip every value above 255 to white; scale 0..65535 onto 0..255.
        return img.point(lambda v: v / 257, "L") if img.mode != "I" else _scaled_int(img)
    if img.mode == "F":
        return img.point(lambda v: v * 255).convert("L")  # float samples are taken as 0..1
    if img.mode in ("L", "RGB", "RGBA", "LA"):
        return img
    if img.mode == "1":
        return img.convert("L")
    if img.mode in ("P", "PA"):  # a palette may carry a transparent index
        has_alpha = img.mode == "PA" or "transparency" in img.info
        return img.convert("RGBA" if has_alpha else "RGB")
    if "A" in img.getbands():  # La, RGBa and the like
        return img.convert("RGBA")
    return img.convert("RGB")  # CMYK, YCbCr, LAB, HSV


def _scaled_int(img: Image.Image) -> Image.Image:
    low, high = img.getextrema()
    if low >= 0 and high <= 65535:  # 16-bit samples stored as 32-bit integers
        return img.point(lambda v: v / 257, "L")
    span = max(1, high - low)  # some other range: stretched onto 0..255
    return img.point(lambda v: (v - low) * 255 / span, "L")


def _fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The central crop with size's aspect ratio, resized to size; alpha composited onto white."""
    img = _eight_bit(img)
    w, h = size
    width, height = img.size
    if width * h > height * w:  # wider than the model's aspect: crop the sides
        crop_w, crop_h = height * w / h, height
    else:
        crop_w, crop_h = width, width * h / w
    left, top = (width - crop_w) / 2, (height - crop_h) / 2
    box = (left, top, left + crop_w, top + crop_h)
    # reducing_gap: shrink by whole factors first (fast), then Lanczos for the last step.
    small = img.resize(size, Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)
    if small.mode in ("LA", "RGBA"):
        rgba = small.convert("RGBA")
        paper = Image.new("RGBA", rgba.size, (BACKGROUND,) * 3 + (255,))
        small = Image.alpha_composite(paper, rgba)
    return small
