"""Denoise: a trained model against classical filters, across levels, and on your own image."""

import numpy as np
import streamlit as st
import torch

from aecore import plots
from aecore.baselines import median_filter, pca_reconstruct
from aecore.corruptions import CORRUPTIONS, corrupt
from aecore.evaluate import pca_for, reconstruct
from pages import _ui as ui
from pages import _upload as upload
from pages import _views as views

SWEEP_IMAGES = 300  # test images per level: a steady curve in a few seconds per level
SWEEP_LEVELS = 6
SWEEP_SERIES = {
    "Autoencoder": "test_psnr",
    "Corrupted input": "test_psnr_noisy",
    "Median 3x3": "test_psnr_median3",
    "Median 5x5": "test_psnr_median5",
    "PCA": "test_psnr_pca",
}

ui.ensure_router()
st.title("Denoise")
cfg = ui.config_sidebar()
ckpt = views.require_trained(cfg)
entry = CORRUPTIONS[cfg.corruption]
meta = entry.meta
has_level = meta["max"] > meta["min"]
cast = int if meta.get("integer") else float  # integer levels: rows, block side


def level_slider(key: str, where=st) -> float:
    """The corruption level to apply here; starts at the level the model was trained at."""
    label = f"{entry.label}: {meta['level_name']} (trained at {cfg.level:g})"
    return ui.level_slider(where, cfg.corruption, cfg.level, label, key) or 0.0


tab_test, tab_sweep, tab_upload = st.tabs(["Test images", "Severity sweep", "Your own image"])

with tab_test:
    ds = ui.dataset(cfg.dataset)
    left, mid, right = st.columns(3)
    level = level_slider("dn_level", left)
    n = mid.slider("Images", 4, 16, 10, key="dn_n")
    start = right.number_input("First test image", 0, len(ds.test_images) - n, 0, key="dn_start")
    clean, noisy = ui.test_images(cfg, n, start, level)
    rows = {"Original": clean, "Corrupted": noisy, "Autoencoder": reconstruct(ckpt.model, noisy)}
    rows["Median 3x3"] = median_filter(noisy, 3)
    if ckpt.model.latent:  # PCA with as many components as the code, as in the metrics
        rows[f"PCA ({ckpt.model.latent})"] = pca_reconstruct(pca_for(ds, ckpt.model.latent), noisy)
    st.plotly_chart(plots.image_grid(rows), width="content", key="dn_grid")
    st.download_button(
        "Download this grid (PNG)",
        plots.grid_png(rows),
        file_name=f"denoise-{cfg.key()}-{level:g}.png",
        mime="image/png",
        on_click="ignore",
        icon=":material/download:",
    )
    if level == cfg.level:
        metrics, caption = ckpt.metrics, f"All {cfg.dataset} test images, at the trained level."
    else:
        metrics = ui.evaluate_at(ckpt, cfg.key(), cfg.corruption, level, 1000)
        caption = f"The first 1,000 {cfg.dataset} test images at level {level:g}."
    views.metrics_table(metrics, caption, corrupted=has_level and level > 0)

with tab_sweep:
    if not has_level:
        st.info("This model was trained without corruption; there is no level to sweep.")
    else:
        st.write(
            f"Test PSNR of the model and the baselines as the {meta['level_name']} grows, on "
            f"the first {SWEEP_IMAGES} test images. How far does denoising carry beyond the "
            "level it was trained at?"
        )
        # Level 0 left out: an uncorrupted input scores the metric's 100 dB cap and flattens
        # every other line.
        grid = np.linspace(meta["min"], meta["max"], SWEEP_LEVELS + 1)[1:]
        levels = sorted({cast(round(float(x), 4)) for x in grid})
        if st.toggle("Run the sweep", key=f"dn_sweep_{cfg.key()}"):
            results = [
                ui.evaluate_at(ckpt, cfg.key(), cfg.corruption, x, SWEEP_IMAGES) for x in levels
            ]
            series = {
                name: [r[k] for r in results] for name, k in SWEEP_SERIES.items() if k in results[0]
            }
            fig = plots.severity_sweep(levels, series, meta["level_name"], cfg.level)
            st.plotly_chart(fig, key="dn_sweep_chart")

with tab_upload:
    c, h, w = ckpt.model.shape
    st.write(
        f"Your image is cropped to the model's {w}x{h} aspect, resized, made "
        f"{'grayscale' if c == 1 else 'RGB'}, corrupted as above and reconstructed. "
        f"Up to 5 MB: {', '.join(upload.FORMATS)}."
    )
    file = st.file_uploader("Image", type=list(upload.FORMATS), key="dn_upload")
    if file is not None:
        try:
            image = upload.image_from_upload(file.getvalue(), ckpt.model.shape)
        except ValueError as err:
            st.error(str(err))
            st.stop()
        left, right = st.columns(2)
        invert = left.toggle(
            "Invert (dark strokes on light paper)",
            value=upload.looks_light(image),
            key="dn_invert",
            help="The training images are light on dark; a photo of ink on paper is the reverse.",
        )
        up_level = level_slider("dn_up_level", right)
        x = 1.0 - image if invert else image
        gen = torch.Generator().manual_seed(0)
        noisy_x = corrupt(cfg.corruption, x, up_level, gen) if has_level else x
        up_rows = {"Your image": torch.cat([x, noisy_x, reconstruct(ckpt.model, noisy_x)])}
        columns = ["yours", "corrupted", "autoencoder"]
        fig = plots.image_grid(up_rows, cell_px=160, column_labels=columns)
        st.plotly_chart(fig, width="content", key="up_grid")
        st.download_button(
            "Download (PNG)",
            plots.grid_png(up_rows),
            file_name="my-image-denoised.png",
            mime="image/png",
            on_click="ignore",
            icon=":material/download:",
        )
