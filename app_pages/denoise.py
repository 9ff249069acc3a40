"""Denoise: a trained model against classical filters, across levels, and on your own image."""

import streamlit as st

from aecore import denoise, plots
from aecore.corruptions import CORRUPTIONS, has_level
from aecore.data import DATASETS
from app_pages import _ui as ui
from app_pages import _upload as upload
from app_pages import _views as views

SWEEP_IMAGES = 300  # test images per level: a steady curve in a few seconds per level
# Test images behind the metrics at a level other than the trained one: a slider step stays
# under a second with the U-Net, and the standard error of a mean PSNR is ~0.15 dB (the methods
# differ by several dB). The same count as Compare's, so the two pages share these numbers.
LEVEL_IMAGES = 500

st.title("Denoise")
cfg = ui.config_sidebar()
ckpt = views.require_trained(cfg)
meta = CORRUPTIONS[cfg.corruption].meta
data_label = DATASETS[cfg.dataset].label
# "uniform" runs saw every level from 0 up to cfg.level in training (tested at cfg.level itself).
trained = f"{cfg.level:g}" if cfg.level_sampling == "fixed" else f"0 to {cfg.level:g}"
# The sidebar's level picks the trained model; the sliders here only corrupt the test images.
# Their label and the note under them say so, so the two controls are not taken for one.
TEST_LEVEL_NOTE = (
    "Changes the test images only. The model is chosen by the sidebar's Training level (this one "
    f"was trained at {trained})."
)

TEST_LEVEL_LABEL = f"Test at level: {meta['level_name']} (model trained at {trained})"


def picked_level(key: str, where) -> float:
    """The corruption level of the test images here (0 without a level); starts at the level
    the model was trained at. Changing it tests the same model on other inputs."""
    level = ui.level_slider(
        where, cfg.corruption, TEST_LEVEL_LABEL, key, start=cfg.level, note=TEST_LEVEL_NOTE
    )
    return 0.0 if level is None else level


tab_test, tab_sweep, tab_upload = st.tabs(["Test images", "Severity sweep", "Your own image"])

with tab_test:
    ds = ui.dataset(cfg.dataset)
    left, mid, right = st.columns(3)
    level = picked_level("dn_level", left)
    n = mid.slider("Images", 4, 16, 10, key="dn_n")
    start = right.number_input("First test image", 0, len(ds.test_images) - n, 0, key="dn_start")
    clean, noisy = ui.test_images(cfg, n, start, level)
    limit = None if level == cfg.level else LEVEL_IMAGES  # as the metrics below
    best = ui.strongest_classical(ds, cfg.corruption, level, limit) if level > 0 else None
    rows = denoise.comparison_rows(ckpt.model, ds, clean, noisy, best)
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
        metrics = ui.evaluate_at(ckpt, cfg.corruption, level, LEVEL_IMAGES)
        caption = (
            f"The first {LEVEL_IMAGES:,} {data_label} test images at level {level:g}, the test "
            f"level set here (the model was trained at {trained})."
        )
    views.metrics_table(metrics, caption, has_level(cfg.corruption) and level > 0, best)

with tab_sweep:
    if not has_level(cfg.corruption):
        st.info("This model was trained without corruption; there is no level to sweep.")
    else:
        levels = denoise.sweep_levels(cfg.corruption, cfg.level)
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
                ui.evaluate_at(ckpt, cfg.corruption, x, SWEEP_IMAGES)
                | ui.strongest_classical(ds, cfg.corruption, x, SWEEP_IMAGES).metrics()
                for x in levels
            ]
            fig = plots.severity_sweep(
                levels,
                denoise.sweep_series(results, "psnr"),
                meta["level_name"],
                cfg.level,
                denoise.sweep_series(results, "ssim"),
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
        up_level = picked_level("dn_up_level", right)
        row = denoise.upload_row(ckpt.model, image, cfg.corruption, up_level, invert)
        up_rows = {"Your image": row}
        fig = plots.image_grid(up_rows, cell_px=160, column_labels=denoise.UPLOAD_COLUMNS)
        st.plotly_chart(fig, width="content", key="up_grid")
        st.download_button(
            "Download (PNG)",
            plots.grid_png(up_rows),
            file_name="my-image-denoised.png",
            mime="image/png",
            on_click="ignore",
            icon=":material/download:",
        )
