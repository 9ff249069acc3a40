"""app_pages/draw.py: a drawing made into the dataset's images, corrupted, reconstructed, placed.

AppTest cannot draw on the canvas component (the browser journey does), so these tests hand the
page the pixels a drawing gives."""

import dataclasses
import json

import numpy as np
import pytest

from app_pages import _explore
from tests.app.conftest import TINY, page, texts


def stroke() -> np.ndarray:
    """What the canvas gives for a "1": RGBA pixels, white on black."""
    rgba = np.zeros((280, 280, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[40:240, 120:160, :3] = 255
    return rgba


@pytest.fixture
def drawn(monkeypatch):
    monkeypatch.setattr(_explore, "canvas_pixels", lambda key: stroke())


def charts(at) -> dict[str, dict]:
    return {c.proto.id.split("-")[-1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def test_an_empty_canvas_gets_a_hint_not_an_error():
    at = page("draw").run()
    assert not at.exception
    assert "Draw a digit on the canvas" in texts(at.info)
    assert not at.get("plotly_chart")


def test_a_drawing_is_reconstructed_and_placed_on_the_plane(drawn):
    at = page("draw").run()
    assert not at.exception
    shown = charts(at)
    assert set(shown) == {"draw_rows", "draw_plane"}  # the bundled digits VAE has a 2-D code
    rows = shown["draw_rows"]["layout"]["yaxis"]["ticktext"]
    assert len(rows) == 2  # drawn, reconstructed: this model was trained without corruption
    marker = [t for t in shown["draw_plane"]["data"] if t.get("name") == "your drawing"]
    assert len(marker) == 1 and len(marker[0]["x"]) == 1
    assert "The code of the corrupted drawing" in texts(at.caption)


def test_a_chosen_corruption_is_applied_to_the_drawing(drawn):
    at = page("draw").run()
    at.selectbox(key="draw_corruption").set_value("gaussian").run()
    assert not at.exception
    assert at.slider(key="draw_level_gaussian").value > 0
    rows = charts(at)["draw_rows"]["layout"]["yaxis"]["ticktext"]
    assert any("Corrupted" in r for r in rows) and len(rows) == 3


def test_a_model_without_a_2d_code_reconstructs_without_the_plane(drawn):
    at = page("draw").run()
    entries = _explore.bundled(False, lambda n: True)
    index = next(i for i, e in enumerate(entries) if not _explore.has_2d_code(e.config))
    at.selectbox(key="draw_bundled").set_value(index).run()
    assert not at.exception
    assert set(charts(at)) == {"draw_rows"}
    assert "not 2-D" in texts(at.caption)


def test_a_colour_dataset_says_drawing_is_for_gray_sets(empty_runs):
    cfg = dataclasses.replace(TINY, dataset="cifar10")
    at = page("draw", cfg).run()
    at.radio(key="draw_source").set_value(_explore.SIDEBAR).run()
    assert not at.exception
    assert "gray digit and clothing sets" in texts(at.info)
