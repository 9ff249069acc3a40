"""Attacks on one real `streamlit run` server, as a bored student or a redeploy would make them.

- Reloads do not reset a visitor's limit: sessions that bring the same browser cookie share it.
- A run over the server's budget is refused with its estimate, before anything is queued.
- SIGTERM while a run trains (what a host sends on every redeploy): the run is cancelled, no
  temporary file is left, the process ends within seconds, and after the restart the visitor
  whose run was dropped is told so.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.load.stclient import Session, xsrf_cookie
from tests.load.test_load import ROOT, SERVER, run_async
from tests.serving import free_port, wait_healthy

# Long enough to still be training when the signal comes (about a minute here), and inside the
# server's budget. Seed 13 keeps it out of every bundled checkpoint.
LONG = "dataset=digits&model=dense&latent=8&epochs=40&batch_size=1&seed=13"
SHUTDOWN_PROMISE = 5.0  # seconds from SIGTERM to exit, stated in the README
SHUTDOWN_BOUND = 20.0  # asserted: a wide margin for a loaded 2-core machine


def start_server(runs: Path, log: Path) -> tuple[str, subprocess.Popen]:
    port = free_port()
    env = {**os.environ, "AECORE_RUNS_DIR": str(runs), "AECORE_OFFLINE": "1"}
    cmd = [sys.executable, "-c", SERVER, "run", "streamlit_app.py", "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--server.address", "127.0.0.1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("a"), stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, proc)
    return url, proc


@pytest.fixture
def servers(tmp_path):
    """Starts servers on one runs folder; every one still running is killed afterwards."""
    started: list[subprocess.Popen] = []
    runs, log = tmp_path / "runs", tmp_path / "server.log"

    def start() -> str:
        url, proc = start_server(runs, log)
        started.append(proc)
        return url

    yield start, started, runs, log
    for proc in started:
        if proc.poll() is None:
            proc.kill()


async def start_run(url: str, query: str, cookie: str):
    async with Session(url, "train", query, cookie=cookie) as s:
        await s.open()
        await s.click("train")
        return await s.until(lambda v: True, 30)


def test_reloads_share_one_visitors_limit(servers):
    start, *_ = servers
    url = start()
    cookie = xsrf_cookie()  # one browser, three reloads: three websocket sessions
    views = [
        run_async(lambda seed=seed: start_run(url, f"{LONG}&seed={seed}", cookie))
        for seed in (21, 22, 23)
    ]
    assert "already have 2 training runs" in " ".join(views[2].alert("warning"))
    other = run_async(lambda: start_run(url, f"{LONG}&seed=24", xsrf_cookie()))
    assert not other.alert("warning")  # another browser is served


def test_a_run_over_the_budget_is_refused_with_its_estimate(servers):
    start, *_ = servers
    url = start()
    huge = "dataset=digits&model=deep_mlp&width=1024&latent=64&epochs=200&batch_size=1"
    view = run_async(lambda: start_run(url, huge, xsrf_cookie()))
    warning = " ".join(view.alert("warning"))
    assert "would take about" in warning and "limited to" in warning


def test_sigterm_cancels_the_run_exits_fast_and_the_restart_tells_the_visitor(servers):
    start, started, runs, log = servers
    url = start()
    cookie = xsrf_cookie()

    async def train_until_running():
        async with Session(url, "train", LONG, cookie=cookie) as s:
            await s.open()
            await s.click("train")
            await s.until(lambda v: any(k.startswith("cancel") for k in v.buttons), 60)

    run_async(train_until_running)
    time.sleep(1.0)  # a few batches in
    proc = started[-1]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    seconds = time.monotonic() - t0
    print(f"\nSIGTERM to exit: {seconds:.2f} s (promise {SHUTDOWN_PROMISE} s)")
    assert seconds < SHUTDOWN_BOUND
    assert not [p for p in runs.iterdir() if p.name.endswith(".tmp")]
    assert not list(runs.glob("*.pt"))  # nothing partial kept
    text = log.read_text()
    assert "Traceback" not in text, text[-3000:]

    url = start()  # the redeploy comes up on the same runs folder

    async def come_back():
        async with Session(url, "train", LONG, cookie=cookie) as s:
            return await s.open()

    view = run_async(come_back)
    assert "restarted" in " ".join(view.alert("warning")), view.alerts


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_six_of_the_widest_runs_keep_the_server_under_its_memory_promise(servers):
    """The widest model a link may ask for, six times over, then every page that loads them."""
    start, started, runs, _ = servers
    url = start()
    widest = "dataset=digits&model=deep_mlp&width=1024&latent=64&epochs=1&corruption=none"

    async def train_six():
        for seed in range(6):  # one visitor per run: the limit is 2 unfinished runs each
            async with Session(url, "train", f"{widest}&seed={seed}") as s:
                await s.open()
                await s.click("train")
                view = await s.until(lambda v: "Test results" in v.headings, 240)
                assert not view.exceptions, view.exceptions
        for page in ("compare", "", "denoise"):
            async with Session(url, page, f"{widest}&seed=5") as s:
                assert not (await s.open()).exceptions

    run_async(train_six)
    peak = peak_rss_bytes(started[-1].pid)
    print(f"\npeak RSS with six of the widest runs: {peak / 2**20:.0f} MB")
    assert len(list(runs.glob("*.pt"))) == 6
    assert peak < 2.5 * 2**30


def strip_png() -> bytes:
    """The issue's attack: a 1 x 39,990,000 PNG strip, tens of kB on the wire."""
    import io
    import struct
    import zlib

    width, height = 39_990_000, 1
    raw = zlib.compress(b"\x00" + bytes(width), 9)  # one filter byte, then black pixels

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw))
    out.write(chunk(b"IEND", b""))
    return out.getvalue()


