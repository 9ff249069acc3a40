"""Anomaly detection with an autoencoder: train it on normal images only, then flag the images it
reconstructs badly (the "Anomaly detection" page; TensorFlow's autoencoder tutorial does the same
with heartbeats).

Two kinds of case, both from the Learn page's undercomplete preset (a dense AE without noise):

- class subset: trained on the first half of a dataset's classes (TrainConfig.classes); normal =
  the test images of those classes, anomalous = the test images of the classes it never saw.
- dataset against dataset: trained on a whole dataset; normal = its test set, anomalous = the
  test set of another registered dataset of the same image shape (MNIST against Fashion-MNIST).

The score of an image is the mean squared error per pixel between the clean test image and its
reconstruction. Not BCE: per pixel, BCE is smallest (the pixel's own entropy) at a perfect
reconstruction, and that minimum is zero only for pure black or white pixels, so BCE would score
images with more gray (thick strokes, textured clothes) as anomalous even when they are
reconstructed perfectly. MSE is 0 for a perfect reconstruction: it measures the miss alone.

Measured on the full test sets (undercomplete preset, trained by the app on this 2-core CPU in
1.7 s for digits and 2.9 s for MNIST's classes 0-4):
digits, classes 0-4 normal, AUC 0.90; MNIST, classes 0-4 normal, AUC 0.81; the bundled MNIST
preset (all classes) against Fashion-MNIST, AUC 0.98.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import torch
from sklearn.metrics import roc_auc_score, roc_curve

from aecore.config import TrainConfig
from aecore.data import DATASETS, ImageDataset, to_float
from aecore.gpu import model_device, to_model
from aecore.latent import evaluating
from aecore.losses import inference_batch
from aecore.models import Autoencoder
from aecore.plots import FONT
from aecore.presets import preset_config

PRESET_KIND = "undercomplete"  # a dense AE, no corruption: it learns to copy the normal images
FALSE_ALARMS = 0.05  # the threshold starts where 5% of normal images are flagged
NORMAL_COLOUR = "#1f77b4"  # blue and orange: apart for every common kind of colour blindness
ANOMALY_COLOUR = "#ff7f0e"
BINS = (20, 60)  # fewest and most histogram bins: about 2 per sqrt(images) of the smaller set
TAIL = 0.995  # the histogram ends at this quantile of all scores; the last bar holds the rest


@dataclass(frozen=True)
class AnomalyCase:
    """One experiment: the run to train, and where its anomalies come from: the test images of
    the classes the run left out (other == ""), or the test set of the dataset `other`."""

    title: str
    config: TrainConfig
    other: str = ""

    @property
    def labels(self) -> tuple[str, str]:
        """Legend names of the normal and the anomalous set."""
        if self.other:
            return (
                f"normal ({short_name(self.config.dataset)})",
                f"anomalous ({short_name(self.other)})",
            )
        normal, left_out = class_sets(self.config)
        return f"normal (classes {span(normal)})", f"anomalous (classes {span(left_out)})"

    def key(self) -> str:
        """Names the case in caches and widget keys."""
        return f"{self.config.key()}-{self.other or 'classes'}"


def short_name(dataset: str) -> str:
    """A label without its parenthesis: "Digits 8x8 (bundled, offline)" -> "Digits 8x8"."""
    return re.sub(r"\s*\(.*?\)", "", DATASETS[dataset].label).strip()


def span(classes: Sequence[int]) -> str:
    """[0, 1, 2, 3, 4] -> "0-4"; [0, 2, 3] -> "0, 2-3"."""
    parts: list[str] = []
    for c in sorted(classes):
        if parts and c == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{c}"
        else:
            parts.append(str(c))
    return ", ".join(parts)


def class_sets(cfg: TrainConfig) -> tuple[list[int], list[int]]:
    """(classes the run trained on, classes it never saw)."""
    every = range(DATASETS[cfg.dataset].meta["num_classes"])
    trained = [int(c) for c in cfg.classes.split(",")] if cfg.classes else list(every)
    return trained, [c for c in every if c not in trained]


def partner_datasets(dataset: str) -> list[str]:
    """Other registered datasets whose images have the same shape: anomalies a model of
    `dataset` can score without resizing."""
    shape = tuple(DATASETS[dataset].meta["shape"])
    return [
        n for n in DATASETS.names() if n != dataset and tuple(DATASETS[n].meta["shape"]) == shape
    ]


def case_configs(dataset: str) -> list[AnomalyCase]:
    """The cases offered for `dataset`: its first half of classes against the other half, then
    the whole dataset against each partner dataset."""
    base = preset_config(PRESET_KIND, dataset)
    half = DATASETS[dataset].meta["num_classes"] // 2
    subset = dataclasses.replace(base, classes=",".join(str(c) for c in range(half)))
    name = short_name(dataset)
    normal, left_out = class_sets(subset)
    cases = [
        AnomalyCase(f"{name}: classes {span(normal)} normal, {span(left_out)} anomalous", subset)
    ]
    for other in partner_datasets(dataset):
        title = f"{name} normal, {short_name(other)} anomalous"
        cases.append(AnomalyCase(title, base, other))
    return cases


def split_test_set(
    case: AnomalyCase, ds: ImageDataset, other: ImageDataset | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(normal, anomalous) uint8 test images (N, C, H, W) of the case; `other` is the partner
    dataset of a dataset-against-dataset case."""
    if case.other:
        if other is None or other.name != case.other:
            raise ValueError(f"this case needs the {case.other} dataset's test images")
        return ds.test_images, other.test_images
    normal = torch.isin(ds.test_labels, torch.tensor(class_sets(case.config)[0]))
    return ds.test_images[normal], ds.test_images[~normal]


