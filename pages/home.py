"""Home: what an autoencoder is, and an instant demo from any saved run."""

import streamlit as st

from aecore import plots
from aecore.corruptions import CORRUPTIONS
from aecore.evaluate import reconstruct
from pages import _ui as ui

ui.ensure_router()
st.title("Autoencoder lab")
st.markdown(
    "An **autoencoder** is a network trained to give back its input. An *encoder* squeezes each "
    "image into a short **code**, and a *decoder* rebuilds the image from the code alone. Since "
    "the code is too small to hold every pixel, the network has to learn what images of this "
    "kind have in common. Feed it a **corrupted** image while asking for the **clean** one and "
    "it learns to remove noise: a *denoising* autoencoder."
)

runs = [(path, ui.load_run(path)) for path in ui.saved_run_paths()]
runs = [(path, ckpt) for path, ckpt in runs if ckpt is not None]
st.subheader("Try it")
if not runs:
    st.info(
        "No trained model yet. Train the default one: about a minute on a laptop CPU, "
        "and it then shows up here.",
        icon=":material/model_training:",
    )
    ui.page_link("pages/train.py", "Open Train", icon=":material/play_arrow:")
    st.stop()

# Denoisers first: they make the better demo.
runs.sort(key=lambda pc: pc[1].config.corruption == "none")
labels = {ui.run_label(ckpt.config): ckpt for _, ckpt in runs}
left, right = st.columns([1, 1], gap="large")
label = left.selectbox("Trained model", list(labels), key="home_run")
ckpt = labels[label]
cfg = ckpt.config
meta = CORRUPTIONS[cfg.corruption].meta
if meta["max"] > meta["min"]:
    cast = int if meta.get("integer") else float
    level = right.slider(
        f"{CORRUPTIONS[cfg.corruption].label}: {meta['level_name']} (trained at {cfg.level:g})",
        cast(meta["min"]),
        cast(meta["max"]),
        cast(cfg.level),
        step=cast(meta["step"]),
        key=f"home_level_{cfg.corruption}",
    )
else:
    level = 0.0
    right.write("This model was trained without corruption: it only compresses.")

clean, noisy = ui.test_images(cfg, 10, level=level)
rows = {"Original": clean, "Corrupted": noisy, "Reconstructed": reconstruct(ckpt.model, noisy)}
st.plotly_chart(plots.image_grid(rows), width="content", key="home_grid")
if "test_psnr" in ckpt.metrics:
    before = ckpt.metrics.get("test_psnr_noisy")
    st.caption(
        f"On the whole test set at the trained level: {ckpt.metrics['test_psnr']:.2f} dB PSNR "
        "after the autoencoder"
        + (f", {before:.2f} dB before" if cfg.corruption != "none" and before else "")
        + ". Higher is better."
    )

st.subheader("Where next")
cols = st.columns(3)
with cols[0]:
    ui.page_link("pages/train.py", "Train your own", icon=":material/model_training:")
    ui.page_link(
        "pages/denoise.py", "Denoise, and upload an image", icon=":material/auto_fix_high:"
    )
with cols[1]:
    ui.page_link("pages/latent.py", "Explore the latent space", icon=":material/scatter_plot:")
    ui.page_link("pages/compare.py", "Compare runs", icon=":material/compare:")
with cols[2]:
    ui.page_link("pages/learn.py", "Seven kinds of autoencoder", icon=":material/school:")
