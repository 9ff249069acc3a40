"""aecore.preview: the Home page's labelled picture, and the stored one matching the model."""

import json

import numpy as np
import pytest
import torch

from aecore.checkpoints import load_checkpoint
from aecore.data import load_dataset
from aecore.plots import LABEL_PX, labelled_png
from aecore.plots import LABELLED_PAD as PAD
from aecore.pretrain import read_manifest
from aecore.preview import (
    HOME_DEMO,
    HOME_LEVEL,
    HOME_PREVIEW,
    MARGIN_LEVELS,
    demo_rows,
    margins,
    png_pixels,
    read_home_margins,
)


def test_labelled_png_has_a_row_per_entry_and_a_tile_per_image():
    rows = {"a": torch.zeros(5, 1, 8, 8), "b": torch.ones(5, 1, 8, 8)}
    pixels = png_pixels(labelled_png(rows, tile_px=20))
    assert pixels.shape == (2 * (20 + PAD), LABEL_PX + 5 * (20 + PAD), 3)
    assert (pixels[5, LABEL_PX + 5] == 0).all()  # row a's first tile is black
    assert (pixels[20 + PAD + 5, LABEL_PX + 5] == 255).all()  # row b's is white
    assert (pixels[:, :LABEL_PX] < 128).any()  # the labels are drawn


def test_colour_images_keep_their_colour():
    red = torch.zeros(1, 3, 4, 4)
    red[:, 0] = 1.0
    pixels = png_pixels(labelled_png({"x": red}, tile_px=8))
    assert tuple(pixels[2, LABEL_PX + 2]) == (255, 0, 0)


def test_the_stored_home_picture_is_what_the_bundled_model_draws_now(real_data):
    """The Home page shows HOME_PREVIEW before the live picture; they must be the same."""
    (entry,) = [e for e in read_manifest()[1] if e.name == HOME_DEMO]
    stored = png_pixels(HOME_PREVIEW.read_bytes())
    assert stored.shape[0] > 200 and stored.shape[1] > 600
    if not real_data:
        return  # without Fashion-MNIST only the file itself can be checked
    ckpt = load_checkpoint(entry.path)
    live = png_pixels(labelled_png(demo_rows(ckpt, load_dataset(entry.config.dataset), HOME_LEVEL)))
    assert live.shape == stored.shape
    assert np.abs(live.astype(int) - stored.astype(int)).max() <= 1


def test_the_stored_margins_belong_to_one_run(tmp_path):
    path = tmp_path / "home_margins.json"
    rows = [{"level": 0.5, "model": 19.0, "median3": 11.3, "best": 15.7, "best_label": "x"}]
    path.write_text(json.dumps({"key": "abc", "rows": rows}))
    assert read_home_margins("abc", path) == rows
    assert read_home_margins("another run", path) is None
    path.write_text("{not json")
    assert read_home_margins("abc", path) is None


def test_the_demo_models_margins_are_the_stored_ones(real_data):
    """checkpoints/previews/home_margins.json, read by Home, is what the demo model and the
    classical methods give now (the first 300 test images here; the file holds all of them, so
    within the spread of 300 images' means)."""
    (entry,) = [e for e in read_manifest()[1] if e.name == HOME_DEMO]
    ckpt = load_checkpoint(entry.path)
    stored = read_home_margins(ckpt.config.key())
    assert stored is not None and [r["level"] for r in stored] == list(MARGIN_LEVELS)
    if not real_data:
        return  # the stored numbers are about the real test set
    ds = load_dataset(ckpt.config.dataset)
    for now, then in zip(margins(ckpt, ds, limit=300), stored, strict=True):
        assert now["model"] == pytest.approx(then["model"], abs=0.6)
        assert now["best_label"] == then["best_label"]
