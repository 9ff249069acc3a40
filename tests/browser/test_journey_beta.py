"""The β page in headless Chromium: open it from the sidebar, press the β = 4 preset, and land on
Train with that VAE, β 4 in the sidebar and in the URL."""

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import wait_for_app
from tests.browser.test_journeys import click_sidebar, run_key, url_settings

pytestmark = pytest.mark.browser


def test_the_beta_4_preset_opens_train_with_beta_4(page: Page, app_url, artifacts):
    page.set_viewport_size({"width": 1024, "height": 768})  # a classroom projector
    page.goto(f"{app_url}/train?dataset=digits")  # the session's dataset, which the page takes
    wait_for_app(page)
    click_sidebar(page, "β in the VAE")
    expect(page.get_by_role("heading", name="β in the VAE")).to_be_visible()
    # The bundled β = 1 run shows its codes at once; the others can be trained from here.
    expect(page.get_by_role("button", name="β = 1")).to_be_visible()
    assert page.get_by_test_id("stPlotlyChart").count() >= 3
    page.screenshot(path=str(artifacts / "journey_beta.png"), full_page=True)

    page.get_by_role("button", name="β = 4").click()
    expect(page).to_have_url(re.compile(r"/train\?"), timeout=60_000)
    wait_for_app(page)
    settings = url_settings(page)
    assert settings["beta"] == "4.0"
    assert settings["model"] == "vae_mlp" and settings["latent"] == "2"
    assert settings["dataset"] == "digits"
    beta = page.get_by_role("spinbutton", name="β: weight of the KL term")
    expect(beta).to_have_value("4.00")
    assert re.fullmatch(r"[0-9a-f]{16}", run_key(page))
    assert page.get_by_test_id("stException").count() == 0
