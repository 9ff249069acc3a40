"""A class board journey in headless Chromium: write a guess on the Train page, train a tiny
digits run, open the Class board from the sidebar and see the guess against the result."""

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import menu_link, wait_for_app

pytestmark = pytest.mark.browser

# A tiny dense denoiser on the bundled digits: offline, a few seconds on a CPU. The seed keeps
# it apart from the runs other journeys train in the same server.
LINK = {
    "dataset": "digits",
    "corruption": "gaussian",
    "level": "0.35",
    "model": "dense",
    "latent": "8",
    "epochs": "3",
    "seed": "4242",
}
TITLE = "Denoise Digits 8x8: Gaussian noise, sigma = 0.35"


def test_guess_train_and_see_the_guess_on_the_board(page: Page, app_url, artifacts):
    page.set_viewport_size({"width": 1024, "height": 768})  # a classroom projector
    page.goto(f"{app_url}/train?{urlencode(LINK)}")
    wait_for_app(page)
    expect(page.get_by_text(f"class board of the task {TITLE}")).to_be_visible()
    page.get_by_role("spinbutton", name="Your guess of the test PSNR (dB), optional").fill("13.5")
    page.get_by_label("Nickname on the board, optional").fill("<b>Owl</b>")
    page.get_by_label("Nickname on the board, optional").press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_text(re.compile("^Done"))).to_be_visible(timeout=180_000)
    wait_for_app(page)

    menu_link(page, "Class board").click()
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Class board")).to_be_visible()
    # The board opens at the task of the run just trained.
    expect(page.get_by_role("combobox", name="Task")).to_have_value(TITLE)  # not in its text
    expect(page.get_by_text("Lines to beat")).to_be_visible()
    tables = page.get_by_test_id("stTable")
    expect(tables).to_have_count(2)  # the ranking and the guesses
    expect(tables.first).to_contain_text("seed 4242")
    guesses = tables.nth(1)
    expect(guesses).to_contain_text("Owl")  # the nickname, without its markup
    expect(guesses).to_contain_text("13.5")
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 1  # guess against result
    assert page.get_by_test_id("stException").count() == 0
    page.screenshot(path=str(artifacts / "class-board.png"), full_page=True)
