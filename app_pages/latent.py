"""Latent space: where the test images land in code space, and what the decoder makes of codes."""

import dataclasses

import streamlit as st

from aecore import latent, plots
from aecore.data import to_float
from aecore.evaluate import reconstruct
from aecore.models import MODELS
from app_pages import _ui as ui
from app_pages import _views as views

st.title("Latent space")
cfg = ui.config_sidebar()
ckpt = views.require_trained(cfg)
model = ckpt.model
ds = ui.dataset(cfg.dataset)

left, right = st.columns(2)
n = left.select_slider("Test images to encode", [500, 1000, 2000], 1000, key="lat_n")
method = right.radio(
    "Projection to 2-D",
    ["auto", "pca", "tsne"],
    horizontal=True,
    key="lat_method",
    help="auto: the code itself when it has 2 units, else PCA (instant). t-SNE keeps "
    "neighbours together but distorts distances, and takes several seconds.",
)
codes, points, used = ui.latent_points(ckpt, n, method)
labels = ds.test_labels[: len(points)]
if method != "auto" and used == "identity":  # a code of 1 or 2 units is never projected
    why = {
        "tsne": "t-SNE would only distort it: it moves points to keep neighbours together and "
        "does not keep distances",
        "pca": "PCA would only turn it around: a 2-unit code already lies in a plane",
    }[method]
    st.info(
        f"This model's code has {codes.shape[1]} unit{'s' if codes.shape[1] > 1 else ''}, so it "
        f"is drawn as it is, {'its two values as x and y' if codes.shape[1] == 2 else 'against 0'}"
        f". {why}, so it is not used here.",
        icon=":material/info:",
    )

st.subheader("Codes of the test images")
st.caption(
    f"{len(points):,} test images, {codes.shape[1]}-unit codes, drawn with "
    f"{ {'identity': 'the code itself', 'pca': 'PCA', 'tsne': 't-SNE'}[used] }. "
    "Click a point to see its image, reconstruction and code."
)
event = st.plotly_chart(
    plots.latent_scatter(points, labels, ds.classes, used),
    on_select="rerun",
    selection_mode="points",
    key="lat_scatter",
)
picked = [p.get("customdata") for p in event.selection.points if p.get("customdata") is not None]
if picked:
    first = picked[0]
    st.session_state["lat_picked"] = int(first[0] if isinstance(first, list) else first)
index = min(st.session_state.get("lat_picked", 0), len(points) - 1)

image = to_float(ds.test_images[index : index + 1])
cols = st.columns([2, 3])
with cols[0]:
    rows = {"Image": image, "Reconstruction": reconstruct(model, image)}
    st.plotly_chart(
        plots.image_grid(rows, title=f"Test image #{index}: {ds.classes[int(labels[index])]}"),
        width="content",
        key="lat_pick_grid",
    )
with cols[1]:
    grid = latent.code_as_image(codes[index])
    # One scale for every image's code, so two codes compare cell by cell and zeros show. Its
    # ends are the 99th percentile of the values, so one outlier does not wash out the rest.
    values = codes.detach().float().flatten()
    low, top = float(values.min()), float(values.abs().quantile(0.99))
    saturate = float(values.abs().max()) > top
    value_range = (0.0, top) if low >= 0 else (-top, top)
    fig = plots.code_heatmap(
        grid,
        f"Its code: {codes.shape[1]:,} values as a {grid.shape[0]}x{grid.shape[1]} grid",
        value_range,
        saturate=saturate,
    )
    st.plotly_chart(fig, width="content", key="lat_code")
    if low >= 0:
        zero = "white is exactly 0, a unit that is off for this image (the more, the sparser)"
        full = f"Full colour from {top:.3g} up"
    else:
        zero = "white is 0, blue below it, red above it"
        full = f"Full colour beyond ±{top:.3g}"
    spare = " Gray cells hold no unit." if grid.size > codes.shape[1] else ""
    st.caption(
        f"One colour scale for the codes of all {len(codes):,} encoded test images, so images "
        f"compare: {zero}. {full} (99% of the values are closer to 0).{spare}"
    )

st.subheader("Walk between two test images")
a_col, b_col, s_col = st.columns(3)
a = a_col.number_input("From test image", 0, len(ds.test_images) - 1, index, key="lat_a")
b = b_col.number_input("To test image", 0, len(ds.test_images) - 1, (index + 1) % 10, key="lat_b")
steps = s_col.slider("Steps", 3, 16, 10, key="lat_steps")
frames = latent.interpolate(
    model, to_float(ds.test_images[a : a + 1]), to_float(ds.test_images[b : b + 1]), steps
)
st.plotly_chart(plots.image_grid({f"#{a} to #{b}": frames}), width="content", key="lat_interp")
st.caption(
    "Decoded codes evenly spaced between the two images' codes; the ends are their reconstructions."
)

st.subheader("The decoder over a 2-D code grid")
if codes.shape[1] == 2:
    side = st.slider("Grid side", 5, 20, 12, key="lat_side")
    images = latent.manifold_grid(model, side, codes=None if model.variational else codes)
    how = "prior quantiles" if model.variational else "the range the test codes cover"
    st.plotly_chart(plots.tiles(images, side, cell_px=40), width="content", key="lat_manifold")
    st.caption(f"Each tile decodes one point of a {side}x{side} grid over {how}.")
    ui.page_link("app_pages/explore.py", "Decode any point you click", icon=":material/ads_click:")
elif MODELS[cfg.model].meta.get("uses_latent", True):
    st.info(f"This model's code has {codes.shape[1]} units; the grid needs exactly 2.")
    if st.button("Open this model with a 2-unit code", key="lat_open2"):
        ui.open_config(dataclasses.replace(cfg, latent=2))
        st.rerun()
else:
    st.info("A convolutional model's code is a stack of feature maps, not a point in a plane.")

if model.variational:
    st.subheader("New images from the prior")
    seed = st.number_input("Seed", 0, 10_000, 0, key="lat_seed")
    st.plotly_chart(
        plots.tiles(latent.samples(model, 32, seed), 16, cell_px=48), width="content", key="lat_s"
    )
    st.caption("Codes drawn from N(0, I) and decoded: images no one drew.")
