"""Figures of a run's snapshots (aecore.watch): the 8 images, the per-batch loss, the 2-D codes.

Built on aecore.plots (image_grid, latent_scatter) so they look like the rest of the app.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import torch

from aecore import plots
from aecore.models import is_variational
from aecore.watch import Snapshot, Watch

WATCH_CELL_PX = 56  # 8 columns fit a 1024-pixel screen beside the sidebar
CURVE_HEIGHT = 300


def _float(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(images, dtype=np.float32)) / 255.0


def recon_rows(watch: Watch, snap: Snapshot, corrupted: bool = True) -> dict[str, torch.Tensor]:
    """Original / Corrupted / Reconstructed rows of the 8 images (no Corrupted row when the run's
    corruption is "none")."""
    rows = {"Original": _float(watch.clean), "Corrupted": _float(watch.noisy)}
    if not corrupted:
        del rows["Corrupted"]
    rows["Reconstructed"] = _float(snap.recon)
    return rows


def recon_figure(watch: Watch, snap: Snapshot, corrupted: bool = True) -> go.Figure:
    """The 8 fixed test images, each column one class, as the model reconstructs them now."""
    names = [watch.classes[c] if 0 <= c < len(watch.classes) else str(c) for c in watch.labels]
    rows = recon_rows(watch, snap, corrupted)
    return plots.image_grid(rows, cell_px=WATCH_CELL_PX, column_labels=names)


def loss_unit(model: str, loss: str) -> str:
    if is_variational(model):
        return f"negative ELBO ({loss.upper()} + KL), nats per image"
    return f"{loss.upper()} per pixel"


def batch_loss_figure(watch: Watch, upto: int, unit: str, whole: bool = False) -> go.Figure:
    """The training loss per batch (means of blocks of watch.loss_every batches) up to `upto`
    batches, on a log axis like the per-epoch curve; whole=True also draws the rest of the run
    in grey, with a line where the snapshot was taken."""
    x, y = watch.losses_until(upto)
    fig = go.Figure()
    if whole and upto < watch.latest.step:
        all_x, all_y = watch.losses_until(watch.latest.step)
        fig.add_trace(
            go.Scatter(x=all_x, y=all_y, mode="lines", name="later", line={"color": "#c7c7c7"})
        )
    fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name="training, per batch"))
    if whole:
        fig.add_vline(x=upto / watch.steps_per_epoch, line={"color": "#d62728", "dash": "dot"})
    per = f" (means of {watch.loss_every} batches)" if watch.loss_every > 1 else ""
    shown = watch.losses if whole else np.asarray(y)  # the axis stays put while scrubbing
    positive = shown[np.isfinite(shown) & (shown > 0)]
    fig.update_layout(
        xaxis_title=f"epoch{per}",
        yaxis_title=plots.wrap_label(unit, 30),
        yaxis_type="log" if len(positive) == len(shown) and len(shown) else "linear",
        height=CURVE_HEIGHT,
        margin={"l": 60, "r": 10, "t": 10, "b": 40},
        showlegend=False,
        font=plots.FONT,
    )
    return fig


def code_bounds(watch: Watch) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Axis ranges that hold (nearly) every snapshot's codes, so scrubbing keeps the axes still;
    the 1st to 99th percentile, padded, so one stray code does not shrink the rest."""
    codes = [s.codes.astype(np.float32) for s in watch.snapshots if s.codes is not None]
    if not codes:
        return None
    points = np.concatenate(codes)
    points = points[np.isfinite(points).all(axis=1)]
    if not len(points):
        return None
    low, high = np.percentile(points, 1, axis=0), np.percentile(points, 99, axis=0)
    pad = np.maximum((high - low) * 0.08, 1e-3)
    return (float(low[0] - pad[0]), float(high[0] + pad[0])), (
        float(low[1] - pad[1]),
        float(high[1] + pad[1]),
    )


def code_figure(watch: Watch, snap: Snapshot, bounds=None) -> go.Figure | None:
    """The 2-D codes of the code images, coloured by class (None without a 2-unit code)."""
    if snap.codes is None or watch.code_labels is None:
        return None
    fig = plots.latent_scatter(snap.codes.astype(np.float32), watch.code_labels, watch.classes)
    fig.update_layout(
        height=CURVE_HEIGHT + 40,
        xaxis_title="code unit 1",
        yaxis_title="code unit 2",
        clickmode="none",
        margin={"l": 60, "r": 10, "t": 10, "b": 40},
    )
    if bounds is not None:
        fig.update_xaxes(range=list(bounds[0]))
        fig.update_yaxes(range=list(bounds[1]))
    return fig
