"""app_pages/explore.py: decode any point of a 2-D code, with its nearest training images."""

import dataclasses
import json

import pytest

from aecore import latent
from aecore.checkpoints import load_checkpoint
from aecore.data import load_dataset
from app_pages import _explore
from tests.app.conftest import TINY, page, texts


def plane(at) -> dict:
    (chart,) = at.get("plotly_chart")
    return json.loads(chart.proto.spec)


def captions(at) -> list[str]:
    """The captions of the page's images (the decoded point, then the neighbours)."""
    return [img.caption for element in at.get("image") for img in element.proto.imgs]


def test_a_bundled_2d_model_decodes_the_point_that_was_clicked():
    at = page("explore").run()
    assert not at.exception
    assert "Decoded: (0.00, 0.00)" in captions(at)  # a VAE starts at its prior's mean
    entry = _explore.bundled(True)[0]
    assert entry.config.dataset == "digits"  # the first choice works offline
    at.session_state[f"exp_point_{entry.config.key()}"] = (2.5, -1.25)  # as a click would
    at.run()
    assert not at.exception
    assert "Decoded: (2.50, -1.25)" in captions(at)
    marker = [t for t in plane(at)["data"] if t.get("name") == "clicked"][0]
    assert (marker["x"], marker["y"]) == ([2.5], [-1.25])
    # The neighbours shown are the training images whose codes lie nearest to the point.
    model = load_checkpoint(entry.path).model
    ds = load_dataset("digits")
    order, dist = latent.nearest_codes(latent.encode_all(model, ds.train_images), (2.5, -1.25), 6)
    expected = [
        f"{ds.classes[int(ds.train_labels[j])]} · {d:.2f}" for j, d in zip(order, dist, strict=True)
    ]
    shown = [c for c in captions(at) if "·" in c]
    assert sorted(shown) == sorted(expected)  # drawn in 3 columns: column by column here


def test_the_plane_spans_the_prior_for_a_vae():
    at = page("explore").run()
    layout = plane(at)["layout"]
    assert layout["xaxis"]["range"][0] < -3 and layout["xaxis"]["range"][1] > 3
    assert layout["shapes"][0]["type"] == "circle"
    assert "Last click" not in texts(at.caption)


def test_a_sidebar_config_without_a_2d_code_offers_the_2_unit_version(trained_runs):
    at = page("explore", dataclasses.replace(TINY, latent=8)).run()
    at.radio(key="exp_source").set_value(_explore.SIDEBAR).run()
    assert not at.exception
    assert "has 8 units" in texts(at.info)
    assert not at.get("plotly_chart")
    at.button(key="exp_open2").click().run()
    assert not at.exception
    assert "has 8 units" not in texts(at.info)
    assert len(at.get("plotly_chart")) == 1  # TINY itself: trained, 2-D


def test_a_conv_model_says_its_code_is_not_a_point(empty_runs):
    cfg = dataclasses.replace(TINY, model="conv_pool", latent=0)
    at = page("explore", cfg).run()
    at.radio(key="exp_source").set_value(_explore.SIDEBAR).run()
    assert not at.exception
    assert "feature maps" in texts(at.info)


def test_an_untrained_sidebar_config_says_so(empty_runs):
    at = page("explore", TINY).run()
    at.radio(key="exp_source").set_value(_explore.SIDEBAR).run()
    assert not at.exception
    assert "not trained yet" in texts(at.info)


def test_without_bundled_models_the_page_says_what_to_do(empty_runs, monkeypatch):
    monkeypatch.setattr(_explore.ui, "BUNDLED_DIR", empty_runs / "none")
    at = page("explore").run()
    assert not at.exception
    assert "No bundled model fits here" in texts(at.info)


@pytest.mark.parametrize("point", [(1e6, -1e6), (float("nan"), 0.0)])
def test_a_point_far_off_or_not_a_number_shows_no_traceback(point):
    at = page("explore").run()
    entry = _explore.bundled(True)[0]
    at.session_state[f"exp_point_{entry.config.key()}"] = point
    at.run()
    assert not at.exception
