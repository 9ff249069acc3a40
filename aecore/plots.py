"""Plotly figures and tables for the app (no Streamlit here, so they can be tested and reused).

Images are float tensors (N, C, H, W) in [0, 1]. Loss units follow aecore.train.EpochStats:
per pixel for autoencoders, nats per image for VAEs.
"""

from __future__ import annotations

import io
import itertools
import textwrap
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch
from PIL import Image, ImageDraw, ImageFont

from aecore.history import EpochStats
from aecore.metrics import METHODS, METRICS, metric_key

PAD = 2  # pixels of white between tiles
CELL_PX = 84  # on-screen size of one tile: 28x28 MNIST at 3x, 8x8 digits at ~10x
LABEL_PX = 150  # labelled_png: the label column
LABELLED_PAD = 4  # labelled_png: white pixels after each tile
FONT = {"size": 14}


NARROW = set("fijlrt.,:;|'!()[] ")
WIDE = set("mwMW@%")


def text_px(text: str, size: int = FONT["size"]) -> int:
    """A generous estimate of `text`'s width in pixels at `size` px: enough that a row label or
    legend entry sized with it is never cut off (real fonts are a little narrower)."""
    per_char = {True: 5.0, False: 8.2}
    width = 0.0
    for ch in text:
        if ch in WIDE:
            width += 12.0
        elif ch.isupper() or ch.isdigit():
            width += 9.2
        else:
            width += per_char[ch in NARROW]
    return int(width * size / 14) + 1


def wrap_label(text: str, width: int = 26, max_lines: int = 3) -> str:
    """A long label on up to max_lines lines (Plotly's <br>), broken between words, so a row or
    axis name shows whole without widening the figure; short labels come back unchanged."""
    if len(text) <= width:
        return text
    while True:
        lines = textwrap.wrap(text, width, break_on_hyphens=False)
        if len(lines) <= max_lines:
            return "<br>".join(lines)
        width += 4