def reconstruction_errors(
    model: Autoencoder, images: torch.Tensor, batch: int | None = None
) -> np.ndarray:
    """Each image's mean squared error per pixel against its reconstruction, (N,) float64;
    computed on the model's device, batch by batch (inference_batch's size unless given), in
    eval mode."""
    batch = batch or inference_batch(model, model_device(model))
    errors = []
    with evaluating(model):
        for chunk in images.split(batch):
            x = to_model(model, chunk)
            x = to_float(x) if x.dtype == torch.uint8 else x.float()
            errors.append((model.reconstruct(x) - x).square().flatten(1).mean(1).cpu())
    return torch.cat(errors).double().numpy() if errors else np.zeros(0)


# -- thresholds, ROC ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Confusion:
    """An image is flagged anomalous when its score is above the threshold."""

    tp: int  # anomalies flagged
    fn: int  # anomalies missed
    fp: int  # normal images flagged: false alarms
    tn: int  # normal images passed

    @property
    def recall(self) -> float:
        """Share of the anomalies flagged (detection rate, true-positive rate)."""
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def false_alarm_rate(self) -> float:
        """Share of the normal images flagged (false-positive rate)."""
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def precision(self) -> float:
        """Share of the flagged images that are anomalies (nan when none is flagged)."""
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def accuracy(self) -> float:
        return _ratio(self.tp + self.tn, self.tp + self.tn + self.fp + self.fn)


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else float("nan")


def confusion(normal: np.ndarray, anomalous: np.ndarray, threshold: float) -> Confusion:
    """The counts at `threshold` (scores above it are flagged)."""
    tp = int((np.asarray(anomalous) > threshold).sum())
    fp = int((np.asarray(normal) > threshold).sum())
    return Confusion(tp=tp, fn=len(anomalous) - tp, fp=fp, tn=len(normal) - fp)


def _check_sets(normal: np.ndarray, anomalous: np.ndarray) -> None:
    if len(normal) == 0 or len(anomalous) == 0:
        raise ValueError("both the normal and the anomalous set need at least one image")


