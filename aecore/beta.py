"""β in the VAE: three runs that differ only in the KL term's weight, and the figures that compare
them (the "β in the VAE" page).

The loss of a β-VAE is reconstruction + β * KL(q(z|x) || N(0, I)) per image, in nats (Higgins et
al. 2017; β = 1 is Kingma and Welling's ELBO). Raising β buys a code distribution closer to the
prior with reconstruction error; the comparison shows that trade on one chart (test
reconstruction against test KL, the rate-distortion view of Alemi et al. 2018) and in the codes'
scatter, samples and reconstructions.

Measured on the bundled 8x8 digits (the Learn page's VAE preset, seeds 0-2): at β = 4 every run
collapsed (test KL 0.001-0.003 nats per image, one average image for every input): 64 pixels
give too little reconstruction to pay for any code at that price. At β = 2 the codes survive
(KL about 1 nat). The page says so when it happens rather than hiding it: it is the lesson.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import torch

from aecore import latent, plots
from aecore.config import TrainConfig
from aecore.data import DATASETS, to_float
from aecore.evaluate import reconstruct
from aecore.models import Autoencoder
from aecore.presets import preset_config

BETAS: tuple[float, ...] = (0.5, 1.0, 4.0)
PRESET_KIND = "variational"  # the Learn page's VAE preset (2-unit code): β = 1 is its bundled run
PRIOR_RADII = (1.0, 2.0)  # the prior's 1σ and 2σ circles in the scatter
MIN_HALF_WIDTH = 2.5  # every scatter shows at least the prior's 2σ circle, with a margin
# E[KL(q(z|x) || p(z))] bounds what the code can tell about the image (its mutual information
# with x, in nats): under this, the code says next to nothing and the decoder draws one image.
COLLAPSED_KL = 0.1
NATS = "nats per image"


def beta_datasets() -> tuple[str, ...]:
    """Datasets the comparison is made for: one-channel images with classes to colour by (a
    2-unit code of colour photos separates little, and its scatter says less)."""
    return tuple(n for n in DATASETS.names() if DATASETS[n].meta["shape"][0] == 1)


def beta_configs(dataset: str) -> dict[float, TrainConfig]:
    """β -> the run for it: the VAE preset of `dataset` (a 2-unit vae_mlp) with only β
    changed. β = 1 is the preset itself, so its bundled run is the middle one."""
    base = preset_config(PRESET_KIND, dataset)
    return {beta: dataclasses.replace(base, beta=beta) for beta in BETAS}


def collapsed(metrics: Mapping[str, float]) -> bool:
    """Whether a run's code carries (next to) nothing about its input: test KL under
    COLLAPSED_KL nats per image."""
    kl = metrics.get("test_kl")
    return kl is not None and math.isfinite(kl) and kl < COLLAPSED_KL


def shared_half_width(codes: Sequence[torch.Tensor | np.ndarray], quantile: float = 0.995) -> float:
    """Half the side of one square window, centred on 0, for every run's scatter, so their
    shapes compare: at least MIN_HALF_WIDTH (the prior's 2σ circle and a margin), and wide
    enough for the `quantile` of each run's codes (a few stray codes do not shrink the rest),
    rounded up to a half."""
    top = 0.0
    for run in codes:
        xy = np.abs(np.asarray(run, dtype=np.float64)).reshape(len(run), -1)
        if len(xy):
            top = max(top, float(np.quantile(xy.max(1), quantile)))
    return max(MIN_HALF_WIDTH, math.ceil(top * 1.05 * 2) / 2)


def beta_scatter(
    points: torch.Tensor | np.ndarray,
    labels: torch.Tensor | np.ndarray,
    class_names: Sequence[str],
    half_width: float,
    height: int = 200,
) -> go.Figure:
    """One run's 2-D test codes coloured by class (aecore.plots.latent_scatter) in the square
    [-half_width, half_width]², one unit as long on both axes, with the prior's 1σ and 2σ
    circles: where N(0, I) puts 39% and 86% of its codes."""
    fig = plots.latent_scatter(points, labels, class_names, "identity")
    fig.update_traces(marker_size=3, marker_opacity=0.6)
    for r in PRIOR_RADII:
        circle = {"type": "circle", "x0": -r, "y0": -r, "x1": r, "y1": r, "layer": "below"}
        fig.add_shape(**circle, line={"color": "#555555", "dash": "dash", "width": 1})
        fig.add_annotation(x=0, y=r, text=f"{r:g}σ", showarrow=False, yshift=8, font_size=12)
    window = [-half_width, half_width]
    # constrain="domain": the square shrinks to fit its column instead of widening the range,
    # so every run's window stays the same.
    square = {"range": window, "zeroline": False, "constrain": "domain", "title_text": ""}
    fig.update_xaxes(**square)
    fig.update_yaxes(**square, scaleanchor="x", scaleratio=1, constraintoward="top")
    fig.update_layout(height=height, margin={"l": 30, "r": 5, "t": 5, "b": 5}, showlegend=False)
    _label_classes(fig, np.asarray(points), np.asarray(labels), class_names)
    return fig


def _label_classes(
    fig: go.Figure, points: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> None:
    """Each class's number at the median of its codes, in its colour: a legend a narrow column
    can hold, and one that shows at a glance which classes the code keeps apart (class_key()
    names the numbers where the names are words)."""
    palette = px.colors.qualitative.D3  # the colours latent_scatter gives the classes
    for c in range(len(class_names)):
        mine = points[labels.astype(int) == c]
        if len(mine) == 0:
            continue
        x, y = np.median(mine, axis=0)
        fig.add_annotation(
            x=float(x),
            y=float(y),
            text=f"<b>{c}</b>",
            showarrow=False,
            font={"size": 14, "color": palette[c % len(palette)]},
            bgcolor="rgba(255, 255, 255, 0.75)",
            borderpad=1,
        )


def class_key(class_names: Sequence[str]) -> str | None:
    """'0 T-shirt/top, 1 Trouser, ...': what the scatter's numbers stand for; None where each
    name starts with its number already (digits, MNIST)."""
    if all(str(name).startswith(str(c)) for c, name in enumerate(class_names)):
        return None
    return ", ".join(f"{c} {name}" for c, name in enumerate(class_names))


def recon_kl_chart(metrics: Mapping[float, Mapping[str, float]], loss: str = "bce") -> go.Figure:
    """Test reconstruction against test KL of each run {β: metrics}, both in nats per image,
    joined in order of β: the price each β pays in reconstruction for a code closer to the
    prior. Runs without both numbers are left out."""
    betas = [b for b in sorted(metrics) if {"test_recon", "test_kl"} <= set(metrics[b])]
    fig = go.Figure(
        go.Scatter(
            x=[metrics[b]["test_kl"] for b in betas],
            y=[metrics[b]["test_recon"] for b in betas],
            mode="lines+markers+text",
            text=[f"β = {b:g}" for b in betas],
            textposition="top right",
            marker={"size": 11},
            line={"dash": "dot", "color": "#1f77b4"},
            cliponaxis=False,
            hovertemplate="KL %{x:.2f}, reconstruction %{y:.2f} nats per image<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis_title=f"KL to the prior N(0, I), {NATS}",
        yaxis_title=plots.wrap_label(f"reconstruction ({loss.upper()}), {NATS}", 24),
        height=340,
        margin={"l": 70, "r": 60, "t": 30, "b": 50},
        font=plots.FONT,
    )
    fig.update_xaxes(rangemode="tozero")
    return fig


def beta_table(metrics: Mapping[float, Mapping[str, float]]) -> pd.DataFrame:
    """One row per run {β: test metrics}: reconstruction, KL, their sum (the negative ELBO, the
    same yardstick for every β), the objective the run minimised (reconstruction + β KL) and
    the reconstructions' PSNR."""
    rows = []
    for beta in sorted(metrics):
        m = metrics[beta]
        recon, kl = m.get("test_recon", math.nan), m.get("test_kl", math.nan)
        rows.append(
            {
                "β": f"{beta:g}",
                "recon": recon,
                "KL": kl,
                "recon + KL": recon + kl,
                "recon + β·KL": recon + beta * kl,
                "PSNR dB": m.get("test_psnr", math.nan),
            }
        )
    return pd.DataFrame(rows)


def takeaway(metrics: Mapping[float, Mapping[str, float]]) -> str | None:
    """What the runs show in numbers, from the lowest β to the highest; None with fewer than two
    runs that report both terms."""
    betas = [b for b in sorted(metrics) if {"test_recon", "test_kl"} <= set(metrics[b])]
    if len(betas) < 2:
        return None
    lo, hi = metrics[betas[0]], metrics[betas[-1]]
    text = (
        f"From β = {betas[0]:g} to β = {betas[-1]:g} the KL falls from {lo['test_kl']:.3g} to "
        f"{hi['test_kl']:.3g} {NATS}, and the reconstruction error "
        f"{'rises' if hi['test_recon'] >= lo['test_recon'] else 'falls'} from "
        f"{lo['test_recon']:.2f} to {hi['test_recon']:.2f}."
    )
    gone = [f"{b:g}" for b in betas if collapsed(metrics[b])]
    if gone:
        text += (
            f" At β = {', '.join(gone)} the code collapsed: it tells the decoder almost nothing "
            "about the image, so every reconstruction and sample is the same average image."
        )
    return text


def samples_and_reconstructions(
    model: Autoencoder, images: torch.Tensor, n_samples: int = 12, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """(n_samples decoded draws from the prior, the images followed by their reconstructions),
    float (N, C, H, W) in [0, 1]. The same seed draws the same codes for every run, so their
    samples differ only by their decoders."""
    x = to_float(images) if images.dtype == torch.uint8 else images.float()
    drawn = latent.samples(model, n_samples, seed)
    with latent.evaluating(model):
        recon = reconstruct(model, x.to(next(model.parameters()).device)).cpu()
    return drawn, torch.cat([x.cpu(), recon.clamp(0, 1)])
