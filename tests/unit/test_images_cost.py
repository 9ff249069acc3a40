"""What decoding an upload costs (issue #12 items 3 and 11): memory and time stay bounded.

Before: a 78 KB PNG strip of 1 x 39,990,000 pixels cost +688 MB of peak memory and 2-4 s per
decode, a 1.6 KB lossless WebP of 6300x6300 +611 MB (both under the old 40-million-pixel limit).
Pillow allocates pixels outside Python's allocator, so tracemalloc does not see them (it saw
0.7 MB for the strip): each decode here runs in a child forked from a clean process, which
reports its peak resident memory (VmHWM) above its resident memory before decoding. Bounds
leave a wide margin over what was measured, so that a loaded 2-core machine never makes them
flake.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.skipif(
    not (hasattr(os, "fork") and os.path.exists("/proc/self/status")),
    reason="measures memory through fork and /proc (Linux)",
)

REFUSED_MB = 50  # the two files of the issue: measured +3 and +5 MB (before: +688 and +611)
DECODED_MB = 250  # files at the limits: measured 9..98 MB (the WebP decoder the largest)
ROOT = Path(__file__).resolve().parents[2]

# A clean process that imports the decoder once and forks a child per measurement: forked from
# the test process itself, a child would reuse memory that earlier tests freed but kept resident,
# and under-count.
ZYGOTE = r"""
import json, os, sys, time
import scipy.ndimage  # imported before any measurement: not counted
from aecore.images import ImageRejected, image_from_upload


def status_mb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024

for line in sys.stdin:
    request = json.loads(line)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read)
            with open(request["path"], "rb") as f:
                data = f.read()
            start, t0 = status_mb("VmRSS"), time.perf_counter()
            try:
                x = image_from_upload(data, tuple(request["shape"]), request["layout"])
                result = f"decoded {tuple(x.shape)}"
            except ImageRejected as err:
                result = str(err)
            report = {"mb": status_mb("VmHWM") - start, "s": time.perf_counter() - t0}
            os.write(write, json.dumps({**report, "result": result}).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as f:
        text = f.read()
    os.waitpid(pid, 0)
    print(text or "{}", flush=True)
"""


@pytest.fixture(scope="module")
def zygote():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", ZYGOTE], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    yield proc
    proc.stdin.close()
    proc.wait(timeout=60)


@pytest.fixture
def cost(zygote, tmp_path):
    """cost(data, shape, layout) -> {"mb": peak growth, "s": seconds, "result": ...}."""

    def measure(data: bytes, shape=(1, 28, 28), layout="crop") -> dict:
        path = tmp_path / "upload.bin"
        path.write_bytes(data)
        request = {"path": str(path), "shape": list(shape), "layout": layout}
        zygote.stdin.write(json.dumps(request) + "\n")
        zygote.stdin.flush()
        out = json.loads(zygote.stdout.readline())
        assert out, "the measuring child failed"
        return out

    return measure


def png_strip(width: int, height: int) -> bytes:
    """A real 8-bit grayscale PNG of width x height white pixels, compressed in blocks of rows."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    rows = (b"\x00" + b"\xff" * width) * 100_000
    comp, left, parts = zlib.compressobj(9), height, []
    while left:
        n = min(left, 100_000)
        parts.append(comp.compress(rows if n == 100_000 else rows[: n * (width + 1)]))
        left -= n
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", b"".join(parts))
        + chunk(b"IEND", b"")
    )


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def issue_files() -> dict[str, bytes]:
    """The two files of the issue: built once (the WebP briefly takes 160 MB to encode)."""
    strip = png_strip(1, 39_990_000)
    webp = encode(Image.new("RGB", (6300, 6300), "white"), "WEBP", lossless=True, method=0)
    return {"png_strip_1x39990000": strip, "webp_6300x6300": webp}


@pytest.mark.parametrize("layout", ["crop", "mnist"])
@pytest.mark.parametrize("name", ["png_strip_1x39990000", "webp_6300x6300"])
def test_the_issue_files_are_refused_from_their_header(cost, issue_files, name, layout):
    data = issue_files[name]
    assert len(data) < 100_000  # tiny files, as in the issue
    out = cost(data, layout=layout)
    assert "no side may be longer" in out["result"] or "the limit is" in out["result"]
    assert out["mb"] < REFUSED_MB, out
    assert out["s"] < 5.0, out


def _with_ink(side: int) -> np.ndarray:
    page = np.full((side, side), 230, np.uint8)
    page[side // 3 : 2 * side // 3, side // 2 - side // 20 : side // 2 + side // 20] = 20
    return page


AT_THE_LIMITS = {  # just under the limits: accepted, and their cost is what must stay bounded
    "png_rgb_2449x2449": lambda: encode(Image.fromarray(_with_ink(2449)).convert("RGB"), "PNG"),
    "webp_rgba_2449x2449": lambda: encode(
        Image.fromarray(_with_ink(2449)).convert("RGBA"), "WEBP", lossless=True, method=0
    ),
    "png_16bit_2449x2449": lambda: encode(
        Image.fromarray(_with_ink(2449).astype(np.uint16) * 257), "PNG"
    ),
    "gif_2449x2449": lambda: encode(Image.fromarray(_with_ink(2449)), "GIF"),
    "png_tall_300x20000": lambda: encode(Image.new("L", (300, 20_000), 230), "PNG"),
    "jpeg_8000x6000": lambda: encode(
        Image.fromarray(np.pad(_with_ink(6000), ((0, 0), (1000, 1000)), constant_values=230)),
        "JPEG",
        quality=80,
    ),
}


@pytest.mark.parametrize("layout", ["crop", "mnist"])
@pytest.mark.parametrize("name", list(AT_THE_LIMITS))
def test_files_at_the_limits_decode_in_bounded_memory(cost, name, layout):
    out = cost(AT_THE_LIMITS[name](), layout=layout)
    if name == "png_tall_300x20000" and layout == "mnist":
        assert "No drawing" in out["result"], out  # a blank page: refused after decoding
    else:
        assert out["result"] == "decoded (1, 1, 28, 28)", out
    assert out["mb"] < DECODED_MB, out
    assert out["s"] < 20.0, out  # 0.03..0.3 s measured


def test_the_child_measures_what_it_should(cost):
    """The harness itself: a decode that must hold 24 MB (6 million RGB pixels) shows it."""
    out = cost(AT_THE_LIMITS["png_rgb_2449x2449"]())
    assert out["mb"] > 20, out
