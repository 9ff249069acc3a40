"""Watch a run learn, in headless Chromium: start a small digits run from the Train page, see its
reconstructions refresh, pause and resume it, let it finish, then scrub through its snapshots."""

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import wait_for_app

pytestmark = pytest.mark.browser

# A 2-unit dense model on the bundled digits: offline, ~10,000 batches, seconds on a CPU.
LINK = {
    "dataset": "digits",
    "corruption": "gaussian",
    "level": "0.3",
    "model": "dense",
    "latent": "2",
    "epochs": "120",
    "batch_size": "16",
}
NOW = re.compile(r"after ([\d,]+) batches")


def shown_step(page: Page) -> int:
    line = page.locator("p", has_text="What the model makes of 8 test images now").first
    text = line.inner_text()
    return int(NOW.search(text).group(1).replace(",", ""))


def test_watch_a_run_learn_pause_resume_and_scrub(page: Page, app_url, artifacts):
    page.goto(f"{app_url}/train?{urlencode(LINK)}")
    wait_for_app(page)
    page.get_by_role("button", name="Train", exact=True).click()
    heading = page.get_by_text("What the model makes of 8 test images now")
    expect(heading).to_be_visible(timeout=60_000)
    first = shown_step(page)
    page.wait_for_function(  # the view refreshes by itself while the run trains
        """(first) => {
            const el = [...document.querySelectorAll('p')].find(
                (p) => p.innerText.startsWith('What the model makes of 8 test images now'));
            const m = el && el.innerText.match(/after ([\\d,]+) batches/);
            return m && Number(m[1].replace(/,/g, '')) > first;
        }""",
        arg=first,
        timeout=60_000,
    )
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 3
    page.get_by_role("button", name="Pause").click()
    paused = page.get_by_text(re.compile(r"^Paused after [\d,]+ batches"))
    expect(paused).to_be_visible(timeout=30_000)
    expect(page.get_by_text(re.compile(r"^Paused: \d+%"))).to_be_visible()
    held = paused.inner_text()
    page.wait_for_timeout(2500)  # two polls: a paused run does not move on
    assert page.get_by_text(re.compile(r"^Paused after [\d,]+ batches")).inner_text() == held
    page.screenshot(path=str(artifacts / "watch-paused.png"))
    page.get_by_role("button", name="Resume").click()
    expect(page.get_by_text(re.compile("^Done"))).to_be_visible(timeout=240_000)
    wait_for_app(page)
    expect(page.get_by_text("How it learned")).to_be_visible()
    caption = page.get_by_text(re.compile(r"^The model after [\d,]+ batches"))
    n = int(re.search(r"snapshot (\d+) of \1", caption.inner_text()).group(1))
    assert n > 5
    page.get_by_role("slider").last.focus()
    page.keyboard.press("Home")
    expect(caption).to_contain_text(f"after 0 batches (epoch 0.00), 0 s in: snapshot 1 of {n}")
    page.keyboard.press("ArrowRight")
    expect(caption).to_contain_text(f"after 1 batches (epoch 0.01), 0 s in: snapshot 2 of {n}")
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(artifacts / "watch-scrub.png"))
