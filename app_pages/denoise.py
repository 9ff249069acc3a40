"""Denoise: a trained model against classical filters, across levels, and on your own image."""

import numpy as np
import streamlit as st
import torch

from aecore import plots
from aecore.baselines import median_filter, pca_reconstruct
from aecore.corruptions import CORRUPTIONS, corrupt
from aecore.data import DATASETS
from aecore.evaluate import pca_for, reconstruct
from app_pages import _ui as ui
from app_pages import _upload as upload
from app_pages import _views as views

SWEEP_IMAGES = 300  # test images per level: a steady curve in a few seconds per level
# Test images behind the metrics at a level other than the trained one: a slider step stays
# under a second with the U-Net, and the standard error of a mean PSNR is ~0.15 dB (the methods
# differ by several dB). The same count as Compare's, so the two pages share these numbers.
LEVEL_IMAGES = 500
SWEEP_LEVELS = 6
SWEEP_SERIES = {  # method -> metric key suffix (test_psnr..., test_ssim...)
    "Autoencoder": "",
    "Corrupted input": "_noisy",
    "Median 3x3": "_median3",
    "Median 5x5": "_median5",
    "PCA": "_pca",
}

st.title("Denoise")
cfg = ui.config_sidebar()
ckpt = views.require_trained(cfg)
entry = CORRUPTIONS[cfg.corruption]
meta = entry.meta
has_level = meta["max"] > meta["min"]
cast = int if meta.get("integer") else float  # integer levels: rows, block side
data_label = DATASETS[cfg.dataset].label
# "uniform" runs saw every level from 0 up to cfg.level in training (tested at cfg.level itself).
trained = f"{cfg.level:g}" if cfg.level_sampling == "fixed" else f"0 to {cfg.level:g}"
# The sidebar's level picks the trained model; the sliders here only corrupt the test images.
# Their label and the note under them say so, so the two controls are not taken for one.
TEST_LEVEL_NOTE = (
    "Changes the test images only. The model is chosen by the sidebar's Training level (this one "
    f"was trained at {trained})."
)


def level_slider(key: str, where=st) -> float:
    """The corruption level of the test images here; starts at the level the model was trained
    at. Changing it tests the same model on other inputs."""
    label = f"Test at level: {meta['level_name']} (model trained at {trained})"
    level = ui.level_slider(where, cfg.corruption, cfg.level, label, key) or 0.0
    where.caption(TEST_LEVEL_NOTE)
    return level


def sweep_levels() -> list[float]:
    """Evenly spaced levels over the corruption's range, and the trained level among them. Level
    0 is left out: an uncorrupted input scores the metric's 100 dB cap and flattens every other
    line."""
    step = float(meta["step"])  # on the sliders' grid: 0.35, not 0.3333
    grid = np.linspace(meta["min"], meta["max"], SWEEP_LEVELS + 1)[1:]
    levels = {cast(round(round(float(x) / step) * step, 4)) for x in grid}
    if cfg.level > 0:
        levels.add(cast(cfg.level))
    return sorted(levels)


tab_test, tab_sweep, tab_upload = st.tabs(["Test images", "Severity sweep", "Your own image"])

with tab_test:
    ds = ui.dataset(cfg.dataset)
    left, mid, right = st.columns(3)
    level = level_slider("dn_level", left) if has_level else 0.0
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
        metrics, caption = ckpt.metrics, f"All {data_label} test images, at the trained level."
    else:
        metrics = ui.evaluate_at(ckpt, cfg.key(), cfg.corruption, level, LEVEL_IMAGES)
        caption = (
            f"The first {LEVEL_IMAGES:,} {data_label} test images at level {level:g}, the test "
            f"level set here (the model was trained at {trained})."
        )
    views.metrics_table(metrics, caption, corrupted=has_level and level > 0)

with tab_sweep:
    if not has_level:
        st.info("This model was trained without corruption; there is no level to sweep.")
    else:
        levels = sweep_levels()
        st.write(
            f"The same model (trained at {meta['level_name']} = {trained}) tested at "
            f"{len(levels)} levels, the trained one among them: PSNR and SSIM of the model and "
            f"the baselines on the first {SWEEP_IMAGES} {data_label} test images. How far does "
            "denoising carry beyond the level it was trained at?"
        )
        st.caption(
            "Test levels: " + ", ".join(f"{x:g}" for x in levels) + ". To sweep another model, "
            "change the sidebar's Training level (it chooses the model)."
        )
        if st.toggle("Run the sweep", key=f"dn_sweep_{cfg.key()}"):
            results = [
                ui.evaluate_at(ckpt, cfg.key(), cfg.corruption, x, SWEEP_IMAGES) for x in levels
            ]

            def series(metric: str) -> dict[str, list[float]]:
                return {
                    name: [r[f"test_{metric}{suffix}"] for r in results]
                    for name, suffix in SWEEP_SERIES.items()
                    if f"test_{metric}{suffix}" in results[0]
                }

            fig = plots.severity_sweep(
                levels,
                series("psnr"),
                meta["level_name"],
                cfg.level,
                series("ssim"),
                trained_text=f"trained at {trained}",
            )
            st.plotly_chart(fig, key="dn_sweep_chart")

with tab_upload:
    st.write(
        f"{upload.describe(ckpt.model.shape, cfg.dataset)} It is then corrupted as above and "
        f"reconstructed. Up to 5 MB: {', '.join(upload.FORMATS)}."
    )
    file = upload.uploader("Image", key="dn_upload")
    if file is not None:
        try:
            image = upload.image_from_upload(file.getvalue(), ckpt.model.shape, cfg.dataset)
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
        up_level = level_slider("dn_up_level", right) if has_level else 0.0
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
