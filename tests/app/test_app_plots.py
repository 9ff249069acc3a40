"""aecore/plots.py: figures the pages draw (no Streamlit involved)."""

import io

import numpy as np
import torch
from PIL import Image

from aecore import plots
from aecore.history import EpochStats


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


def vae_stats(epoch):
    recon, kl = 100.0 - 5 * epoch, 20.0 + epoch  # nats per image, like MNIST with BCE
    return EpochStats(
        epoch, 3, recon + kl, recon, recon + kl + 2, recon + 2, 15.0, 0.1, kl, kl, None, None
    )


def test_a_vae_shows_its_total_as_reconstruction_plus_kl():
    # Changed on purpose: the total (negative ELBO) is drawn too, with its two parts.
    fig = plots.loss_curves([vae_stats(e) for e in (1, 2, 3)], "bce")
    assert "nats per image" in fig.layout.yaxis.title.text
    names = {t.name.split(",")[0] for t in fig.data}
    assert names == {"total (negative ELBO)", "reconstruction (BCE)", "KL"}
    # Training bands: reconstruction from 0, then up to the total (the band between is the KL).
    fills = {t.name: t.fill for t in fig.data if t.fill}
    assert fills == {
        "reconstruction (BCE), training": "tozeroy",
        "total (negative ELBO), training": "tonexty",
    }
    total = next(t for t in fig.data if t.name == "total (negative ELBO), training")
    recon = next(t for t in fig.data if t.name == "reconstruction (BCE), training")
    kl = next(t for t in fig.data if t.name == "KL, training")
    assert [r + k for r, k in zip(recon.y, kl.y, strict=True)] == list(total.y)


def test_a_vae_chart_has_linear_axes_from_zero_and_kl_on_its_own_scale():
    fig = plots.loss_curves([vae_stats(e) for e in (1, 2, 3)], "bce")
    assert fig.layout.yaxis.type != "log" and fig.layout.yaxis2.type != "log"
    assert fig.layout.yaxis.range[0] == 0 and fig.layout.yaxis2.range[0] == 0
    assert fig.layout.yaxis.range[1] >= 95 + 23 + 2  # the largest total fits
    assert fig.layout.yaxis2.range[1] < 40  # KL gets its own, tighter scale
    on_second = {t.name for t in fig.data if t.yaxis == "y2"}
    assert on_second == {"KL, training", "KL, validation"}
    assert "KL" in fig.layout.yaxis2.title.text


def test_code_heatmap_has_one_fixed_scale_with_zero_white():
    sparse = np.array([[0.0, 0.5], [2.0, np.nan]])
    fig = plots.code_heatmap(sparse, value_range=(0.0, 4.0))
    (trace,) = fig.data
    assert (trace.zmin, trace.zmax) == (0.0, 4.0)  # the range given, not this code's own
    assert trace.colorscale[0][1] == "#ffffff"  # 0 is white
    assert "0 = white" in trace.colorbar.title.text
    assert np.isnan(trace.z[1][1])  # no unit: drawn as the gray background
    other = plots.code_heatmap(np.array([[3.0, 0.0]]), value_range=(0.0, 4.0))
    assert (other.data[0].zmin, other.data[0].zmax) == (0.0, 4.0)  # same scale for every image


def test_code_heatmap_centres_signed_codes_on_white_zero():
    fig = plots.code_heatmap(np.array([[-1.0, 0.2]]), value_range=(-3.0, 2.0))
    (trace,) = fig.data
    assert (trace.zmin, trace.zmax) == (-3.0, 3.0)
    scale = dict((pos, colour) for pos, colour in trace.colorscale)
    assert scale[0.5] == "#ffffff"
    assert 0.0 in list(trace.colorbar.tickvals)


def test_severity_sweep_draws_psnr_and_ssim_with_the_trained_level_marked():
    psnr = {"Autoencoder": [20.0, 18.0, 15.0], "Median 3x3": [17.0, 14.0, 11.0]}
    ssim = {"Autoencoder": [0.9, 0.8, 0.6], "Median 3x3": [0.8, 0.6, 0.4]}
    fig = plots.severity_sweep([0.1, 0.3, 0.5], psnr, "probability p", 0.3, ssim)
    assert len(fig.data) == 4
    assert [t.name for t in fig.data if t.showlegend is not False] == ["Autoencoder", "Median 3x3"]
    assert {t.xaxis for t in fig.data} == {"x", "x2"}
    assert "SSIM" in fig.layout.yaxis2.title.text and "PSNR" in fig.layout.yaxis.title.text
    marks = [s for s in fig.layout.shapes if s.x0 == 0.3]
    assert len(marks) == 2  # one dotted line per panel
    assert "trained at 0.3" in [a.text for a in fig.layout.annotations]


def test_long_row_names_wrap_and_fit_the_margin():
    name = "A: U-Net-style conv AE, skips + residual (16-32-32 | 32-16)"
    g = torch.Generator().manual_seed(0)
    fig = plots.image_grid(
        {
            "Original": torch.rand(3, 1, 28, 28, generator=g),
            name: torch.rand(3, 1, 28, 28, generator=g),
        }
    )
    label = fig.layout.yaxis.ticktext[1]
    assert label.replace("<br>", " ") == name  # whole, only broken between words
    assert "<br>" in label
    longest = max(label.split("<br>"), key=len)
    assert fig.layout.margin.l >= plots.text_px(longest)
    assert plots.wrap_label("Original") == "Original"


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


def test_code_heatmap_marks_saturated_ends():
    fig = plots.code_heatmap(np.array([[-5.0, 0.1]]), value_range=(-2.0, 2.0), saturate=True)
    assert list(fig.data[0].colorbar.ticktext) == ["≤ -2", "0", "≥ 2"]
