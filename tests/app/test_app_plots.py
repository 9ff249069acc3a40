"""aecore/plots.py: figures the pages draw (no Streamlit involved)."""

import io

import numpy as np
import torch
from PIL import Image

from aecore import plots
from aecore.train import EpochStats


def rows(n=5, c=1, side=28):
    g = torch.Generator().manual_seed(0)
    return {name: torch.rand(n, c, side, side, generator=g) for name in ("A", "Bb", "Ccc")}


def test_image_grid_labels_each_row_and_hides_the_rest():
    fig = plots.image_grid(rows())
    assert list(fig.layout.yaxis.ticktext) == ["A", "Bb", "Ccc"]
    assert fig.layout.xaxis.showticklabels is False
    assert fig.layout.height > 3 * 28  # readable: more than one screen pixel per image pixel


def test_grid_png_is_a_png_of_every_row():
    png = plots.grid_png(rows(n=4, c=3, side=8))
    img = Image.open(io.BytesIO(png))
    pad = plots.PAD
    assert img.size == (4 * (8 + pad) + pad, 3 * (8 + pad) + pad)


def stats(epoch, vae=False):
    kl = 1.0 / epoch if vae else None
    return EpochStats(epoch, 3, 1 / epoch, 1 / epoch, 1 / epoch, 1 / epoch, 10.0, 0.1, kl, kl)


def test_loss_curves_are_log_scaled_with_units():
    fig = plots.loss_curves([stats(e) for e in (1, 2, 3)], "mse")
    assert fig.layout.yaxis.type == "log"
    assert fig.layout.yaxis.title.text == "MSE per pixel"
    assert [t.name for t in fig.data] == ["training", "validation"]


def test_a_vae_shows_reconstruction_and_kl_apart():
    fig = plots.loss_curves([stats(e, vae=True) for e in (1, 2)], "bce")
    assert "nats per image" in fig.layout.yaxis.title.text
    assert {t.name.split(",")[0] for t in fig.data} == {"reconstruction", "KL"}


def test_latent_scatter_maps_points_back_to_their_index():
    labels = np.array([0, 1, 0, 2])
    fig = plots.latent_scatter(np.zeros((4, 2)), labels, ["a", "b", "c"], "pca")
    by_class = {t.name: list(t.customdata) for t in fig.data}
    assert by_class == {"a": [0, 2], "b": [1], "c": [3]}


def test_metrics_table_has_one_row_per_method_present():
    metrics = {"test_psnr": 20.0, "test_ssim": 0.8, "test_mse": 0.01, "test_psnr_noisy": 10.0}
    table = plots.metrics_table(metrics)
    assert list(table.index) == ["Autoencoder", "Corrupted input"]


def test_latent_sweep_has_a_log_x_axis_labelled_axes_and_gaps():
    series = {"dense AE": [0.06, None, 0.05, 0.01], "PCA": [0.06] * 4}
    fig = plots.latent_sweep([1, 2, 8, 32], series)
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.tickvals) == [1, 2, 8, 32]
    assert "code size" in fig.layout.xaxis.title.text and "MSE" in fig.layout.yaxis.title.text
    assert [t.name for t in fig.data] == ["dense AE", "PCA"] and fig.data[0].y[1] is None


def test_metric_bars_takes_an_axis_title_and_precision():
    fig = plots.metric_bars({"clean": 98.25, "A": 90.0}, "accuracy (%)", x_title="input", digits=1)
    assert fig.layout.xaxis.title.text == "input" and list(fig.data[0].text) == ["98.2", "90.0"]
