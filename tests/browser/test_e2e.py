"""End to end in headless Chromium: a real server, a real click on Train, a real grid."""

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

TINY = "dataset=digits&model=dense&latent=8&epochs=2&corruption=salt_pepper&level=0.1"


def wait_for_app(page: Page, timeout: float = 90_000) -> None:
    """Wait until the websocket is connected and the script run is over (as Streamlit's own
    e2e tests do), so the screenshot shows the finished page, not its loading skeleton."""
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=timeout)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)
    # Right after page.goto the state can read notRunning before the run has begun; the
    # loading skeletons say the page is not drawn yet.
    expect(page.get_by_test_id("stSkeleton")).to_have_count(0, timeout=timeout)
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)
    # Plotly draws a moment after the run ends; wait for every chart's SVG.
    charts = page.get_by_test_id("stPlotlyChart")
    for i in range(charts.count()):
        expect(charts.nth(i).locator(".main-svg").first).to_be_attached(timeout=30_000)


def test_train_a_tiny_configuration_through_the_ui(page: Page, app_url, artifacts):
    """Opens Train with a tiny config from the URL, clicks Train, sees metrics and the grid."""
    page.goto(f"{app_url}/train?{TINY}")
    wait_for_app(page)
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible()
    page.get_by_role("button", name=re.compile("^.*Train$")).click()
    expect(page.get_by_text("Original, corrupted and reconstructed test images")).to_be_visible(
        timeout=180_000
    )
    wait_for_app(page)
    expect(page.get_by_text("Test results")).to_be_visible()
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
