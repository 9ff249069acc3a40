"""A real `streamlit run` server per module, and Playwright driving Debian's Chromium.

Playwright's own browser download is not used (it cannot be fetched here, and CI installs Debian's
`chromium` instead); a missing Chromium fails the tests with the command that installs it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.serving import free_port, wait_healthy  # noqa: F401  (re-exported for the tests)

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    port = free_port()
    runs = tmp_path_factory.mktemp("browser_runs")
    env = {**os.environ, "AECORE_RUNS_DIR": str(runs), "PYTHONUNBUFFERED": "1"}
    log = (tmp_path_factory.mktemp("logs") / "streamlit.log").open("w")
    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "streamlit_app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is needed: apt-get update && apt-get install -y chromium")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def menu_link(page: Page, name: str) -> Locator:
    """The sidebar menu's link to a page (app_pages/_nav.py draws the menu)."""
    return page.get_by_test_id("stSidebar").get_by_role("link", name=name, exact=True)


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
    # Plotly draws a moment after the run ends; wait for every chart's SVG. Counted afresh at
    # each poll: charts counted once could belong to the page being left (a click's run may
    # not have begun when the state first reads notRunning), and never draw again.
    page.wait_for_function(
        """() => [...document.querySelectorAll('[data-testid="stPlotlyChart"]')]
            .every((chart) => chart.querySelector('.main-svg') !== null)""",
        timeout=30_000,
    )
