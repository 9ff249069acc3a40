"""Compare's generalisation matrix in headless Chromium, as a teacher opens it in class: Compare
runs from the sidebar, the bundled digits, the "Generalisation" view. Its four U-Nets are
bundled, so the matrix is whole at once, with nothing to train and no request leaving the
machine."""

from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import wait_for_app
from tests.browser.test_journeys import click_sidebar

pytestmark = pytest.mark.browser


def test_the_bundled_digits_matrix_opens_whole(page: Page, app_url, artifacts):
    outside = []
    page.on(
        "request",
        lambda r: (
            urlparse(r.url).hostname not in (None, "127.0.0.1", "localhost")
            and outside.append(r.url)
        ),
    )
    page.set_viewport_size({"width": 1024, "height": 768})  # a classroom projector
    page.goto(f"{app_url}/train?dataset=digits")
    wait_for_app(page)
    click_sidebar(page, "Compare runs")
    page.get_by_role("combobox", name="Dataset").click()
    page.get_by_role("option", name="Digits 8x8 (bundled, offline)").click()
    wait_for_app(page)
    page.get_by_test_id("stButtonGroup").get_by_text("Generalisation", exact=True).click()
    wait_for_app(page)
    expect(page.get_by_text("Four U-Nets")).to_be_visible(timeout=120_000)
    # Every row is bundled: no missing row to train, and a verdict over four trained models.
    expect(page.get_by_text("Every trained model improves on the corrupted input")).to_be_visible(
        timeout=120_000
    )
    assert page.get_by_role("button", name="Train").count() == 0
    heatmap = page.get_by_test_id("stPlotlyChart")
    expect(heatmap).to_have_count(1)
    for row in ("corrupted input", "median 3x3"):
        expect(heatmap.get_by_text(row).first).to_be_visible()
    page.screenshot(path=str(artifacts / "journey_generalisation.png"), full_page=True)
    assert page.get_by_test_id("stException").count() == 0
    assert not outside, outside
