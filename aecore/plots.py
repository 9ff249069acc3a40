"""Plotly figures and tables for the app (no Streamlit here, so they can be tested and reused).

Images are float tensors (N, C, H, W) in [0, 1]. Loss units follow aecore.train.EpochStats:
per pixel for autoencoders, nats per image for VAEs.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch
from torchvision.utils import make_grid, save_image

from aecore.train import EpochStats

PAD = 2  # pixels of white between tiles
CELL_PX = 84  # on-screen size of one tile: 28x28 MNIST at 3x, 8x8 digits at ~10x
FONT = {"size": 14}

# Rows of the metrics table: checkpoint metric suffix -> what the row is.
METHODS = {
    "": "Autoencoder",
    "_noisy": "Corrupted input",
    "_median3": "Median filter 3x3",
    "_median5": "Median filter 5x5",
    "_pca": "PCA, k = code size",
}


def _stack_rows(rows: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, int]:
    """All rows as one (R*N, C, H, W) batch, rows cut to the shortest; and N."""
    if not rows:
        raise ValueError("image_grid needs at least one row")
    n = min(len(x) for x in rows.values())
    batch = torch.cat([x[:n].detach().float().cpu().clamp(0, 1) for x in rows.values()])
    return batch, n


def _grid_array(batch: torch.Tensor, per_row: int) -> np.ndarray:
    """make_grid (3, H', W') -> uint8 (H', W', 3); grayscale becomes three equal channels."""
    grid = make_grid(batch, nrow=per_row, padding=PAD, pad_value=1.0)
    return (grid.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def image_grid(
    rows: Mapping[str, torch.Tensor],
    title: str | None = None,
    cell_px: int = CELL_PX,
    column_labels: Sequence[str] | None = None,
) -> go.Figure:
    """One figure: a labelled row of images per entry, e.g. Original / Corrupted / Reconstructed."""
    batch, n = _stack_rows(rows)
    image = _grid_array(batch, n)
    h, w = batch.shape[-2:]
    fig = px.imshow(image, binary_string=True)  # a PNG inside the JSON: small for big grids
    # Tick labels at the centre of each row name the rows; everything else on the axes goes.
    centres = [PAD + r * (h + PAD) + h / 2 for r in range(len(rows))]
    fig.update_yaxes(
        tickvals=centres, ticktext=list(rows), tickfont=FONT, showgrid=False, ticks="", title=None
    )
    fig.update_xaxes(showticklabels=column_labels is not None, showgrid=False, ticks="")
    if column_labels is not None:
        col_centres = [PAD + c * (w + PAD) + w / 2 for c in range(n)]
        fig.update_xaxes(tickvals=col_centres, ticktext=list(column_labels)[:n], side="top")
    scale = cell_px / max(h, w)
    label_px = 12 + 8 * max(len(name) for name in rows)
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
    image = _grid_array(batch, per_row)
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
    buf = io.BytesIO()
    save_image(batch, buf, format="png", nrow=n, padding=PAD, pad_value=1.0)
    return buf.getvalue()


def _loss_unit(history: Sequence[EpochStats], loss: str) -> str:
    if history and history[0].train_kl is not None:
        return f"negative ELBO ({loss.upper()} + KL), nats per image"
    return f"{loss.upper()} per pixel"


def loss_curves(history: Sequence[EpochStats], loss: str = "mse", title: str | None = None):
    """Training vs validation loss per epoch on a log axis; a VAE shows its terms apart."""
    epochs = [h.epoch for h in history]
    terms = [("loss", "total")]
    if history and history[0].train_kl is not None:
        terms = [("recon", "reconstruction"), ("kl", "KL")]
    elif history and history[0].train_reg is not None:
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
    if history:  # whole epochs only; a one-epoch run still gets a sensible axis
        fig.update_xaxes(range=[0.5, max(epochs) + 0.5], dtick=max(1, len(epochs) // 10))
    return fig


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
    rows = []
    for suffix, method in METHODS.items():
        if f"test_psnr{suffix}" in metrics:
            rows.append(
                {
                    "method": method,
                    "PSNR (dB)": metrics[f"test_psnr{suffix}"],
                    "SSIM": metrics.get(f"test_ssim{suffix}"),
                    "MSE": metrics.get(f"test_mse{suffix}"),
                }
            )
    return pd.DataFrame(rows).set_index("method")


def severity_sweep(
    levels: Sequence[float],
    psnr_by_method: Mapping[str, Sequence[float]],
    level_name: str,
    trained_level: float | None = None,
) -> go.Figure:
    """Test PSNR (dB) against corruption level, one line per method."""
    fig = go.Figure()
    for method, values in psnr_by_method.items():
        fig.add_trace(go.Scatter(x=list(levels), y=list(values), mode="lines+markers", name=method))
    if trained_level is not None:
        fig.add_vline(
            x=trained_level, line_dash="dot", annotation_text="trained at", line_color="grey"
        )
    fig.update_layout(
        xaxis_title=level_name,
        yaxis_title="test PSNR (dB, higher is better)",
        height=380,
        margin={"l": 60, "r": 10, "t": 30, "b": 40},
        legend={"orientation": "h", "y": -0.25},
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


def code_heatmap(grid: np.ndarray, title: str | None = None) -> go.Figure:
    """A code laid out as a small (h, w) grid (aecore.latent.code_as_image); NaN cells blank."""
    fig = px.imshow(grid, color_continuous_scale="viridis", aspect="equal")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_traces(hovertemplate="unit %{customdata}: %{z:.3f}<extra></extra>")
    fig.update_traces(customdata=np.arange(grid.size).reshape(grid.shape))
    fig.update_layout(
        title=title,
        height=260,
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 10},
        coloraxis_colorbar={"title": "value", "thickness": 12},
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
    for i, (name, value) in enumerate((references or {}).items()):
        fig.add_hline(
            y=value,
            line_dash="dot",
            line_color=px.colors.qualitative.D3[(i + 1) % 10],
            annotation_text=f"{name}: {value:.{digits}f}",
            annotation_position="top right",
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
