"""End to end in headless Chromium: a real server, a real click on Train, a real grid."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import menu_link, wait_for_app

pytestmark = pytest.mark.browser

TINY = "dataset=digits&model=dense&latent=8&epochs=2&corruption=salt_pepper&level=0.1"


def test_train_a_tiny_configuration_through_the_ui(page: Page, app_url, artifacts):
    """Opens Train with a tiny config from the URL, clicks Train, sees metrics and the grid."""
    page.goto(f"{app_url}/train?{TINY}")
    wait_for_app(page)
    expect(menu_link(page, "Denoise")).to_be_visible()  # the sidebar's menu
    page.get_by_role("button", name=re.compile("^.*Train$")).click()
    expect(page.get_by_text("Original, corrupted and reconstructed test images")).to_be_visible(
        timeout=180_000
    )
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Test results")).to_be_visible()
    grid = page.get_by_test_id("stPlotlyChart").or_(page.get_by_test_id("stImage"))
    expect(grid.first).to_be_visible()
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(artifacts / "train_done.png"), full_page=True)

    # The same configuration again (a reload, as a second visitor would): cached at once.
    page.goto(f"{app_url}/train?{TINY}")
    wait_for_app(page)
    expect(page.get_by_text(re.compile("Cached|Done"))).to_be_visible(timeout=30_000)


@pytest.mark.parametrize("path", ["", "denoise", "latent", "compare", "learn"])
def test_every_page_renders_without_an_exception(page: Page, app_url, artifacts, path):
    page.goto(f"{app_url}/{path}")
    wait_for_app(page)
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(artifacts / f"page_{path or 'home'}.png"), full_page=True)
