"""aecore.plots.grid_pixels, the one image-grid renderer, and the pictures drawn with it: the
same pixels the renderers it replaced drew (torchvision's make_grid and save_image, and
aecore.preview's labelled PNG)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from torchvision.utils import make_grid, save_image

from aecore import plots
from aecore.preview import png_pixels


def images(n: int, c: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("n", "c", "per_row"), [(6, 1, 3), (7, 3, 4), (5, 1, 8)])
def test_grid_pixels_is_make_grids_layout(n: int, c: int, per_row: int):
    batch = images(n, c, 8, 6)
    ours = plots.grid_pixels(batch, per_row)
    grid = make_grid(batch, nrow=per_row, padding=plots.PAD, pad_value=1.0)
    theirs = (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(ours, theirs)


def test_grid_png_is_what_save_image_wrote():
    rows = {"a": images(4, 1, 8, 8), "b": images(4, 1, 8, 8, seed=1)}
    buf = io.BytesIO()
    batch = torch.cat(list(rows.values()))
    save_image(batch, buf, format="png", nrow=4, padding=plots.PAD, pad_value=1.0)
    ours, theirs = png_pixels(plots.grid_png(rows)), png_pixels(buf.getvalue())
    assert ours.shape == theirs.shape
    # save_image rounds halves up, we round them to even: at most one level apart.
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1


def test_nearest_scaling_keeps_each_source_pixel_a_block():
    x = torch.arange(4.0).reshape(1, 1, 2, 2) / 3
    tiles = plots.grid_pixels(x, 1, pad=0, tile_px=6)[..., 0]
    assert (tiles[:3, :3] == 0).all() and (tiles[3:, 3:] == 255).all()
    assert len(np.unique(tiles[:3, 3:])) == 1 and len(np.unique(tiles[3:, :3])) == 1
