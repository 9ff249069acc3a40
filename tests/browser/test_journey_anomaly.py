"""The anomaly page in headless Chromium: open it from the sidebar on the bundled digits, train
the digits 0-4 run there if it is not bundled, move the threshold slider to its far end, and see
fewer images flagged."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import wait_for_app
from tests.browser.test_journeys import click_sidebar

pytestmark = pytest.mark.browser


def rate(page: Page, meaning: str) -> float:
    """A percentage of the rates list, e.g. "of the anomalies are flagged" -> 41.6."""
    item = page.locator("li").filter(has_text=meaning)
    expect(item).to_have_count(1, timeout=60_000)
    return float(re.search(r"([\d.]+)%", item.inner_text()).group(1))


def test_moving_the_threshold_changes_the_confusion(page: Page, app_url, artifacts):
    page.set_viewport_size({"width": 1024, "height": 768})  # a classroom projector
    page.goto(f"{app_url}/train?dataset=digits")  # the session's dataset, which the page takes
    wait_for_app(page)
    click_sidebar(page, "Anomaly detection")
    expect(page.get_by_role("heading", name="Anomaly detection")).to_be_visible()
    expect(page.get_by_text("Digits 8x8: classes 0-4 normal, 5-9 anomalous")).to_be_visible()
    train = page.get_by_role("button", name="Train it")
    if train.count():  # not bundled (yet): it trains here in a few seconds
        train.click()
    slider = page.get_by_role("slider")
    expect(slider).to_have_count(1, timeout=240_000)
    wait_for_app(page)
    expect(page.get_by_text(re.compile(r"^ROC curve, AUC = 0\.\d{3}$"))).to_be_visible()
    detected = rate(page, "of the anomalies are flagged")
    false_alarms = rate(page, "of the normal images are flagged")
    assert 2.0 <= false_alarms <= 8.0  # the slider starts at 5% false alarms
    page.screenshot(path=str(artifacts / "journey_anomaly.png"), full_page=True)

    recall = page.locator("li").filter(has_text="of the anomalies are flagged")
    before = recall.inner_text()
    slider.focus()
    page.keyboard.press("End")  # the highest threshold: only the largest errors are flagged
    expect(recall).not_to_have_text(before, timeout=60_000)
    wait_for_app(page)
    assert rate(page, "of the anomalies are flagged") < detected
    assert rate(page, "of the normal images are flagged") <= false_alarms
    assert page.get_by_test_id("stException").count() == 0
