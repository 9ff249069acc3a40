"""Turn an uploaded file into one model input: decoded with Pillow, checked, converted to the
model's channels and cropped and resized to its height and width."""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # refuse larger images before decoding them (a 5 MB PNG can hold more)
FORMATS = ("png", "jpg", "jpeg", "bmp", "gif", "webp")


def image_from_upload(data: bytes, shape: tuple[int, int, int]) -> torch.Tensor:
    """Decode `data` into float (1, C, H, W) in [0, 1] for a model of input shape (C, H, W).

    The central crop with the model's aspect ratio is kept. Raises ValueError with a message fit
    for the user when the file is not a readable image.
    """
    c, h, w = shape
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                if img.width * img.height > MAX_PIXELS:
                    raise ValueError(
                        f"The image is {img.width}x{img.height} pixels; the limit is "
                        f"{MAX_PIXELS // 1_000_000} million. Please upload a smaller one."
                    )
                img.seek(0)  # an animated GIF: its first frame
                img = ImageOps.exif_transpose(img)
                img = img.convert("L" if c == 1 else "RGB")
                img = ImageOps.fit(img, (w, h), method=Image.Resampling.LANCZOS)
                pixels = np.asarray(img, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(
            "That file is not an image this app can read. Upload a PNG, JPEG, BMP, GIF or WebP."
        ) from None
    except (OSError, SyntaxError, EOFError) as err:  # truncated or corrupt files
        raise ValueError(f"The image could not be decoded ({err}). Try another file.") from None
    tensor = torch.from_numpy(pixels.copy())
    tensor = tensor[None] if c == 1 else tensor.permute(2, 0, 1)  # (C, H, W)
    return tensor[None]


def looks_light(image: torch.Tensor) -> bool:
    """Whether an image is mostly light: dark strokes on paper, the opposite of MNIST's digits."""
    return float(image.mean()) > 0.5
