"""Journeys a class takes, clicked through in headless Chromium: the sidebar's page links, the
Learn presets, back and forward. After every click the run key in the sidebar and the settings in
the URL must be the ones the user chose; nothing may reset them."""

import re
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import menu_link, wait_for_app

pytestmark = pytest.mark.browser

# Digits, so the walk needs no downloaded dataset; every value differs from the app's defaults.
LINK = {
    "dataset": "digits",
    "corruption": "salt_pepper",
    "level": "0.3",
    "model": "janet",
    "latent": "50",
    "epochs": "4",
    "lr": "0.002",
    "batch_size": "64",
}
SIDEBAR_PAGES = {"Train", "Denoise", "Latent space"}  # the pages that show the configuration


def run_key(page: Page) -> str:
    caption = page.get_by_text(re.compile(r"^Run key")).first
    expect(caption).to_be_visible(timeout=60_000)
    return re.search(r"[0-9a-f]{16}", caption.inner_text()).group(0)


def url_settings(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query).items()}


# The path each menu entry opens (streamlit_app.py's pages; Home is the default page, at "/").
# Not read from the links: Streamlit writes their hrefs relative, and Home's ("?query") resolves
# against the page it is on.
PATHS = {
    "Home": "/",
    "Train": "/train",
    "Denoise": "/denoise",
    "Latent space": "/latent",
    "Compare runs": "/compare",
    "Decode any point": "/explore",
    "Draw a digit": "/draw",
    "β in the VAE": "/beta",
    "Anomaly detection": "/anomaly",
    "Class board": "/board",
    "Seven kinds of autoencoder": "/learn",
}


# Each page's title: a page is there once its own title shows (no page has another's).
TITLES = {
    "/": "Autoencoder lab",
    "/train": "Train an autoencoder",
    "/denoise": "Denoise",
    "/latent": "Latent space",
    "/compare": "Compare runs",
    "/learn": "Seven kinds of autoencoder",
}


def arrive(page: Page, path: str) -> None:
    """Wait, after Back or Forward, until the page at `path` has run. The URL changes at once,
    before the app has run the page, so a check of the URL alone can pass while the page before
    is still there; and a Back pressed then races Streamlit's own URL update for the page
    before, which pushes that page again and drops the forward history (a person does not press
    Back twice within 50 ms; a test without this wait does)."""
    page.wait_for_url(lambda url: urlparse(url).path == path, timeout=60_000)
    expect(page.get_by_role("heading", name=TITLES[path], exact=True)).to_be_visible(timeout=60_000)
    wait_for_app(page)


def click_sidebar(page: Page, name: str) -> None:
    link = menu_link(page, name)
    target = PATHS[name]
    link.click()
    # The new page's path first: until then the old page's elements still answer the checks.
    page.wait_for_url(lambda url: urlparse(url).path == target, timeout=60_000)
    wait_for_app(page)


def assert_settings(page: Page, key: str, settings: dict[str, str], where: str) -> None:
    assert run_key(page) == key, f"the run key changed on {where}"
    url = url_settings(page)
    changed = {k: (v, url.get(k)) for k, v in settings.items() if url.get(k) != v}
    assert not changed, f"the URL changed on {where}: {changed}"
    assert page.get_by_test_id("stException").count() == 0


def test_the_sidebar_walk_and_back_keep_the_configuration(page: Page, app_url, artifacts):
    outside = []  # requests that would leave the machine (the app must work offline)
    page.on(
        "request",
        lambda r: (
            outside.append(r.url)
            if urlparse(r.url).hostname not in ("127.0.0.1", "localhost", None)
            else None
        ),
    )
    query = "&".join(f"{k}={v}" for k, v in LINK.items())
    page.goto(f"{app_url}/train?{query}")
    wait_for_app(page)
    key = run_key(page)
    walk = ["Denoise", "Latent space", "Train", "Compare runs", "Home", "Latent space"]
    walk += ["Seven kinds of autoencoder", "Denoise", "Train"]
    visited = []
    for name in walk:
        click_sidebar(page, name)
        visited.append(name)
        if name in SIDEBAR_PAGES:
            assert_settings(page, key, LINK, f"{' > '.join(visited)}")
    page.screenshot(path=str(artifacts / "journey_walk.png"), full_page=True)
    # Back through the whole walk, one press per page switch (the menu's links carry the
    # settings: one history entry per switch), then forward again: every page lands in order
    # and every page with a sidebar still shows the same run.
    paths = [PATHS[name] for name in walk]
    with_sidebar = {PATHS[name] for name in SIDEBAR_PAGES}
    for target in paths[-2::-1]:  # one Back press per page switch, in order
        page.go_back()  # same-document navigation: returns None
        arrive(page, target)
        if target in with_sidebar:
            assert_settings(page, key, LINK, f"back to {page.url}")
    for target in paths[1:4]:
        page.go_forward()
        arrive(page, target)
        if target in with_sidebar:
            assert_settings(page, key, LINK, f"forward to {page.url}")
    assert not outside, outside[:5]


