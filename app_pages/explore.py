"""Decode any point: click anywhere on a 2-D code's plane and see what the decoder makes of that
code, with the training images whose codes lie nearest to it."""

import time

import streamlit as st

from aecore import latent
from aecore.explore_plots import clicked_code, plane_figure
from aecore.plots import grid_pixels
from app_pages import _explore as explore
from app_pages import _ui as ui

NEIGHBOURS = 6
TEST_POINTS = 1000

st.title("Decode any point")
st.caption(
    "A model with a 2-unit code maps every image to a point of a plane, and its decoder maps "
    "every point of the plane back to an image, also points no image was mapped to. Click "
    "anywhere on the plane: the decoder draws that code, and the training images whose codes "
    "lie nearest to it show what the model puts there."
)
ckpt = explore.pick_run("exp", two_d_only=True)
ds = ui.dataset(ckpt.config.dataset)
codes, points, _ = ui.latent_points(ckpt, TEST_POINTS, "auto")
train, train_labels = explore.train_codes(ckpt)
prior = latent.PRIOR_SIGMAS if ckpt.model.variational else None
extent = latent.plane_extent(codes, prior_sigmas=prior)
POINT = f"exp_point_{ckpt.config.key()}"  # the clicked code, per model
CLICKED = "exp_clicked_at"  # perf_counter() of the last click, for the latency shown


def on_click() -> None:
    """A click's selection arrives before the rerun: keep its code, so this run already draws
    the marker there (the chart itself is drawn before its new selection can be read)."""
    selection = (st.session_state.get("exp_plane") or {}).get("selection") or {}
    code = clicked_code(selection.get("points") or [])
    if code is not None:
        st.session_state[POINT] = code
        st.session_state[CLICKED] = time.perf_counter()


def saved_point() -> tuple[float, float] | None:
    """The last clicked code of this model, if it is a usable one."""
    saved = st.session_state.get(POINT)
    if not isinstance(saved, tuple | list) or len(saved) != 2:
        return None
    return clicked_code([{"x": saved[0], "y": saved[1]}])


@st.fragment
def plane_and_decoding() -> None:
    """Reruns on its own on a click: only the plane and its decoding are redrawn."""
    default = tuple(float(v) for v in codes.median(0).values) if prior is None else (0.0, 0.0)
    x, y = saved_point() or default
    left, right = st.columns([3, 2])
    with left:
        fig = plane_figure(
            points, ds.test_labels[: len(points)], ds.classes, extent, (x, y), "clicked", prior
        )
        st.plotly_chart(
            fig, on_select=on_click, selection_mode="points", key="exp_plane", width="stretch"
        )
    image = latent.decode_point(ckpt.model, x, y)
    order, dist = latent.nearest_codes(train, (x, y), NEIGHBOURS)
    with right:
        st.image(grid_pixels(image[None], 1, tile_px=168), caption=f"Decoded: ({x:.2f}, {y:.2f})")
        st.markdown(f"**{len(order)} nearest training images** (class, distance in code space)")
        cols = st.columns(3)
        for i, (j, d) in enumerate(zip(order.tolist(), dist.tolist(), strict=True)):
            tile = grid_pixels(ds.train_images[j : j + 1].float() / 255, 1, tile_px=64)
            cols[i % 3].image(tile, caption=f"{ds.classes[int(train_labels[j])]} · {d:.2f}")
    clicked = st.session_state.pop(CLICKED, None)
    if clicked is not None:
        ms = (time.perf_counter() - clicked) * 1000
        st.session_state["exp_latency_ms"] = ms
    shown = st.session_state.get("exp_latency_ms")
    spans = "the test codes with a margin" + (", and the prior to ±3σ (dashed)" if prior else "")
    st.caption(
        f"The plane spans {spans}; {len(points):,} test images are drawn, {len(train):,} "
        "training codes searched."
        + (f" Last click decoded in {shown:.0f} ms on the server." if shown is not None else "")
    )


plane_and_decoding()