def roc(normal: np.ndarray, anomalous: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(false-alarm rates, detection rates, AUC) over every threshold; anomalies are positive.
    The AUC is the chance that a random anomaly scores above a random normal image."""
    _check_sets(normal, anomalous)
    truth = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    scores = np.r_[normal, anomalous]
    fpr, tpr, _ = roc_curve(truth, scores)
    return fpr, tpr, float(roc_auc_score(truth, scores))


def default_threshold(normal: np.ndarray, false_alarms: float = FALSE_ALARMS) -> float:
    """The score that `false_alarms` of the normal images exceed."""
    return float(np.quantile(normal, 1.0 - false_alarms))


def slider_range(normal: np.ndarray, anomalous: np.ndarray, steps: int = 200) -> tuple:
    """(low, high, step) for a threshold slider: from 0 to the TAIL quantile of all scores (a
    few huge errors would squeeze the rest into a corner), `steps` steps."""
    top = float(np.quantile(np.r_[normal, anomalous], TAIL))
    top = max(top, default_threshold(normal) * 1.05, 1e-6)
    step = float(f"{top / steps:.1g}")  # a round step, so the values shown stay short
    return 0.0, step * (int(top / step) + 1), step


def extremes(normal: np.ndarray, anomalous: np.ndarray, k: int) -> tuple[list, list]:
    """(the k highest, the k lowest) scores of both sets together, each as (set, index in that
    set, score); set is "normal" or "anomalous"."""
    every = [("normal", i, float(s)) for i, s in enumerate(normal)]
    every += [("anomalous", i, float(s)) for i, s in enumerate(anomalous)]
    ranked = sorted(every, key=lambda item: item[2])
    return ranked[::-1][:k], ranked[:k]


# -- figures and tables --------------------------------------------------------------------------


def histograms(
    normal: np.ndarray, anomalous: np.ndarray, labels: tuple[str, str], threshold: float
) -> go.Figure:
    """Both sets' scores as overlaid histograms on the same bins (percent of each set, since the
    sets differ in size), the threshold as a dashed line."""
    _, top, _ = slider_range(normal, anomalous)
    bins = int(np.clip(2 * np.sqrt(min(len(normal), len(anomalous))), *BINS))
    edges = np.linspace(0.0, top, bins + 1)
    fig = go.Figure()
    for scores, name, colour in (
        (normal, labels[0], NORMAL_COLOUR),
        (anomalous, labels[1], ANOMALY_COLOUR),
    ):
        counts, _ = np.histogram(np.minimum(scores, top), edges)  # the tail in the last bar
        fig.add_bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=100.0 * counts / max(1, len(scores)),
            width=edges[1] - edges[0],
            name=name,
            marker={"color": colour, "line": {"width": 0}},
            opacity=0.6,
            hovertemplate="error %{x:.4f}: %{y:.1f}% of the set<extra>" + name + "</extra>",
        )
    fig.add_vline(
        x=threshold,
        line={"color": "#222222", "dash": "dash", "width": 2},
        annotation_text=f"threshold {threshold:.4f}",
        annotation_position="top right",
    )
    fig.update_layout(
        barmode="overlay",
        xaxis_title="reconstruction error (MSE per pixel)",
        yaxis_title="% of its set",
        legend={"orientation": "h", "yanchor": "bottom", "y": 1.08, "x": 0},
        height=360,
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        font=FONT,
    )
    return fig


def roc_figure(fpr: np.ndarray, tpr: np.ndarray, auc: float, at: Confusion) -> go.Figure:
    """The ROC curve, chance as a dotted diagonal, the current threshold as a marked point."""
    fig = go.Figure()
    fig.add_scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "#9e9e9e"}
    )
    fig.add_scatter(
        x=fpr, y=tpr, mode="lines", name="ROC", line={"color": NORMAL_COLOUR, "width": 3}
    )
    fig.add_scatter(
        x=[at.false_alarm_rate],
        y=[at.recall],
        mode="markers",
        name="threshold",
        marker={"color": ANOMALY_COLOUR, "size": 14, "line": {"color": "#222222", "width": 1}},
    )
    unit = {"range": [-0.02, 1.02], "constrain": "domain"}
    fig.update_xaxes(title_text="false-alarm rate (normal flagged)", **unit)
    fig.update_yaxes(title_text="detection rate (anomalies flagged)", scaleanchor="x", **unit)
    fig.update_layout(
        title=f"ROC curve, AUC = {auc:.3f}",
        showlegend=False,
        height=360,
        margin={"l": 60, "r": 10, "t": 50, "b": 50},
        font=FONT,
    )
    return fig


def confusion_table(c: Confusion) -> pd.DataFrame:
    """Rows: what an image is; columns: what the threshold calls it. Short names, so that the
    table fits a narrow column whole."""
    counts = {"passed": [c.tn, c.fn], "flagged": [c.fp, c.tp]}
    return pd.DataFrame(counts, index=["normal", "anomalous"])


def rates_text(c: Confusion) -> str:
    """The rates a threshold gives, as a Markdown list that says what each one means (it wraps
    in a narrow column, where a table would cut its last column off)."""
    rows = [
        (c.recall, "of the anomalies are flagged", "detection rate, recall"),
        (c.false_alarm_rate, "of the normal images are flagged", "false-alarm rate"),
        (c.precision, "of the flagged images are anomalies", "precision"),
        (c.accuracy, "of all images are called right", "accuracy"),
    ]
    return "\n".join(f"- **{_percent(v)}** {text} ({name})" for v, text, name in rows)


def _percent(value: float) -> str:
    return "n/a (nothing flagged)" if np.isnan(value) else f"{100 * value:.1f}%"
