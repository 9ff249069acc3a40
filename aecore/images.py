"""Decode an untrusted image file (an upload) into one model input, or refuse it with a message
fit to show the user.

Decoding is bounded before any pixel is decoded. Only the decoders of DECODERS are used, chosen
by the file's content, never by its name (Pillow would otherwise also open formats like EPS,
whose plugin runs Ghostscript); an SVG or another known format gets a message naming it. Sizes are
read from the header (Image.open is lazy): a side over MAX_SIDE or more than MAX_PIXELS pixels
is refused (a 78 KB PNG of 1 x 39,990,000 pixels cost +690 MB and 1.5-4 s to decode, a 1.6 KB
lossless WebP of 6300x6300 +610 MB); a JPEG is decoded at 1/2..1/8 scale (Image.draft), so
photos up to MAX_JPEG_PIXELS are fine. Everything a valid file
can hold is mapped onto [0, 1] on purpose: 16-bit samples are scaled by their range (not clipped
to white), transparency is composited onto white (how viewers show it: a dark drawing stays
visible), CMYK and palettes become RGB, an animated file gives its first frame, EXIF rotation is
applied.

How the picture is laid out in the model's input (`layout`):

- "crop": the central crop with the model's aspect ratio, resized (photos: CIFAR-10).
- "mnist": MNIST's own preprocessing: the ink is found (dark on light or light on dark, under
  uneven lighting), cropped to its bounding box, scaled so its long side is 20 of 28 pixels and
  placed with its centre of mass at the centre; light ink on black, like the training digits.
- "digits": scikit-learn's 8x8 digits (UCI optdigits): the ink's box scaled to fill a 32x32
  bitmap, centred, thresholded, and the on-pixels of each 4x4 block counted (0..16 -> 0..1).
- "fashion": Fashion-MNIST's conversion: trimmed to the object, long side scaled to 28, centred by
  its box, negated when the background is light. Not MNIST's ink saturation: grey stays grey.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from aecore.data import DATASETS

MAX_PIXELS = 6_000_000  # decoded pixels: a phone screenshot fits; about 25-100 MB to decode
MAX_SIDE = 20_000  # a tall strip costs ~8 bytes a row more: 1x5,000,000 loads in +45 MB
MAX_JPEG_PIXELS = 48_000_000  # a JPEG's header: decoded at 1/8 scale, so well under MAX_PIXELS
FORMATS = ("png", "jpg", "jpeg", "bmp", "gif", "webp")  # file extensions the uploader offers
DECODERS = ("PNG", "JPEG", "BMP", "GIF", "WEBP")  # Pillow format names: nothing else is opened
BACKGROUND = 255  # what transparent pixels become: white paper
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I")
WORK_SIDE = 512  # the long side the ink is looked for at (a photo is reduced to 512..1023)
WORK_MIN = 128  # smaller pictures are enlarged to at least this long side first
ACCEPTED = "Upload a PNG, JPEG, BMP, GIF or WebP image."

# Formats recognised by their first bytes only to name them in the refusal; never decoded.
_KNOWN = (
    (b"%PDF", "a PDF document"),
    (b"%!PS", "a PostScript/EPS file"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"8BPS", "a Photoshop (PSD) file"),
    (b"\x00\x00\x01\x00", "an icon (ICO) file"),
    (b"PK\x03\x04", "a ZIP archive"),
)
_ORIENTATION = {  # EXIF orientation -> the transpose that shows the image upright
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class ImageRejected(ValueError):
    """The file cannot be used; str(err) says why, for the user."""


@dataclass(frozen=True)
class _Layout:
    box: float  # the ink's long side as a fraction of the canvas side
    by_mass: bool  # centred by centre of mass (MNIST) or by bounding box
    saturate: bool  # strokes stretched to full intensity (ink) or grey kept (objects)
    blocks: int = 1  # rendered at blocks x the size, binarised, blocks counted (optdigits)


LAYOUTS = {
    "crop": None,
    "mnist": _Layout(box=20 / 28, by_mass=True, saturate=True),
    "digits": _Layout(box=1.0, by_mass=False, saturate=True, blocks=4),
    "fashion": _Layout(box=1.0, by_mass=False, saturate=False),
}


def layout_for(shape: tuple[int, int, int], dataset: str | None = None) -> str:
    """The layout for a model of input `shape` trained on `dataset` (None: guessed from shape:
    28x28 grayscale is MNIST, 8x8 grayscale is scikit-learn's digits, anything else "crop")."""
    if dataset is not None:
        return DATASETS[dataset].meta["upload_layout"] if dataset in DATASETS else "crop"
    return {(1, 28, 28): "mnist", (1, 8, 8): "digits"}.get(tuple(shape), "crop")


def image_from_upload(
    data: bytes, shape: tuple[int, int, int], layout: str = "crop"
) -> torch.Tensor:
    """Decode `data` into float (1, C, H, W) in [0, 1] for a model of input shape (C, H, W).

    layout: see the module's docstring; the ink layouts need C == 1. Raises ImageRejected (a
    ValueError) with a message for the user when the file is not an image this function accepts
    or, for the ink layouts, when no drawing can be found in it.
    """
    c, h, w = shape
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; one of {sorted(LAYOUTS)}")
    spec = LAYOUTS[layout]
    if spec is not None and c != 1:
        raise ValueError(f"layout {layout!r} makes grayscale inputs, not {c} channels")
    if spec is None:
        img = decode(data, min_side=3 * max(h, w))  # Lanczos's last step from 3x (reducing_gap)
        small = _fit(img, (w, h)).convert("L" if c == 1 else "RGB")
        pixels = np.asarray(small, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(pixels.copy())
        tensor = tensor[None] if c == 1 else tensor.permute(2, 0, 1)  # (C, H, W)
        return tensor[None]
    img = _on_white(decode(data, long_side=WORK_SIDE)).convert("L")
    if max(img.size) < WORK_MIN:  # a small drawing (a 28x28 digit): the filters need room
        factor = -(-WORK_MIN // max(img.size))
        img = img.resize((img.width * factor, img.height * factor), Image.Resampling.BICUBIC)
    gray = np.asarray(img, dtype=np.float32) / 255.0
    ink = _ink(gray, spec.saturate)
    return torch.from_numpy(_place(ink, (h, w), spec))[None, None]


def looks_light(image: torch.Tensor) -> bool:
    """Whether an image is mostly light: dark strokes on paper, the opposite of MNIST's digits."""
    return float(image.mean()) > 0.5


# ---------------------------------------------------------------------------------------------
# Decoding


def decode(data: bytes, *, min_side: int = 0, long_side: int = 0) -> Image.Image:
    """The file's first frame, upright, in L, LA, RGB or RGBA with 8 bits per sample.

    Reduced by a whole factor while decoding (JPEG) and after it (the rest), keeping the short
    side at least `min_side` or the long side at least `long_side`. Raises ImageRejected.
    """
    if not data:
        raise ImageRejected(f"The file is empty. {ACCEPTED}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=DECODERS) as img:
                _check_size(img.width, img.height, img.format)
                img.seek(0)  # an animated GIF or WebP: its first frame
                if img.format == "JPEG":  # decoded at 1/2..1/8 scale when that is still enough
                    want = max(min_side, 1), max(min_side, 1)
                    if long_side:  # (draft keeps both sides >= want; the short one suffices)
                        want = (long_side, long_side)
                    img.draft(None, want)
                    _check_size(img.width, img.height, "decoded")
                orientation = _orientation(img)
                img.load()
                img = _eight_bit(img)
                if min_side:
                    factor = min(img.size) // min_side
                else:
                    factor = max(img.size) // max(long_side, 1)
                if factor >= 2:
                    img = img.reduce(factor)
                if orientation is not None:
                    img = img.transpose(orientation)
                return img
    except ImageRejected:
        raise
    except UnidentifiedImageError:
        raise ImageRejected(_unreadable(data)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(_too_large_message()) from None
    except Exception as err:  # truncated or corrupt files raise OSError, SyntaxError, ValueError...
        why = " ".join(str(err).split())[:120] or type(err).__name__
        raise ImageRejected(f"The image could not be decoded ({why}). Try another file.") from None


def _check_size(width: int, height: int, fmt: str | None) -> None:
    if width < 1 or height < 1:
        raise ImageRejected("The image has no pixels. Try another file.")
    if max(width, height) > MAX_SIDE:
        raise ImageRejected(
            f"The image is {width}x{height} pixels; no side may be longer than "
            f"{MAX_SIDE:,} pixels. Please upload a smaller one."
        )
    limit = MAX_JPEG_PIXELS if fmt == "JPEG" else MAX_PIXELS
    if width * height > limit:
        size = f"{width}x{height} pixels" + (" once reduced" if fmt == "decoded" else "")
        raise ImageRejected(_too_large_message(size))


def _too_large_message(size: str = "too large") -> str:
    return (
        f"The image is {size}; the limit is {MAX_PIXELS // 1_000_000} million pixels "
        f"({MAX_JPEG_PIXELS // 1_000_000} million for JPEG photos). Please upload a smaller one."
    )


def _unreadable(data: bytes) -> str:
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    what = next((name for magic, name in _KNOWN if data.startswith(magic)), None)
    if head.startswith((b"<?xml", b"<svg", b"<!doctype svg")) and b"<svg" in data[:4096].lower():
        what = "an SVG (vector) drawing; export it as PNG first"
    elif data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        what = "a HEIC/AVIF photo; most phones can share it as JPEG instead"
    it_is = f": it is {what}" if what else ""
    return f"That file is not an image this app can read{it_is}. {ACCEPTED}"


def _orientation(img: Image.Image) -> Image.Transpose | None:
    """The EXIF rotation to apply; a broken EXIF block is ignored rather than refusing the image."""
    try:
        return _ORIENTATION.get(img.getexif().get(0x0112, 1))
    except Exception:
        return None


def _eight_bit(img: Image.Image) -> Image.Image:
    """img in L, LA, RGB or RGBA: 8 bits per sample, alpha kept for compositing after resizing."""
    if img.mode in SIXTEEN_BIT:
        return _scaled_int(img)
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
    """16-bit (or 32-bit integer) samples onto 0..255 by their range, in numpy.

    (Pillow's point() on I;16 keeps the mode, and reduce() refuses it: "image has wrong mode".)
    0..65535 maps onto 0..255 (v / 257, rounded); 32-bit samples outside that range are
    stretched from their minimum to their maximum. Integer arithmetic: 4 bytes a pixel at most.
    """
    pixels = np.asarray(img)
    low, high = int(pixels.min()), int(pixels.max())
    if low >= 0 and high <= 65535:
        scaled = pixels.astype(np.uint32)
        scaled += 128
        scaled //= 257
    else:  # some other range: stretched onto 0..255
        span = high - low or 1
        scaled = pixels.astype(np.int64) - low
        scaled *= 255
        scaled += span // 2
        scaled //= span
    del pixels
    return Image.fromarray(scaled.astype(np.uint8))


def _on_white(img: Image.Image) -> Image.Image:
    """Alpha composited onto white paper; L and RGB unchanged."""
    if img.mode not in ("LA", "RGBA"):
        return img
    rgba = img.convert("RGBA")
    paper = Image.new("RGBA", rgba.size, (BACKGROUND,) * 3 + (255,))
    return Image.alpha_composite(paper, rgba)


def _fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """The central crop with size's aspect ratio, resized to size; alpha composited onto white."""
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
    return _on_white(small)


# ---------------------------------------------------------------------------------------------
# Finding the ink and laying it out like the training images

BLANK = (
    "No drawing was found: the image looks blank (one even colour). Upload a photo, scan or "
    "drawing of a digit: dark on light or light on dark."
)
GRID = 3  # the paper's level is estimated per cell of a GRID x GRID grid (uneven lighting);
# a third of a side holds some paper even where a digit filling the picture has thick strokes


def _ink(gray: np.ndarray, saturate: bool) -> np.ndarray:
    """Ink (or object) of a grayscale image in [0, 1], as light on black: 0 away from it, cropped
    to the ink's bounding box.

    Ink (saturate): both polarities are tried; the ink is the one with clearly the stronger
    contrast, or between two as strong, the smaller area (ink is the minority: read as ink, the
    paper around thick strokes covers more). The paper's level is estimated per cell of a
    coarse grid, so a photo lit from one side is thresholded against its own local paper; the
    strokes are stretched to full intensity like MNIST's. Object (not saturate): the background
    is the corners' median, negated when light (Fashion-MNIST's product photos on white), grey
    levels kept. Specks far smaller than the drawing are dropped. Raises ImageRejected when
    nothing is found.
    """
    from scipy import ndimage

    if saturate:
        found = [_strokes(ink) for ink in (gray, 1.0 - gray)]
        found = [f for f in found if f is not None]
        if not found:
            raise ImageRejected(BLANK)
        # Read the wrong way round, thin dark strokes give only noise at the threshold; a light
        # background around thick light strokes gives as strong a contrast as they do, but more.
        strongest = max(f[3] for f in found)
        found = [f for f in found if f[3] >= 0.5 * strongest]
        strength, mask, threshold, typical = min(found, key=lambda f: int(f[1].sum()))
        low = threshold / 2
        value = np.clip((strength - low) / max(typical - low, 1e-6), 0.0, 1.0)
    else:
        paper = float(np.median(_corners(gray)))
        ink = 1.0 - gray if paper > 0.5 else gray
        paper = min(paper, 1.0 - paper)
        strength = ink - paper
        smooth = ndimage.uniform_filter(strength, 3)
        mask = smooth > max(4 * _noise(gray), 0.05)
        if not mask.any():
            raise ImageRejected(BLANK)
        value = np.clip(strength / max(1.0 - paper, 1e-6), 0.0, 1.0)

    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    if count > 1:
        # Specks (under 5% of the largest one's area) go, and so do parts much fainter than the
        # strongest part: soft shadows and darker corners next to the ink.
        index = np.arange(1, count + 1)
        areas = ndimage.sum_labels(mask, labels, index)
        level = ndimage.median(strength, labels, index)
        big = areas >= 0.05 * areas.max()
        keep = index[big & (level >= 0.6 * level[big].max())]
        mask = np.isin(labels, keep)
    near = ndimage.binary_dilation(mask, iterations=2)  # the strokes' soft edges stay
    value = np.where(near, value, 0.0).astype(np.float32)
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return value[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _strokes(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float] | None:
    """For `ink` read as light strokes on dark paper: (strength above the local paper, the
    strokes' mask, its threshold, the strokes' typical strength), or None when there are none.
    """
    from scipy import ndimage

    # The paper's level: a low percentile per cell and its neighbours' (strokes can be thick).
    strength = ink - _background(ink, 10, spread=True)
    smooth = ndimage.uniform_filter(strength, 3)
    floor = max(5 * _noise(ink), 0.1)  # far above the noise (3x3 means divide it by 3)
    found = smooth > floor
    if not found.any():
        return None
    typical = float(np.percentile(smooth[found], 90))
    threshold = max(floor, 0.3 * typical)  # faint smudges and shadows next to strong ink: out
    return strength, smooth > threshold, threshold, typical


def _background(image: np.ndarray, percentile: float, spread: bool = False) -> np.ndarray:
    """A smooth background: `percentile` of each cell of a GRID x GRID grid, linear between the
    cells' centres and extrapolated to the edges (a lighting gradient is followed exactly).
    With `spread`, a cell well above the median of its 3x3 neighbourhood (a thick stroke fills
    it) takes the lowest value of that neighbourhood instead."""
    from scipy import ndimage

    h, w = image.shape
    ys = np.linspace(0, h, GRID + 1).round().astype(int)
    xs = np.linspace(0, w, GRID + 1).round().astype(int)
    cells = np.zeros((GRID, GRID), dtype=np.float32)
    for i in range(GRID):
        for j in range(GRID):
            y0, x0 = min(ys[i], h - 1), min(xs[j], w - 1)
            cell = image[y0 : max(ys[i + 1], y0 + 1), x0 : max(xs[j + 1], x0 + 1)]
            cells[i, j] = np.percentile(cell, percentile)
    if spread:
        around = ndimage.median_filter(cells, size=3, mode="nearest")
        lowest = ndimage.minimum_filter(cells, size=3, mode="nearest")
        cells = np.where(cells > around + 0.1, lowest, cells)
    rows = _linear(cells, h)  # (h, GRID)
    return _linear(rows.T, w).T  # (h, w)


def _linear(values: np.ndarray, n: int) -> np.ndarray:
    """values (k, ...) at the centres of k equal parts of 0..n, linear at n pixel centres."""
    k = len(values)
    if k == 1:
        return np.repeat(values, n, axis=0)
    at = (np.arange(n) + 0.5) * k / n - 0.5  # pixel centres in cell-centre units
    low = np.clip(np.floor(at).astype(int), 0, k - 2)
    t = (at - low)[:, None]
    return (values[low] * (1 - t) + values[low + 1] * t).astype(np.float32)


def _noise(image: np.ndarray) -> float:
    """The pixel noise's standard deviation, from differences of horizontal neighbours (robust:
    most neighbours lie on the same paper or stroke, whatever share of the image is ink)."""
    if image.shape[1] < 2:
        return 0.0
    step = np.abs(np.diff(image, axis=1))
    return 1.4826 * float(np.median(step)) / np.sqrt(2)


def _corners(image: np.ndarray) -> np.ndarray:
    """The four corner squares (a twentieth of the short side): the background of a product
    photo, as Fashion-MNIST's trimming took it."""
    k = max(1, min(image.shape) // 20)
    return np.concatenate(
        [image[:k, :k], image[:k, -k:], image[-k:, :k], image[-k:, -k:]], axis=None
    )


def _place(ink: np.ndarray, size: tuple[int, int], spec: _Layout) -> np.ndarray:
    """The ink's box scaled so its long side is spec.box of the canvas, placed on black."""
    h, w = size
    k = spec.blocks
    canvas_h, canvas_w = h * k, w * k
    side = max(1, round(spec.box * min(canvas_h, canvas_w)))
    ih, iw = ink.shape
    scale = side / max(ih, iw)
    new_w, new_h = max(1, round(iw * scale)), max(1, round(ih * scale))
    filt = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR  # no ringing
    patch = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32))
    patch = patch.resize((new_w, new_h), filt)
    patch = np.clip(np.asarray(patch, dtype=np.float32), 0.0, 1.0)
    if spec.by_mass and patch.sum() > 0:  # MNIST: the centre of mass at the canvas's centre
        ys, xs = np.indices(patch.shape)
        cy, cx = (patch * ys).sum() / patch.sum(), (patch * xs).sum() / patch.sum()
        top, left = round(canvas_h / 2 - cy), round(canvas_w / 2 - cx)
    else:
        top, left = (canvas_h - new_h) // 2, (canvas_w - new_w) // 2
    top = min(max(top, 0), canvas_h - new_h)  # never cut ink off
    left = min(max(left, 0), canvas_w - new_w)
    canvas = np.zeros((canvas_h, canvas_w), dtype=np.float32)
    canvas[top : top + new_h, left : left + new_w] = patch
    if k > 1:  # optdigits: a binary bitmap, on-pixels counted per k x k block
        on = (canvas >= 0.5).astype(np.float32)
        canvas = on.reshape(h, k, w, k).sum((1, 3)) / (k * k)
    return canvas
