"""Draw a digit: a drawing made into the dataset's kind of image, corrupted, reconstructed and,
for a 2-unit code, placed among the codes of the test images."""

import streamlit as st
import torch

from aecore import drawing, latent
from aecore.corruptions import CORRUPTIONS, corrupt, has_level
from aecore.evaluate import reconstruct
from aecore.explore_plots import plane_figure
from aecore.plots import image_grid
from app_pages import _explore as explore
from app_pages import _ui as ui

TEST_POINTS = 1000

st.title("Draw a digit")
st.caption(
    "Draw with the mouse (or a finger). The drawing is made into the dataset's kind of image "
    "the way the dataset itself was made, then corrupted and given to the model."
)
ckpt = explore.pick_run(
    "draw",
    two_d_only=False,
    dataset_ok=drawing.layout_of,
    refusal="Drawing is for the gray digit and clothing sets (Digits 8x8, MNIST, "
    "Fashion-MNIST); the sidebar's model is for {label}. Pick a bundled model or another "
    "dataset in the sidebar.",
)
cfg = ckpt.config

left, right = st.columns(2)  # the canvas needs half the width at 1024 px (_explore.CANVAS_PX)
with left:
    corruption = st.selectbox(
        "Corruption",
        CORRUPTIONS.names(),
        index=CORRUPTIONS.names().index(cfg.corruption),
        format_func=lambda name: CORRUPTIONS[name].label,
        key="draw_corruption",
    )
    default = CORRUPTIONS[corruption].meta["default"]
    level = ui.level_slider(
        st,
        corruption,
        f"Level: {CORRUPTIONS[corruption].meta['level_name']}",
        key=f"draw_level_{corruption}",
        start=cfg.level if corruption == cfg.corruption else default,
    )
    # The canvas's toolbar floats over the 32 px above it: room for it, and the caption below.
    st.space(32)
    pixels = explore.canvas_pixels("draw_canvas")
    st.caption("Undo, redo and clear are in the toolbar above the canvas (under the pointer).")

with right:
    try:
        if pixels is None:
            raise drawing.BlankDrawing("Draw a digit on the canvas: it is empty.")
        image = drawing.to_model_input(pixels, cfg.dataset)
    except drawing.BlankDrawing as hint:
        st.info(f"{hint} Its reconstruction shows here.", icon=":material/draw:")
        st.stop()
    noisy = image
    if has_level(corruption):
        noisy = corrupt(corruption, image, level, torch.Generator().manual_seed(0))
    recon = reconstruct(ckpt.model, noisy)
    rows = {"Your drawing, as the dataset's": image, "Corrupted": noisy, "Reconstructed": recon}
    if not has_level(corruption):
        del rows["Corrupted"]
    st.plotly_chart(image_grid(rows), width="content", key="draw_rows")
    seeded = "; the corruption is drawn with a fixed seed" if has_level(corruption) else ""
    st.caption(f"{ui.run_label(cfg)}{seeded}.")
    if not explore.has_2d_code(cfg):
        st.caption(
            "This model's code is not 2-D, so its codes are not a plane to show the drawing "
            "on: pick a model with a 2-unit code to see where the drawing lands."
        )
        st.stop()

ds = ui.dataset(cfg.dataset)
codes, points, _ = ui.latent_points(ckpt, TEST_POINTS, "auto")
code = latent.encode_all(ckpt.model, noisy)[0]
prior = latent.PRIOR_SIGMAS if ckpt.model.variational else None
extent = latent.plane_extent(torch.cat([codes, code[None]]), prior_sigmas=prior)
st.subheader("Where your drawing lands")
fig = plane_figure(
    points,
    ds.test_labels[: len(points)],
    ds.classes,
    extent,
    (float(code[0]), float(code[1])),
    "your drawing",
    prior,
    clickable=False,
)
st.plotly_chart(fig, key="draw_plane", width="stretch")
st.caption(
    f"The code of the corrupted drawing, ({float(code[0]):.2f}, {float(code[1]):.2f}), among "
    f"the codes of {len(points):,} test images."
)
