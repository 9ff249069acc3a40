"""The app's own timings, measured in a real browser against a real `streamlit run` server.

1. Cold start: from launching `streamlit run` to the health endpoint answering, and to the first
   page's HTML being served.
2. Home: from the first Home page request after the cold start to its first reconstruction image
   decoded in the page, then the same for a second visitor.
3. A cached configuration: the Train page for a bundled checkpoint's config, re-rendered (the
   rerun key "r", as a widget change does): from the key press until the run is over and the
   grid is drawn again. Median of several.
4. The default Train configuration: from the click on Train to its test results on screen.

Headless Chromium (Debian's `chromium`) through Playwright; each figure is printed, compared with
its target, and written to bench/results/app.json.

    python -m bench.app [--reruns 7] [--skip-train]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

from aecore.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent

TARGETS = {"home_first_image_s": 3.0, "cached_rerun_s": 0.3, "default_train_s": 60.0}
# A bundled model that needs no downloaded data, so the figure is the same on any machine.
CACHED_MODEL = "unet_digits_salt_pepper_any"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(url: str, proc: subprocess.Popen, want: bytes | None, timeout: float = 120) -> None:
    """Poll url until it answers 200 (and its body starts with `want`, if given)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                if r.status == 200 and (want is None or r.read().startswith(want)):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def wait_drawn(page: Page, timeout: float = 60_000) -> None:
    """The script run is over and every Plotly chart has drawn its SVG."""
    app = page.get_by_test_id("stApp")
    expect(app).to_have_attribute("data-test-script-state", "notRunning", timeout=timeout)
    charts = page.get_by_test_id("stPlotlyChart")
    for i in range(charts.count()):
        expect(charts.nth(i).locator(".main-svg").first).to_be_visible(timeout=timeout)


def first_image_seconds(page: Page, url: str) -> float:
    t0 = time.perf_counter()
    page.goto(url)
    picture = page.get_by_test_id("stImage").first.locator("img")
    expect(picture).to_be_visible(timeout=60_000)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=picture.element_handle()
    )
    return time.perf_counter() - t0


WATCH_RUN = """() => {
  // Resolves with the ms from now until a script run has started and ended and the browser has
  // painted twice since; polling from Python can miss a run that short.
  const app = document.querySelector('[data-testid="stApp"]');
  const t0 = performance.now();
  window.__rerun = new Promise(resolve => {
    let started = false;
    const obs = new MutationObserver(() => {
      const state = app.getAttribute("data-test-script-state");
      if (state === "running") started = true;
      if (started && state === "notRunning") {
        obs.disconnect();
        requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.now() - t0)));
      }
    });
    obs.observe(app, {attributes: true});
  });
}"""


def rerun_seconds(page: Page) -> float:
    """One rerun of the page as it stands ("r" is Streamlit's rerun key), until painted."""
    page.locator("h1").first.click()  # focus the page, not a widget
    page.evaluate(WATCH_RUN)
    page.keyboard.press("r")
    ms = page.evaluate("() => window.__rerun")
    wait_drawn(page)
    return ms / 1000


def cached_query() -> str:
    manifest = json.loads((ROOT / "checkpoints" / "manifest.json").read_text())
    entry = next(m for m in manifest["models"] if m["name"] == CACHED_MODEL)
    return urllib.parse.urlencode(TrainConfig(**entry["config"]).to_dict())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reruns", type=int, default=7)
    parser.add_argument("--skip-train", action="store_true", help="skip the default-config run")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "app.json"))
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    runs = tempfile.mkdtemp(prefix="aecore-bench-runs-")
    env = {**os.environ, "AECORE_RUNS_DIR": runs}
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py"]
    cmd += ["--server.headless", "true", "--server.port", str(port)]
    cmd += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    figures: dict[str, float | list[float]] = {}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=sys.stderr)
    try:
        wait_until(f"{url}/_stcore/health", proc, b"ok")
        figures["start_to_healthy_s"] = time.perf_counter() - t0
        wait_until(url + "/", proc, None)
        figures["start_to_page_s"] = time.perf_counter() - t0
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            view = {"viewport": {"width": 1400, "height": 1000}}
            page = browser.new_context(**view).new_page()
            figures["home_first_image_s"] = first_image_seconds(page, url + "/")
            second = browser.new_context(**view).new_page()
            figures["home_second_visitor_s"] = first_image_seconds(second, url + "/")
            page.goto(f"{url}/train?{cached_query()}")
            wait_drawn(page)
            expect(page.get_by_text("Cached")).to_be_visible()
            times = [rerun_seconds(page) for _ in range(args.reruns)]
            figures["cached_rerun_all_s"] = times
            figures["cached_rerun_s"] = statistics.median(times)
            if not args.skip_train:
                page.goto(f"{url}/train")
                wait_drawn(page)
                t1 = time.perf_counter()
                page.get_by_role("button", name=re.compile("^.*Train$")).click()
                expect(page.get_by_text("Test results")).to_be_visible(timeout=600_000)
                figures["default_train_s"] = time.perf_counter() - t1
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(runs, ignore_errors=True)
    print(f"\n{'figure':<28}{'seconds':>10}{'target':>10}  met")
    for name, value in figures.items():
        if isinstance(value, list):
            continue
        target = TARGETS.get(name)
        met = "" if target is None else "yes" if value <= target else "NO"
        print(f"{name:<28}{value:>10.3f}{'' if target is None else f'< {target:g}':>10}  {met}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