def test_uploads_through_the_server_are_bounded_and_refused_cleanly(servers):
    """16 sessions upload the strip and rerun 3 times each, while health is polled; an SVG sent
    past the browser's filter is refused, later reruns still work, then a real PNG works."""
    import asyncio
    import io

    from PIL import Image, ImageDraw

    from tests.load.test_load import Monitor

    start, started, *_ = servers
    url = start()
    strip = strip_png()

    async def attacker() -> list[str]:
        async with Session(url, "denoise", "") as s:
            await s.open()
            errors = []
            for _ in range(3):
                view = await s.upload("dn_upload", "strip.png", strip)
                assert not view.exceptions, view.exceptions
                errors += view.alert("error")
            return errors

    async def sixteen():
        return await asyncio.gather(*[attacker() for _ in range(16)])

    with Monitor(url, started[-1].pid) as monitor:
        results = run_async(sixteen)
    print(
        f"\n16 sessions x 3 uploads of the strip: slowest health {max(monitor.health):.2f} s, "
        f"peak RSS {max(monitor.rss) / 2**20:.0f} MB"
    )
    assert all(len(errors) == 3 for errors in results), results[:2]
    assert monitor.failures == 0 and max(monitor.health) < 3.0  # promise 1 s; see README
    assert max(monitor.rss) < 2.5 * 2**30

    drawing = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(drawing).line([(40, 20), (70, 100)], fill=0, width=10)
    png = io.BytesIO()
    drawing.save(png, format="PNG")

    async def svg_then_png():
        async with Session(url, "denoise", "") as s:
            await s.open()
            svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
            view = await s.upload("dn_upload", "drawing.svg", svg)
            assert "SVG" in " ".join(view.alert("error")), view.alerts
            for _ in range(2):  # later reruns of the session still work
                await s._rerun()
                view = await s.until(lambda v: True, 60)
                assert not view.exceptions, view.exceptions
            view = await s.upload("dn_upload", "drawing.png", png.getvalue())
            assert not view.exceptions and not view.alert("error"), view.alerts
            return view

    view = run_async(svg_then_png)
    assert view.charts >= 1