def test_a_late_answer_to_a_back_keeps_the_forward_history(page: Page, app_url):
    """Streamlit answers a Back by pushing that page's URL when the browser has moved on by then
    (a second Back pressed before the answer came): the walk above, with no `arrive` between
    its Backs, lost the forward history in 3 runs of 9. app_pages/_nav.py's HISTORY_GUARD drops
    that push; here the push is made directly, as Streamlit's late answer makes it, so the check
    does not depend on timing."""
    query = "&".join(f"{k}={v}" for k, v in LINK.items())
    page.goto(f"{app_url}/train?{query}")
    wait_for_app(page)
    click_sidebar(page, "Denoise")
    click_sidebar(page, "Latent space")
    page.go_back()
    arrive(page, "/denoise")
    page.evaluate("history.pushState({}, '', '/latent' + location.search)")  # the late answer
    assert urlparse(page.url).path == "/denoise"
    page.go_forward()
    arrive(page, "/latent")
    # After a Back, a click still opens its page as one history entry.
    page.go_back()
    arrive(page, "/denoise")
    click_sidebar(page, "Compare runs")
    page.go_back()
    arrive(page, "/denoise")
    page.go_back()
    arrive(page, "/train")


def test_a_first_visit_home_then_train_then_back_lands_home(page: Page, app_url):
    """A new visitor on Home has written no settings yet: the menu still carries the defaults,
    so the first switch is one history entry and one Back press returns Home."""
    page.goto(app_url)
    wait_for_app(page)
    expect(menu_link(page, "Train")).to_have_attribute("href", re.compile(r"dataset="))
    click_sidebar(page, "Train")
    run_key(page)
    page.go_back()
    arrive(page, "/")


def test_the_menu_carries_the_checked_settings_not_the_links_junk(page: Page, app_url):
    """A crafted link: an unknown key with markup, a long value, an out-of-range epoch count. The
    page warns and uses the nearest allowed value; the menu's links carry only the settings as
    the page checked them, and the next page opens with the same run."""
    junk = "%3Cscript%3Ealert(1)%3C%2Fscript%3E" + "x" * 3000
    page.goto(f"{app_url}/train?dataset=digits&model=dense&latent=8&epochs=500&evil={junk}")
    wait_for_app(page)
    key = run_key(page)
    href = menu_link(page, "Denoise").get_attribute("href")
    assert "evil" not in href and "script" not in href and len(href) < 1000
    assert parse_qs(urlparse(href).query)["epochs"] == [url_settings(page)["epochs"]] != ["500"]
    click_sidebar(page, "Denoise")
    assert run_key(page) == key and "evil" not in page.url
    assert page.get_by_test_id("stException").count() == 0


def test_an_edit_survives_the_next_page_switches(page: Page, app_url):
    page.goto(f"{app_url}/train?dataset=digits&model=dense&latent=8")
    wait_for_app(page)
    before = run_key(page)
    page.get_by_text("Training settings").click()
    epochs = page.get_by_label("Epochs")
    epochs.fill("7")
    epochs.press("Enter")
    wait_for_app(page)
    expect(page.get_by_text(re.compile("^Run key")).first).not_to_contain_text(before)
    seven = run_key(page)
    page.get_by_text("bfloat16 mixed").click()  # a radio of the same expander
    wait_for_app(page)
    expect(page.get_by_text(re.compile("^Run key")).first).not_to_contain_text(seven)
    key = run_key(page)
    edited = {"epochs": "7", "latent": "8", "precision": "bf16"}
    assert {k: url_settings(page)[k] for k in edited} == edited
    for name in ["Denoise", "Home", "Train"]:
        click_sidebar(page, name)
        if name in SIDEBAR_PAGES:
            assert_settings(page, key, edited, name)
    page.get_by_text("Training settings").click()
    expect(page.get_by_label("Epochs")).to_have_value("7")
    expect(page.get_by_role("radio", name="bfloat16 mixed")).to_be_checked()


def test_each_learn_preset_keeps_its_settings_on_every_page(page: Page, app_url):
    page.goto(f"{app_url}/learn")
    wait_for_app(page)
    count = page.get_by_role("button", name=re.compile("Open in Train")).count()
    assert count == 7
    for i in range(count):
        click_sidebar(page, "Seven kinds of autoencoder")
        page.get_by_role("button", name=re.compile("Open in Train")).nth(i).click()
        expect(page).to_have_url(re.compile(r"/train\?"), timeout=60_000)
        wait_for_app(page)
        key, settings = run_key(page), url_settings(page)
        for name in ["Latent space", "Denoise", "Train"]:
            click_sidebar(page, name)
            assert_settings(page, key, settings, f"preset {i} > {name}")


def test_a_link_out_of_range_says_so_and_takes_the_nearest_value(page: Page, app_url):
    page.goto(f"{app_url}/train?dataset=digits&epochs=500&batch_size=65536")
    wait_for_app(page)
    warnings = page.get_by_test_id("stAlert")
    expect(warnings.filter(has_text="epochs 500")).to_be_visible()
    expect(warnings.filter(has_text="batch_size 65536")).to_be_visible()
    settings = url_settings(page)
    assert settings["epochs"] == "200" and settings["batch_size"] == "4096"
