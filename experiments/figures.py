"""PNG figures with no plotting library: labelled image grids and plain line charts.

Only PIL and torchvision, which aecore already needs. Images are float (N, C, H, W) in [0, 1].
Grayscale grids are written as 8-bit grayscale PNGs: a third of the bytes of save_image's RGB.
"""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont
from torchvision.utils import make_grid

FONT = ImageFont.load_default()
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def _to_pil(grid: torch.Tensor) -> Image.Image:
    """(C, H, W) in [0, 1] -> an 8-bit PIL image, grayscale when the channels are equal."""
    array = grid.clamp(0, 1).mul(255).round().to(torch.uint8)
    if torch.equal(array[0], array[-1]) and torch.equal(array[0], array[len(array) // 2]):
        return Image.fromarray(array[0].numpy(), mode="L")
    return Image.fromarray(array.permute(1, 2, 0).numpy(), mode="RGB")


def save_grid(images: torch.Tensor, path: Path, nrow: int = 8, scale: int = 1) -> Path:
    """A plain grid, nrow images per row (torchvision's make_grid), white 2-pixel gaps."""
    img = _to_pil(make_grid(images.detach().cpu().float(), nrow=nrow, padding=2, pad_value=1))
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    img.save(path, optimize=True)
    return path


def save_rows(rows: list[tuple[str, torch.Tensor]], path: Path, scale: int = 2) -> Path:
    """One labelled row per (label, images (n, C, H, W)); every row holds the same n."""
    strips = [
        _to_pil(make_grid(x.detach().cpu().float(), nrow=len(x), padding=2, pad_value=1))
        for _, x in rows
    ]
    strips = [s.resize((s.width * scale, s.height * scale), Image.NEAREST) for s in strips]
    label_w = 8 + max(int(FONT.getlength(label)) for label, _ in rows)
    width, height = label_w + strips[0].width, sum(s.height for s in strips)
    mode = "RGB" if any(s.mode == "RGB" for s in strips) else "L"
    canvas = Image.new(mode, (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    y = 0
    for (label, _), strip in zip(rows, strips, strict=True):
        canvas.paste(strip.convert(mode), (label_w, y))
        draw.text((4, y + strip.height // 2 - 5), label, fill="black", font=FONT)
        y += strip.height
    canvas.save(path, optimize=True)
    return path


def _ticks(low: float, high: float, n: int = 5) -> list[float]:
    return [low + (high - low) * i / (n - 1) for i in range(n)]


def line_chart(
    series: dict[str, list[tuple[float, float]]],
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    size: tuple[int, int] = (560, 340),
) -> Path:
    """A line chart of named (x, y) series with axes, five ticks each way and a legend."""
    w, h = size
    left, right, top, bottom = 60, 150, 34, 40  # margins; the legend sits on the right
    xs = [x for pts in series.values() for x, _ in pts]
    ys = [y for pts in series.values() for _, y in pts]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    pad = 0.05 * ((max(ys) - min(ys)) or 1.0)
    y0, y1 = min(ys) - pad, max(ys) + pad

    def at(x: float, y: float) -> tuple[float, float]:
        px = left + (x - x0) / (x1 - x0) * (w - left - right)
        py = h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)
        return px, py

    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    for t in _ticks(y0, y1):
        _, py = at(x0, t)
        draw.line([left - 4, py, left, py], fill="black")
        draw.line([left, py, w - right, py], fill="#e8e8e8")
        draw.text((4, py - 5), f"{t:.4g}", fill="black", font=FONT)
    draw.rectangle([left, top, w - right, h - bottom], outline="black")  # over the grid lines
    for t in _ticks(x0, x1):
        px, _ = at(t, y0)
        draw.line([px, h - bottom, px, h - bottom + 4], fill="black")
        draw.text((px - 8, h - bottom + 6), f"{t:.3g}", fill="black", font=FONT)
    draw.text((left, 4), title, fill="black", font=FONT)
    draw.text(((left + w - right) // 2 - 20, h - 16), xlabel, fill="black", font=FONT)
    draw.text((4, top - 12), ylabel, fill="black", font=FONT)
    for i, (name, pts) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        line = [at(x, y) for x, y in pts]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for px, py in line:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        ly = top + 14 * i
        draw.line([w - right + 10, ly + 6, w - right + 30, ly + 6], fill=colour, width=2)
        draw.text((w - right + 36, ly), name, fill="black", font=FONT)
    img.save(path, optimize=True)
    return path
