"""The clickable plane of a 2-D code (the Decode any point and Draw a digit pages): the test
codes coloured by class, one marked point, a VAE's prior, and an invisible grid that makes every
spot of the plane clickable (Plotly reports clicks on points only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import torch

from aecore import plots
from aecore.latent import plane_grid

GRID_NAME = "any point"  # the invisible grid's trace name: a click on it is a click on the plane
GRID_SIDE = 80  # points a side: a click lands within 1/160 of the plane's width of the spot
MARKER = {"symbol": "x", "size": 16, "color": "black", "line": {"width": 2, "color": "white"}}


def plane_figure(
    points: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    class_names: Sequence[str],
    extent: tuple[float, float, float, float],
    marker: tuple[float, float] | None = None,
    marker_name: str = "decoded point",
    prior_sigmas: float | None = None,
    height: int = 460,
    clickable: bool = True,
) -> go.Figure:
    """plots.latent_scatter over the fixed extent (x0, x1, y0, y1), with the invisible grid
    (trace GRID_NAME), the marked point (a black cross) and, for a VAE, the prior's
    prior_sigmas circle. clickable=False leaves the grid out (a picture only)."""
    fig = plots.latent_scatter(points, labels, class_names, "identity")
    if clickable:
        _add_grid(fig, extent)
    if prior_sigmas is not None:
        _add_prior(fig, float(prior_sigmas))
    if marker is not None:
        fig.add_trace(
            go.Scatter(
                x=[marker[0]],
                y=[marker[1]],
                mode="markers",
                name=marker_name,
                marker=MARKER,
                hovertemplate=f"{marker_name} (%{{x:.2f}}, %{{y:.2f}})<extra></extra>",
            )
        )
    x0, x1, y0, y1 = extent
    fig.update_xaxes(range=[x0, x1], title="code unit 1")
    fig.update_yaxes(range=[y0, y1], title="code unit 2")
    fig.update_layout(
        height=height,
        hovermode="closest",
        hoverdistance=20,
        margin={"l": 50, "r": 10, "t": 20, "b": 40},
        # Under the plane, across (clear of the toolbar): at a projector's 1024 pixels a legend
        # at the side would halve the plane.
        legend={"orientation": "h", "y": -0.15, "yanchor": "top", "x": 0, "title": None},
        uirevision="plane",  # a rerun keeps the user's zoom
    )
    return fig


def _add_grid(fig: go.Figure, extent: tuple[float, float, float, float]) -> None:
    """The invisible grid, under the test points so their hover labels (class, image number)
    still show; selected or not, no point changes its look, so a click never dims the plane."""
    grid = plane_grid(extent, GRID_SIDE)
    fig.add_trace(
        go.Scatter(
            x=grid[:, 0],
            y=grid[:, 1],
            mode="markers",
            name=GRID_NAME,
            showlegend=False,
            marker={"size": 8, "opacity": 0, "color": "black"},
            hovertemplate="code (%{x:.2f}, %{y:.2f})<extra>click to decode</extra>",
        )
    )
    fig.data = (fig.data[-1], *fig.data[:-1])
    for trace in fig.data:
        opacity = trace.marker.opacity
        trace.selected = {"marker": {"opacity": opacity}}
        trace.unselected = {"marker": {"opacity": opacity}}


def _add_prior(fig: go.Figure, r: float) -> None:
    """A VAE's prior N(0, I): its r-sigma circle, dashed."""
    fig.add_shape(type="circle", x0=-r, y0=-r, x1=r, y1=r, line={"dash": "dash", "color": "gray"})
    fig.add_annotation(
        x=0, y=r, text=f"prior ±{r:g}σ", showarrow=False, yshift=10, font={"color": "gray"}
    )


def clicked_code(points: Sequence[dict]) -> tuple[float, float] | None:
    """The code (x, y) of the first clicked point in a Streamlit plotly selection, or None."""
    for p in points:
        x, y = p.get("x"), p.get("y")
        numbers = isinstance(x, int | float) and isinstance(y, int | float)
        if numbers and math.isfinite(x) and math.isfinite(y):
            return float(x), float(y)
    return None
