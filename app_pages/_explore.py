"""Helpers of the Explore pages that work on one model (Decode any point, Draw a digit): which
model (a bundled one, or the sidebar's configuration) and its cached codes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from aecore import latent, settings
from aecore.checkpoints import Checkpoint
from aecore.config import TrainConfig
from aecore.data import DATASETS, available_offline
from aecore.models import MODELS
from aecore.pretrain import BundledModel, read_manifest
from app_pages import _ui as ui
from app_pages import _views as views

BUNDLED, SIDEBAR = "A bundled model", "The sidebar's configuration"
TRAIN_CODES_MAX = 60_000  # every training image of MNIST: 60,000 2-D codes are 480 KB


def has_2d_code(cfg: TrainConfig) -> bool:
    return bool(MODELS[cfg.model].meta.get("uses_latent", True)) and cfg.latent == 2


@st.cache_data(show_spinner=False)
def _bundled_entries(folder: str) -> list[BundledModel]:
    manifest = Path(folder) / settings.MANIFEST_NAME
    if not manifest.is_file():
        return []
    entries = [e for e in read_manifest(manifest)[1] if e.path.is_file()]

    # Those on the bundled dataset first, then those whose data is on this machine: the first
    # choice works offline.
    # Within each, 2-D codes first: a drawing's code can then be shown too.
    def order(entry: BundledModel) -> tuple[bool, bool, bool]:
        name = entry.config.dataset
        bundled = DATASETS[name].meta["folder"] is None
        return not bundled, not available_offline(name), not has_2d_code(entry.config)

    return sorted(entries, key=order)


def bundled(two_d_only: bool, dataset_ok=lambda name: True) -> list[BundledModel]:
    """The bundled models (with a 2-D code only, if asked) whose dataset passes dataset_ok."""
    entries = _bundled_entries(str(ui.BUNDLED_DIR))
    return [
        e
        for e in entries
        if (has_2d_code(e.config) or not two_d_only) and dataset_ok(e.config.dataset)
    ]


def bundled_label(entry: BundledModel) -> str:
    """Its run label (unique: what differs from the defaults), and whether its data is here."""
    where = "" if available_offline(entry.config.dataset) else " (dataset not downloaded)"
    return ui.run_label(entry.config).removesuffix(" (bundled)") + where


def pick_run(
    key: str, two_d_only: bool, dataset_ok=lambda name: True, refusal: str = ""
) -> Checkpoint:
    """The model the page shows: a bundled one (no training needed) or the sidebar's
    configuration, trained; the page stops with a message when there is none. A sidebar
    dataset that fails dataset_ok gets `refusal` ({label}: the dataset's name) at once."""
    left, right = st.columns([2, 3])
    source = left.radio("Model", [BUNDLED, SIDEBAR], key=f"{key}_source")
    if source == SIDEBAR:
        cfg = ui.config_sidebar()
        right.caption(f"**{ui.run_label(cfg)}**: change it in the sidebar.")
        if not dataset_ok(cfg.dataset):
            st.info(refusal.format(label=DATASETS[cfg.dataset].label), icon=":material/info:")
            st.stop()
        if two_d_only:
            require_2d(cfg, key)
        return views.require_trained(cfg)
    entries = bundled(two_d_only, dataset_ok)
    if not entries:
        st.info("No bundled model fits here; pick the sidebar's configuration instead.")
        st.stop()
    index = right.selectbox(
        "Bundled model",
        range(len(entries)),
        format_func=lambda i: bundled_label(entries[i]),
        key=f"{key}_bundled",
    )
    ckpt = ui.load_run(entries[index].path, warn=True)
    if ckpt is None:
        st.stop()
    return ckpt


def require_2d(cfg: TrainConfig, key: str) -> None:
    """Stop the page with a way on unless cfg's model has a 2-unit code."""
    if has_2d_code(cfg):
        return
    if not MODELS[cfg.model].meta.get("uses_latent", True):
        st.info(
            f"{MODELS[cfg.model].label}'s code is a stack of feature maps, not a point in a "
            "plane. Pick a dense or VAE model with a 2-unit code, or a bundled model.",
            icon=":material/info:",
        )
        st.stop()
    st.info(
        f"This model's code has {cfg.latent} units; a plane to click on needs exactly 2. Open "
        "the same model with a 2-unit code, or pick a bundled model above.",
        icon=":material/info:",
    )
    if st.button("Open this model with a 2-unit code", key=f"{key}_open2"):
        ui.open_config(dataclasses.replace(cfg, latent=2))
        st.rerun()
    st.stop()


@st.cache_data(
    max_entries=8, show_spinner="Encoding the training images...", hash_funcs=ui.HASH_FUNCS
)
def train_codes(ckpt: Checkpoint) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes (N, L), labels (N,)) of the run's training images, for nearest-neighbour look-ups."""
    ds = ui.dataset(ckpt.config.dataset)
    images = ds.train_images[:TRAIN_CODES_MAX]
    return latent.encode_all(ckpt.model, images), ds.train_labels[: len(images)]


# 9x a 28x28 image, the stroke about 2 of its pixels wide. No wider: on a 1024x768 projector with
# the sidebar open, the Draw page's half of the main column is about 270 px (a 280 px canvas was
# cut off on the right).
CANVAS_PX = 252
STROKE_PX = 18


def canvas_pixels(key: str) -> np.ndarray | None:
    """A drawing canvas, white on black; its RGBA pixels (H, W, 4) uint8, None before any draw."""
    # Imported here: the component registers itself on import, which needs a running app.
    from streamlit_drawable_canvas import st_canvas

    canvas = st_canvas(
        stroke_width=STROKE_PX,
        stroke_color="#ffffff",
        background_color="#000000",
        height=CANVAS_PX,
        width=CANVAS_PX,
        drawing_mode="freedraw",
        return_image_data=True,
        key=key,
    )
    return canvas.image_data
