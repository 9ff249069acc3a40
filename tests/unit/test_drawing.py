"""aecore.drawing on synthetic strokes: canvas pixels -> the dataset's kind of image."""

import numpy as np
import pytest
import torch

from aecore import drawing
from aecore.data import load_dataset


def canvas(strokes, side=280, transparent=False) -> np.ndarray:
    """RGBA pixels: white strokes (rows, cols slices) on black or on a transparent background."""
    rgba = np.zeros((side, side, 4), dtype=np.uint8)
    rgba[..., 3] = 0 if transparent else 255
    for rows, cols in strokes:
        rgba[rows, cols] = 255
    return rgba


BAR = (slice(40, 240), slice(130, 150))  # a vertical "1", 200 x 20 pixels, right of centre


def test_ink_is_brightness_times_opacity():
    rgba = canvas([BAR], transparent=True)
    ink = drawing.ink_from_rgba(rgba)
    assert ink.shape == (280, 280) and ink.max() == 1.0 and ink[0, 0] == 0.0
    assert drawing.ink_from_rgba(canvas([BAR])[..., :3]).sum() == ink.sum()
    with pytest.raises(ValueError):
        drawing.ink_from_rgba(np.zeros((4, 4)))


def test_an_empty_canvas_is_a_blank_drawing():
    with pytest.raises(drawing.BlankDrawing, match="empty"):
        drawing.to_model_input(canvas([]), "mnist")


def test_mnist_scales_the_box_to_20_and_centres_the_mass():
    image = drawing.as_mnist(drawing.ink_from_rgba(canvas([BAR])))
    assert image.shape == (28, 28) and image.max() == pytest.approx(1.0)
    rows = np.flatnonzero(image.max(1) > 0.05)
    assert rows[-1] - rows[0] + 1 == 20  # the long side is 20 pixels
    cy, cx = drawing.centre_of_mass(image)
    assert abs(cy - 13.5) <= 0.5 and abs(cx - 13.5) <= 0.5  # off-centre strokes are centred


def test_the_mass_not_the_box_is_centred():
    # An "L": most ink in the long bar, so the box's centre is right of the centre of mass.
    ell = [(slice(40, 240), slice(60, 80)), (slice(220, 240), slice(60, 200))]
    image = drawing.as_mnist(drawing.ink_from_rgba(canvas(ell)))
    cols = np.flatnonzero(image.max(0) > 0.05)
    box_centre = (cols[0] + cols[-1]) / 2
    assert abs(drawing.centre_of_mass(image)[1] - 13.5) <= 0.5
    assert box_centre > 14


def test_digits_gives_the_loaders_17_levels():
    thick = (slice(40, 240), slice(120, 170))  # 8 of 32 bitmap pixels wide: full blocks
    image = drawing.as_optdigits(drawing.ink_from_rgba(canvas([thick])))
    assert image.shape == (8, 8)
    levels = np.round(image * 255 * 16 / 255)  # back to counts 0..16
    assert np.allclose(image, np.round(levels * 255 / 16) / 255)
    assert image.max() == 1.0 and (image == 0).sum() > 32  # a bar: most blocks are empty
    real = load_dataset("digits").train_images.float() / 255
    assert set(np.unique(image)) <= set(np.unique(real.numpy()))


def test_fashion_fills_28_and_keeps_gray():
    rgba = canvas([(slice(40, 240), slice(40, 240))])
    rgba[140:240, 40:240, :3] = 128  # a two-tone square
    image = drawing.as_fashion(drawing.ink_from_rgba(rgba))
    assert image.shape == (28, 28)
    assert image.max() == pytest.approx(1.0) and 0.4 < np.median(image[20:, :]) < 0.6


def test_to_model_input_matches_the_dataset_shape():
    x = drawing.to_model_input(canvas([BAR]), "digits")
    assert x.shape == (1, 1, 8, 8) and x.dtype == torch.float32
    assert drawing.to_model_input(canvas([BAR]), "mnist").shape == (1, 1, 28, 28)


def test_colour_sets_take_no_drawing():
    assert drawing.layout_of("cifar10") is None and drawing.layout_of("mnist") == "mnist"
    with pytest.raises(ValueError, match="gray digit and clothing"):
        drawing.to_model_input(canvas([BAR]), "cifar10")
