"""aecore.latent's functions for any point of a 2-D code, and the clickable plane's figure."""

import numpy as np
import pytest
import torch

from aecore import latent
from aecore.config import TrainConfig
from aecore.explore_plots import GRID_NAME, GRID_SIDE, clicked_code, plane_figure
from aecore.models import build_model


def model(kind: str = "dense", code: int = 2):
    cfg = TrainConfig(dataset="digits", corruption="none", level=0.0, model=kind, latent=code)
    return build_model(cfg, (1, 8, 8))


def test_the_extent_holds_every_code_with_a_margin():
    codes = torch.tensor([[0.0, 10.0], [4.0, 30.0], [2.0, 20.0]])
    x0, x1, y0, y1 = latent.plane_extent(codes, margin=0.25)
    assert (x0, x1) == pytest.approx((-1.0, 5.0))
    assert (y0, y1) == pytest.approx((5.0, 35.0))


def test_a_vae_plane_also_holds_its_prior_to_3_sigma():
    codes = torch.tensor([[0.5, -0.2], [1.0, 0.4]])
    x0, x1, y0, y1 = latent.plane_extent(codes, margin=0.0, prior_sigmas=3.0)
    assert (x0, x1, y0, y1) == pytest.approx((-3.3, 3.3, -3.3, 3.3))  # 1/20 of 6
    far = torch.tensor([[0.0, 0.0], [7.0, 0.0]])
    assert latent.plane_extent(far, margin=0.0, prior_sigmas=3.0)[1] == pytest.approx(7.5)


def test_a_dead_unit_still_gets_a_plane():
    codes = torch.tensor([[0.0, 0.0], [0.0, 30.0]])  # unit 1 is 0 for every image
    x0, x1, _, _ = latent.plane_extent(codes)
    assert x1 - x0 == pytest.approx(3.0)


def test_the_extent_refuses_codes_that_are_not_2d():
    with pytest.raises(ValueError, match="2-D codes"):
        latent.plane_extent(torch.zeros(5, 3))


def test_decoding_a_point_is_the_decoder_of_that_code():
    ae = model()
    image = latent.decode_point(ae, 0.3, -1.2)
    assert image.shape == (1, 8, 8)
    expected = ae.decode(torch.tensor([[0.3, -1.2]])).clamp(0, 1)[0]
    torch.testing.assert_close(image, expected.detach())
    assert ae.training  # the mode it was found in


def test_decoding_a_point_needs_a_2_unit_code():
    with pytest.raises(ValueError, match="2-unit code"):
        latent.decode_point(model(code=8), 0.0, 0.0)


def test_nearest_codes_are_sorted_euclidean_neighbours():
    codes = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 0.0], [-2.0, 0.0]])
    idx, dist = latent.nearest_codes(codes, (0.1, 0.0), k=3)
    assert idx.tolist() == [0, 2, 3]
    assert dist.tolist() == pytest.approx([0.1, 0.9, 2.1])
    idx, _ = latent.nearest_codes(codes, (0.0, 0.0), k=10)  # fewer codes than k
    assert len(idx) == 4
    with pytest.raises(ValueError, match="3-D point"):
        latent.nearest_codes(codes, (0.0, 0.0, 0.0))


def test_the_grid_covers_the_extent_corner_to_corner():
    grid = latent.plane_grid((-1.0, 1.0, 0.0, 4.0), 5)
    assert grid.shape == (25, 2)
    assert grid.min(0).tolist() == [-1.0, 0.0] and grid.max(0).tolist() == [1.0, 4.0]


def figure(**kw):
    points = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
    labels = np.array([0, 1, 1])
    return plane_figure(points, labels, ("a", "b"), (-1.0, 3.0, -1.0, 2.0), **kw)


def test_the_plane_is_clickable_everywhere_and_keeps_its_extent():
    fig = figure(marker=(2.5, -0.5), marker_name="clicked")
    names = [t.name for t in fig.data]
    assert names == [GRID_NAME, "a", "b", "clicked"]  # the grid under the test points
    grid = fig.data[0]
    assert len(grid.x) == GRID_SIDE**2 and grid.marker.opacity == 0
    assert (min(grid.x), max(grid.x), min(grid.y), max(grid.y)) == (-1.0, 3.0, -1.0, 2.0)
    assert list(fig.layout.xaxis.range) == [-1.0, 3.0]
    assert (fig.data[-1].x[0], fig.data[-1].y[0]) == (2.5, -0.5)
    assert not fig.layout.shapes  # no prior for a plain autoencoder


def test_a_picture_only_plane_has_no_grid():
    assert [t.name for t in figure(clickable=False).data] == ["a", "b"]


def test_a_vae_plane_draws_its_prior_circle():
    fig = figure(prior_sigmas=3.0)
    (circle,) = fig.layout.shapes
    assert (circle.type, circle.x0, circle.x1) == ("circle", -3.0, 3.0)


def test_the_clicked_code_is_read_from_a_selection():
    assert clicked_code([{"x": 1.5, "y": -2, "curve_number": 0}]) == (1.5, -2.0)
    assert clicked_code([{"curve_number": 0}, {"x": 0, "y": 1}]) == (0.0, 1.0)
    assert clicked_code([]) is None
