"""Decode any point and Draw a digit, in headless Chromium: click an empty spot of a bundled
VAE's plane and see the decoding and its neighbours change; draw a stroke with the mouse and see
its reconstruction. Nothing may be fetched from outside the machine (the components' frontends
ship in their wheels)."""

import re
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import wait_for_app
from tests.browser.test_journeys import click_sidebar

pytestmark = pytest.mark.browser

DECODED = re.compile(r"^Decoded: \(")


def neighbours(page: Page) -> list[str]:
    captions = page.get_by_test_id("stImageCaption").all_inner_texts()
    return [c for c in captions if "·" in c]


def test_decode_an_empty_spot_then_draw_a_digit(page: Page, app_url, artifacts):
    outside = []
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", "localhost", None)
            else None
        ),
    )
    page.goto(app_url)
    wait_for_app(page)
    click_sidebar(page, "Decode any point")
    decoded = page.get_by_text(DECODED).first
    expect(decoded).to_have_text("Decoded: (0.00, 0.00)")  # the bundled digits VAE
    before = neighbours(page)
    assert len(before) == 6
    # The top right corner: inside the prior's ±3σ box, outside its circle, where no test
    # image's code lies.
    plane = page.locator('[data-testid="stPlotlyChart"] .nsewdrag').first
    box = plane.bounding_box()
    page.mouse.click(box["x"] + 0.95 * box["width"], box["y"] + 0.05 * box["height"])
    expect(decoded).not_to_have_text("Decoded: (0.00, 0.00)", timeout=30_000)
    wait_for_app(page)
    x, y = map(float, re.findall(r"-?\d+\.\d+", decoded.inner_text()))
    assert x > 2.5 and y > 2.5
    assert neighbours(page) != before
    expect(page.get_by_text(re.compile(r"Last click decoded in \d+ ms"))).to_be_visible()
    page.screenshot(path=str(artifacts / "journey_explore.png"))

    click_sidebar(page, "Draw a digit")
    expect(page.get_by_text("Draw a digit on the canvas")).to_be_visible()
    canvas = page.locator("canvas.upper-canvas").first
    box = canvas.bounding_box()
    left, top = box["x"] + 0.5 * box["width"], box["y"] + 0.15 * box["height"]
    page.mouse.move(left, top)
    page.mouse.down()
    for step in range(1, 21):  # a "1", top to bottom
        page.mouse.move(left, top + step * 0.035 * box["height"], steps=2)
    page.mouse.up()
    expect(page.get_by_text("Where your drawing lands")).to_be_visible(timeout=30_000)
    wait_for_app(page)
    assert page.get_by_text("Draw a digit on the canvas").count() == 0
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 2  # rows, plane
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(artifacts / "journey_draw.png"))
    assert not outside, outside[:5]


def test_the_whole_canvas_and_its_toolbar_fit_a_1024x768_projector(page: Page, app_url):
    """With the sidebar open, the canvas's column is about 270 px wide there: the canvas is not
    cut off, and its toolbar (shown above it under the pointer) covers no other widget."""
    page.set_viewport_size({"width": 1024, "height": 768})
    page.goto(f"{app_url}/draw")
    wait_for_app(page)
    canvas = page.locator("canvas.upper-canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    shown = page.get_by_test_id("stBidiComponentIsolated").first.bounding_box()
    assert box["width"] == box["height"] and shown["width"] >= box["width"]  # nothing cut off
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    undo = page.get_by_role("button", name=re.compile("undo", re.I)).first
    expect(undo).to_be_visible()
    corruption = page.get_by_test_id("stSelectbox").filter(has_text="Corruption").first
    above = corruption.bounding_box()
    assert undo.bounding_box()["y"] >= above["y"] + above["height"]  # below the selectbox