def _stack_rows(rows: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """All rows as one (R*N, C, H, W) batch, rows cut to the shortest; and N."""
    if not rows:
        raise ValueError("image_grid needs at least one row")
    n = min(len(x) for x in rows.values())
    batch = torch.cat([x[:n].detach().float().cpu().clamp(0, 1) for x in rows.values()])
    return batch, n


def _nearest(batch: torch.Tensor, side: int) -> torch.Tensor:
    """Each image scaled to side x side without smoothing, picking the pixels Pillow's NEAREST
    resize picks (the source pixel under each target pixel's centre)."""
    h, w = batch.shape[-2:]
    return batch[:, :, _sources(h, side)][:, :, :, _sources(w, side)]


def _sources(size: int, side: int) -> torch.Tensor:
    """The source pixel of each of `side` target pixels, summed up step by step in floats as
    Pillow does (8 -> 84 then picks pixel 0 for target 10, where exact maths would pick 1)."""
    step = size / side
    centres = itertools.accumulate([step] * (side - 1), initial=0.5 * step)
    return torch.tensor([min(int(x), size - 1) for x in centres])


def grid_pixels(
    images: torch.Tensor, per_row: int, pad: int = PAD, tile_px: int | None = None
) -> np.ndarray:
    """The one image-grid renderer: images (N, C, H, W) in [0, 1] as uint8 (H', W', 3) tiles,
    per_row to a row, with `pad` white pixels around and between them (torchvision make_grid's
    layout); grayscale becomes three equal channels. tile_px: each tile scaled to that square
    first (nearest pixel). image_grid, tiles, grid_png and labelled_png all draw with it."""
    batch = images.detach().float().cpu().clamp(0, 1)
    if tile_px is not None:
        batch = _nearest(batch, tile_px)
    if batch.shape[1] == 1:
        batch = batch.expand(-1, 3, -1, -1)
    n, _, h, w = batch.shape
    across = max(1, min(per_row, n))
    down = -(-n // across)
    canvas = torch.ones(3, down * (h + pad) + pad, across * (w + pad) + pad)
    for i, tile in enumerate(batch):
        top, left = pad + (i // across) * (h + pad), pad + (i % across) * (w + pad)
        canvas[:, top : top + h, left : left + w] = tile
    return (canvas.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def image_grid(
    rows: Mapping[str, torch.Tensor],
    title: str | None = None,
    cell_px: int = CELL_PX,
    column_labels: Sequence[str] | None = None,
) -> go.Figure:
    """One figure: a labelled row of images per entry, e.g. Original / Corrupted / Reconstructed."""
    batch, n = _stack_rows(rows)
    image = grid_pixels(batch, n)
    h, w = batch.shape[-2:]
    fig = px.imshow(image, binary_string=True)  # a PNG inside the JSON: small for big grids
    scale = cell_px / max(h, w)
    # Tick labels at the centre of each row name the rows; everything else on the axes goes. A
    # long name takes as many lines as the row's height holds, and the margin fits its longest.
    lines_fit = max(1, int(h * scale // (FONT["size"] * 1.3)))
    names = [wrap_label(name, max_lines=lines_fit) for name in rows]
    centres = [PAD + r * (h + PAD) + h / 2 for r in range(len(rows))]
    fig.update_yaxes(
        tickvals=centres, ticktext=names, tickfont=FONT, showgrid=False, ticks="", title=None
    )
    fig.update_xaxes(showticklabels=column_labels is not None, showgrid=False, ticks="")
    if column_labels is not None:
        col_centres = [PAD + c * (w + PAD) + w / 2 for c in range(n)]
        fig.update_xaxes(tickvals=col_centres, ticktext=list(column_labels)[:n], side="top")
    label_px = 16 + max(text_px(line) for name in names for line in name.split("<br>"))
    fig.update_layout(
        title=title,
        width=int(label_px + n * (w + PAD) * scale) + 20,
        height=int(len(rows) * (h + PAD) * scale) + (60 if title or column_labels else 20),
        margin={"l": label_px, "r": 10, "t": 50 if title or column_labels else 10, "b": 10},
        font=FONT,
    )
    fig.update_traces(hoverinfo="skip", hovertemplate=None)
    return fig


def tiles(images: torch.Tensor, per_row: int, title: str | None = None, cell_px: int = 48):
    """An unlabelled square-ish mosaic of images (N, C, H, W): manifold grids, VAE samples."""
    batch = images.detach().float().cpu().clamp(0, 1)
    image = grid_pixels(batch, per_row)
    fig = px.imshow(image, binary_string=True)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    rows = -(-len(batch) // per_row)
    h, w = batch.shape[-2:]
    scale = cell_px / max(h, w)
    fig.update_layout(
        title=title,
        width=int(per_row * (w + PAD) * scale) + 20,
        height=int(rows * (h + PAD) * scale) + (60 if title else 20),
        margin={"l": 10, "r": 10, "t": 50 if title else 10, "b": 10},
        font=FONT,
    )
    fig.update_traces(hoverinfo="skip", hovertemplate=None)
    return fig


def grid_png(rows: Mapping[str, torch.Tensor]) -> bytes:
    """The same rows as image_grid, as PNG bytes for a download (no labels: row order = keys)."""
    batch, n = _stack_rows(rows)
    return _png(Image.fromarray(grid_pixels(batch, n)))


def labelled_png(rows: Mapping[str, torch.Tensor], tile_px: int = CELL_PX) -> bytes:
    """One PNG: a row per entry, its label on the left (LABEL_PX wide), tiles scaled up to
    tile_px without smoothing, LABELLED_PAD white pixels after each (the Home page's picture)."""
    batch, n = _stack_rows(rows)
    tiles = grid_pixels(batch, n, pad=LABELLED_PAD, tile_px=tile_px)[LABELLED_PAD:, LABELLED_PAD:]
    canvas = Image.new("RGB", (LABEL_PX + tiles.shape[1], tiles.shape[0]), "white")
    canvas.paste(Image.fromarray(tiles), (LABEL_PX, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=15)
    for r, label in enumerate(rows):
        text = label.replace(" (", "\n(")  # "Corrupted (p = 0.5)" on two lines
        middle = r * (tile_px + LABELLED_PAD) + tile_px // 2
        draw.multiline_text((4, middle), text, fill="black", font=font, anchor="lm")
    return _png(canvas, optimize=True)


def _png(image: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="png", **options)
    return buf.getvalue()


def _loss_unit(history: Sequence[EpochStats], loss: str) -> str:
    if history and history[0].train_kl is not None:
        return f"negative ELBO ({loss.upper()} + KL), nats per image"
    return f"{loss.upper()} per pixel"


def _whole_epochs(fig: go.Figure, epochs: Sequence[int], **where) -> None:
    """Whole epochs only on the x axis; a one-epoch run still gets a sensible axis."""
    if epochs:
        fig.update_xaxes(range=[0.5, max(epochs) + 0.5], dtick=max(1, len(epochs) // 10), **where)


def loss_curves(history: Sequence[EpochStats], loss: str = "mse", title: str | None = None):
    """Training vs validation loss per epoch. A plain AE: on a log axis (per-pixel losses span
    decades). A VAE: its negative ELBO and the two parts it sums, see vae_loss_curves."""
    if history and history[0].train_kl is not None:
        return vae_loss_curves(history, loss, title)
    epochs = [h.epoch for h in history]
    terms = [("loss", "total")]
    if history and history[0].train_reg is not None:
        terms += [("recon", "reconstruction"), ("reg", "regulariser")]
    fig = go.Figure()
    colours = px.colors.qualitative.Plotly
    for i, (term, name) in enumerate(terms):
        for split, dash in (("train", "solid"), ("val", "dash")):
            values = [getattr(h, f"{split}_{term}") for h in history]
            label = "training" if split == "train" else "validation"
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=values,
                    mode="lines+markers",
                    name=f"{name}, {label}" if len(terms) > 1 else label,
                    line={"color": colours[i], "dash": dash},
                )
            )
    fig.update_layout(
        title=title,
        xaxis_title="epoch",
        yaxis_title=_loss_unit(history, loss),
        yaxis_type="log",
        height=340,
        margin={"l": 60, "r": 10, "t": 40 if title else 10, "b": 40},
        legend={"orientation": "h", "y": -0.25},
        font=FONT,
    )
    _whole_epochs(fig, epochs)
    return fig


VAE_COLOURS = {"total": "#1f77b4", "reconstruction": "#2ca02c", "KL": "#d62728"}


def vae_loss_curves(history: Sequence[EpochStats], loss: str = "bce", title: str | None = None):
    """A VAE's loss in nats per image, on linear axes that start at 0.

    Top: the negative ELBO (the total) and its reconstruction part; the shaded band between
    them is the KL part, so total = reconstruction + KL can be read off the picture. Bottom: the
    KL alone on its own scale, since it is a few nats next to a total of tens or hundreds and
    its changes would not show on the top panel. Solid: training; dashed: validation.
    """
    from plotly.subplots import make_subplots  # only VAEs need it

    epochs = [h.epoch for h in history]
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.64, 0.36],
        vertical_spacing=0.08,
    )

    def line(term: str, split: str, name: str, **extra) -> go.Scatter:
        kind = name.split(" ")[0]
        colour = VAE_COLOURS[kind]
        label = "training" if split == "train" else "validation"
        # Legend: total, then its parts; training before validation.
        rank = 2 * list(VAE_COLOURS).index(kind) + (split == "val")
        return go.Scatter(
            x=epochs,
            y=[getattr(h, f"{split}_{term}") for h in history],
            mode="lines+markers",
            name=f"{name}, {label}",
            legendrank=rank,
            line={"color": colour, "dash": "solid" if split == "train" else "dash"},
            hovertemplate=f"{name}, {label}<br>epoch %{{x}}: %{{y:.2f}} nats<extra></extra>",
            **extra,
        )

    # The training curves as filled bands: reconstruction from 0, then KL up to the total.
    recon = f"reconstruction ({loss.upper()})"
    fig.add_trace(line("recon", "train", recon, fill="tozeroy"), 1, 1)
    fig.add_trace(line("loss", "train", "total (negative ELBO)", fill="tonexty"), 1, 1)
    fig.update_traces(fillcolor="rgba(44, 160, 44, 0.12)", selector={"fill": "tozeroy"})
    fig.update_traces(fillcolor="rgba(214, 39, 40, 0.15)", selector={"fill": "tonexty"})
    fig.add_trace(line("recon", "val", recon), 1, 1)
    fig.add_trace(line("loss", "val", "total (negative ELBO)"), 1, 1)
    fig.add_trace(line("kl", "train", "KL"), 2, 1)
    fig.add_trace(line("kl", "val", "KL"), 2, 1)
    _vae_axes(fig, history, title)
    return fig


def _vae_axes(fig: go.Figure, history: Sequence[EpochStats], title: str | None) -> None:
    """vae_loss_curves' axes (from 0), the KL band's name where it fits, and the layout."""
    epochs = [h.epoch for h in history]
    top = max([h.train_loss for h in history] + [h.val_loss for h in history], default=1.0)
    kl_top = max([h.train_kl for h in history] + [h.val_kl for h in history], default=1.0)
    # Short axis titles: a long one would be clipped on a panel this high; the legend names
    # the curves.
    fig.update_yaxes(title_text="nats per image", range=[0, 1.08 * top], row=1)
    fig.update_yaxes(title_text="KL (nats)", range=[0, 1.15 * kl_top], row=2)
    fig.update_xaxes(title_text="epoch", row=2)
    if history and history[-1].train_kl >= 0.08 * top:  # a band wide enough to hold its name
        fig.add_annotation(
            x=epochs[-1],
            y=(history[-1].train_loss + history[-1].train_recon) / 2,
            text="KL",
            showarrow=False,
            xanchor="right",
            font={"color": VAE_COLOURS["KL"], "size": 12},
            row=1,
            col=1,
        )
    fig.update_layout(
        title=title,
        height=480,
        margin={"l": 60, "r": 10, "t": 40 if title else 10, "b": 40},
        legend={"orientation": "h", "y": -0.18, "font": {"size": 12}, "traceorder": "normal"},
        font=FONT,
    )
    _whole_epochs(fig, epochs, row=2)
    _whole_epochs(fig, epochs, row=1)


def psnr_curve(history: Sequence[EpochStats], title: str | None = None) -> go.Figure:
    """Validation PSNR (dB) of the reconstructions per epoch."""
    fig = go.Figure(
        go.Scatter(
            x=[h.epoch for h in history],
            y=[h.val_psnr_db for h in history],
            mode="lines+markers",
            name="validation PSNR",
        )
    )
    fig.update_layout(
        title=title,
        xaxis_title="epoch",
        yaxis_title="validation PSNR (dB, higher is better)",
        height=340,
        margin={"l": 60, "r": 10, "t": 40 if title else 10, "b": 40},
        font=FONT,
    )
    if history:
        fig.update_xaxes(range=[0.5, history[-1].epoch + 0.5], dtick=max(1, len(history) // 10))
    return fig


def metrics_table(metrics: Mapping[str, float]) -> pd.DataFrame:
    """Test metrics of a checkpoint as one row per method (model, noisy input, baselines)."""
    rows = [
        {"method": method.label}
        | {label: metrics.get(metric_key(name, suffix)) for name, (label, _) in METRICS.items()}
        for suffix, method in METHODS.items()
        if metric_key("psnr", suffix) in metrics
    ]
    return pd.DataFrame(
        rows, columns=["method", *(label for label, _ in METRICS.values())]
    ).set_index("method")


def severity_sweep(
    levels: Sequence[float],
    psnr_by_method: Mapping[str, Sequence[float]],
    level_name: str,
    trained_level: float | None = None,
    ssim_by_method: Mapping[str, Sequence[float]] | None = None,
    trained_text: str | None = None,
) -> go.Figure:
    """Test PSNR (dB) against corruption level, one line per method; with ssim_by_method, SSIM
    in a second panel beside it (same colours, one legend). The trained level is marked with a
    dotted line labelled trained_text (default "trained at <level>")."""
    from plotly.subplots import make_subplots

    panels = 2 if ssim_by_method else 1
    titles = ["PSNR (dB)", "SSIM"] if panels == 2 else None
    fig = make_subplots(rows=1, cols=panels, subplot_titles=titles, horizontal_spacing=0.1)
    colours = px.colors.qualitative.D3
    for col, series in enumerate([psnr_by_method, ssim_by_method][:panels], start=1):
        for i, (method, values) in enumerate(series.items()):
            fig.add_trace(
                go.Scatter(
                    x=list(levels),
                    y=list(values),
                    mode="lines+markers",
                    name=method,
                    legendgroup=method,
                    showlegend=col == 1,
                    line={"color": colours[i % len(colours)]},
                ),
                row=1,
                col=col,
            )
    if trained_level is not None:
        for col in range(1, panels + 1):
            fig.add_vline(
                x=trained_level,
                line_dash="dot",
                line_color="grey",
                annotation_text=trained_text or f"trained at {trained_level:g}",
                annotation_position="top left",
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text=level_name)
    fig.update_yaxes(title_text="test PSNR (dB, higher is better)", row=1, col=1)
    if panels == 2:
        fig.update_yaxes(title_text="test SSIM (higher is better)", row=1, col=2)
    fig.update_layout(
        height=420,
        margin={"l": 60, "r": 10, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.22},
        font=FONT,
    )
    return fig


def latent_scatter(
    points: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    class_names: Sequence[str],
    method: str = "",
) -> go.Figure:
    """2-D codes coloured by class. Each point's customdata is its index in `points`, so a
    selection in any trace maps back to the image it came from."""
    xy = np.asarray(points, dtype=np.float64)
    label_idx = np.asarray(labels).astype(int)
    palette = px.colors.qualitative.D3  # ten distinct colours, one per class
    fig = go.Figure()
    for c, name in enumerate(class_names):
        idx = np.flatnonzero(label_idx == c)
        if len(idx) == 0:
            continue
        fig.add_trace(
            go.Scatter(
                x=xy[idx, 0],
                y=xy[idx, 1],
                mode="markers",
                name=str(name),
                customdata=idx,
                marker={"size": 6, "opacity": 0.8, "color": palette[c % len(palette)]},
                hovertemplate=f"class {name}<br>test image #%{{customdata}}<extra></extra>",
            )
        )
    axis = {"pca": "PCA", "tsne": "t-SNE", "identity": "code unit"}.get(method, method or "axis")
    fig.update_layout(
        xaxis_title=f"{axis} 1",
        yaxis_title=f"{axis} 2",
        height=520,
        legend_title="class",
        margin={"l": 60, "r": 10, "t": 10, "b": 40},
        font=FONT,
        clickmode="event+select",
    )
    return fig


CODE_GAP = "#bdbdbd"  # the lines between code cells, and cells that hold no unit


def _code_scale(low: float, high: float, saturate: bool) -> tuple[float, float, list, list, list]:
    """(zmin, zmax, colour scale, tick values, tick labels) of code_heatmap's colour bar."""
    if low >= 0:
        zmin, zmax = 0.0, high if high > 0 else 1.0
        scale = [[0.0, "#ffffff"], [1.0, "#08306b"]]
        ticks = [0.0, zmax / 2, zmax]
    else:
        m = max(-low, high)
        zmin, zmax = -m, m
        scale = [[0.0, "#2166ac"], [0.5, "#ffffff"], [1.0, "#b2182b"]]
        ticks = [-m, 0.0, m]
    labels = [f"{t:.3g}" for t in ticks]
    if saturate:
        labels[-1] = "≥ " + labels[-1]
        if zmin < 0:
            labels[0] = "≤ " + labels[0]
    return zmin, zmax, scale, ticks, labels


def code_heatmap(
    grid: np.ndarray,
    title: str | None = None,
    value_range: tuple[float, float] | None = None,
    saturate: bool = False,
) -> go.Figure:
    """A code laid out as a small (h, w) grid (aecore.latent.code_as_image).

    One fixed colour scale, so codes of different images can be compared and sparsity shows:
    0 is always white. value_range (low, high) is the range of every code being looked at (e.g.
    all encoded test images); without it, this grid's own. Codes that are never negative (ReLU)
    go from white to dark blue over [0, high]; signed codes (a VAE's mean) from blue through
    white to red over [-m, m], m = max(|low|, |high|). saturate: values beyond the range exist
    and take the end colours (the end ticks then read ">= x"). NaN cells (no unit) are gray.
    """
    finite = grid[np.isfinite(grid)]
    if value_range is None:
        value_range = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    zmin, zmax, scale, ticks, labels = _code_scale(*value_range, saturate)
    h, w = grid.shape
    cell = min(36.0, 240 / max(h, w))  # screen pixels: small codes get big cells, big ones fit
    gap = 1 if cell >= 6 else 0  # lines between cells, while cells are big enough to show them
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            zmin=zmin,
            zmax=zmax,
            colorscale=scale,
            customdata=np.arange(grid.size).reshape(grid.shape),
            hovertemplate="unit %{customdata}: %{z:.3f}<extra></extra>",
            xgap=gap,
            ygap=gap,
            colorbar={
                "title": {"text": "code value (0 = white)", "side": "right"},
                "thickness": 12,
                "len": 1.0,
                "tickvals": ticks,
                "ticktext": labels,
            },
        )
    )
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    top = 40 if title else 10
    fig.update_layout(
        title=title,
        width=int(max(340, w * cell + 170)),
        height=int(max(160, h * cell)) + top + 10,
        margin={"l": 10, "r": 10, "t": top, "b": 10},
        plot_bgcolor=CODE_GAP,
        font=FONT,
    )
    return fig


def metric_bars(
    values: Mapping[str, float],
    axis_title: str,
    references: Mapping[str, float] | None = None,
    x_title: str = "run",
    digits: int = 2,
    muted: Sequence[str] = (),
) -> go.Figure:
    """One bar per run; `references` (e.g. the corrupted input, a median filter) as dotted lines.
    Bars named in `muted` (inputs and baselines among runs) are drawn in gray."""
    fig = go.Figure(
        go.Bar(
            x=list(values),
            y=list(values.values()),
            text=[f"{v:.{digits}f}" for v in values.values()],
            textposition="outside",
            marker_color=["#9e9e9e" if k in muted else px.colors.qualitative.D3[0] for k in values],
        )
    )
    # Reference lines often lie within a dB of each other: their labels take turns at the right
    # and left ends, above and below, so they do not print over one another.
    places = ("top right", "bottom left", "bottom right", "top left")
    for i, (name, value) in enumerate((references or {}).items()):
        fig.add_hline(
            y=value,
            line_dash="dot",
            line_color=px.colors.qualitative.D3[(i + 1) % 10],
            annotation_text=f"{name}: {value:.{digits}f}",
            annotation_position=places[i % len(places)],
        )
    top = max([*values.values(), *(references or {}).values()], default=1.0)
    fig.update_traces(width=min(0.6, 0.25 * len(values)))  # a lone bar stays narrow
    fig.update_layout(
        xaxis_title=x_title,
        yaxis_title=axis_title,
        yaxis_range=[0, top * 1.15],
        height=360,
        margin={"l": 60, "r": 10, "t": 20, "b": 40},
        font=FONT,
    )
    return fig


def latent_sweep(latents: Sequence[int], series: Mapping[str, Sequence[float | None]]) -> go.Figure:
    """Test MSE per pixel against code size on a log x axis, one line per method (e.g. the dense
    AE and PCA); None values (untrained sizes) leave gaps."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        fig.add_trace(
            go.Scatter(
                x=list(latents),
                y=list(values),
                mode="lines+markers",
                name=name,
                marker={"size": 9},
                line={"color": px.colors.qualitative.D3[i % 10]},
                hovertemplate=f"{name}<br>k = %{{x}}<br>MSE %{{y:.4f}}<extra></extra>",
            )
        )
    fig.update_layout(
        xaxis_title="code size k (latent units = PCA components), log scale",
        yaxis_title="test MSE per pixel (lower is better)",
        height=380,
        margin={"l": 60, "r": 10, "t": 20, "b": 40},
        legend={"orientation": "h", "y": -0.25},
        font=FONT,
    )
    fig.update_xaxes(type="log", tickvals=list(latents), ticktext=[str(k) for k in latents])
    return fig
