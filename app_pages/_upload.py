"""Uploaded images for the Denoise page. The decoding is plain Python and lives in aecore.images;
this module keeps the names the page uses and adds what needs Streamlit:

- image_from_upload(data, shape, dataset=None): decoded once per distinct file (keyed by the
  SHA-256 of its bytes; refusals are remembered too), so reruns of the page do not decode again.
  Digit models get the layout of their training images (aecore.images.layout_for): MNIST's
  crop-scale-centre for 28x28 grayscale, scikit-learn's 8x8 bitmaps for 8x8; colour models the
  central crop.
- uploader(label, key): st.file_uploader for these images that survives a file name the browser
  would never have offered (a `.svg` sent straight through the protocol, which otherwise breaks
  every later rerun of the session). What a file is, is decided by its content (aecore.images).
- describe(shape, dataset=None): a sentence saying what is done to an upload for that model.
"""

from __future__ import annotations

import hashlib

import streamlit as st
import torch

from aecore import images
from aecore.images import (
    FORMATS,
    MAX_PIXELS,
    ImageRejected,
    layout_for,
    looks_light,
)

__all__ = [
    "FORMATS",
    "MAX_PIXELS",
    "MIME_TYPES",
    "ImageRejected",
    "describe",
    "image_from_upload",
    "layout_for",
    "looks_light",
    "uploader",
]

MIME_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/gif", "image/webp")  # = FORMATS
CACHE_ENTRIES = 16  # decoded uploads kept (each a few KB): a handful of sessions' latest files


def image_from_upload(
    data: bytes, shape: tuple[int, int, int], dataset: str | None = None
) -> torch.Tensor:
    """float (1, C, H, W) in [0, 1] for a model of input `shape` (trained on `dataset`, if
    given: it picks the layout; otherwise the shape does). Raises ImageRejected (a ValueError)
    with a message for the user. Decodes a given file's bytes once for all reruns and sessions.
    """
    shape = (int(shape[0]), int(shape[1]), int(shape[2]))
    layout = layout_for(shape, dataset)
    tensor, message = _decoded(hashlib.sha256(data).hexdigest(), shape, layout, data)
    if message is not None:
        raise ImageRejected(message)
    return tensor


@st.cache_data(max_entries=CACHE_ENTRIES, show_spinner=False)
def _decoded(
    digest: str, shape: tuple[int, int, int], layout: str, _data: bytes
) -> tuple[torch.Tensor | None, str | None]:
    """(tensor, None) or (None, the refusal's message): keyed by the bytes' digest, not the bytes
    (the leading underscore keeps Streamlit from hashing them a second time)."""
    try:
        return images.image_from_upload(_data, shape, layout), None
    except ImageRejected as err:
        return None, str(err)


def describe(shape: tuple[int, int, int], dataset: str | None = None) -> str:
    """One sentence for the page: what happens to an uploaded image before the model sees it."""
    c, h, w = shape
    layout = layout_for(tuple(shape), dataset)
    if layout == "mnist":
        return (
            "Your drawing is found (dark on light or light on dark), cropped to its ink, scaled "
            "so its long side is 20 pixels and centred by mass in 28x28, light on black: how "
            "MNIST's digits were made."
        )
    if layout == "digits":
        return (
            "Your drawing is found, cropped to its ink, scaled to fill a 32x32 bitmap and its "
            "4x4 blocks counted into 8x8, light on black: how scikit-learn's digits were made."
        )
    if layout == "fashion":
        return (
            "Your picture is trimmed to the object, its long side scaled to 28 pixels, centred "
            "and negated when the background is light: how Fashion-MNIST was made."
        )
    colour = "grayscale" if c == 1 else "RGB"
    return f"Your image is cropped to the model's {w}x{h} aspect, resized and made {colour}."


def uploader(label: str, key: str, where=st, **kwargs):
    """where.file_uploader offering the image types of FORMATS; the UploadedFile or None.

    The types are given as MIME types: the browser's file dialog still offers only these images,
    and Streamlit then leaves the file's name unchecked (it documents that it trusts the
    browser's filtering whenever a MIME type is listed). With extensions instead, Streamlit
    refuses a name like `x.svg` sent past the browser while restoring the widget, before the
    script runs, so every later rerun of that session fails and the page cannot catch it. What a
    file is, is decided here by its content (image_from_upload), never by its name.
    """
    return where.file_uploader(label, type=list(MIME_TYPES), key=key, **kwargs)
