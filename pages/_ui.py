"""Streamlit-only helpers shared by the pages: the job manager, the session id, the configuration
sidebar (mirrored into the URL), cached data accessors, and stop-with-a-message guards.

The leading underscore keeps this file out of any page list; st.navigation lists pages explicitly.
"""

from __future__ import annotations

import uuid
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
import torch

from aecore.checkpoints import BUNDLED_DIR, Checkpoint, CheckpointError, load_checkpoint, runs_dir
from aecore.config import LOSSES, OPTIMIZERS, RANGES, TrainConfig
from aecore.corruptions import CORRUPTIONS
from aecore.data import DATASETS, DatasetUnavailable, ImageDataset, available_offline, load_dataset
from aecore.evaluate import corrupted_test_set
from aecore.jobs import JobManager
from aecore.models import MODELS, REGULARIZERS, build_model, check_shape, count_params, summary

PREFIX = "cfg_"  # widget keys of the configuration sidebar: cfg_dataset, cfg_model, ...
WRITTEN = "_cfg_query_written"  # the query params this session last wrote (to spot outside edits)
VALUES = "_cfg_values"  # the sidebar's last values; reseeds widgets after a page switch
PENDING = "_cfg_pending"  # a config to load into the widgets on the next run (presets, "open")
FIELD_TYPES = {f.name: f.type for f in fields(TrainConfig)}

# Sized for a 2-core CPU: trains and evaluates in well under a minute (timed in the report).
APP_DEFAULTS = {
    "corruption": "gaussian",
    "level": 0.3,
    "model": "dense",
    "latent": 32,
    "epochs": 3,
    "limit_train": 20000,
}


@st.cache_resource
def jobs() -> JobManager:
    """The one job manager of this process, shared by every session (thread-safe)."""
    return JobManager(workers=1, max_queue=16, per_session=2)


def session_id() -> str:
    """A random id per browser session; the job manager counts runs per session with it."""
    if "session_id" not in st.session_state:
        st.session_state["session_id"] = uuid.uuid4().hex
    return st.session_state["session_id"]


def default_config() -> TrainConfig:
    dataset = "mnist" if available_offline("mnist") else "digits"
    limit = APP_DEFAULTS["limit_train"] if dataset == "mnist" else 0
    return TrainConfig(**(APP_DEFAULTS | {"dataset": dataset, "limit_train": limit}))


# -- the URL -------------------------------------------------------------------------------------


def _parse(name: str, text: str) -> Any:
    kind = FIELD_TYPES[name]
    if kind == "bool":
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} must be true or false, got {text!r}")
        return text.lower() in ("true", "1")
    return {"int": int, "float": float, "str": str}[kind](text)


def config_from_query() -> TrainConfig | None:
    """The config in the URL over the defaults, or None if the URL names none. A bad value shows
    a warning and gives the defaults: a shared link must never crash the page."""
    given = {k: st.query_params[k] for k in st.query_params if k in FIELD_TYPES}
    if not given:
        return None
    try:
        values = {k: _parse(k, v) for k, v in given.items()}
        return TrainConfig.from_dict(default_config().to_dict() | values)
    except ValueError as err:
        st.warning(f"The link's settings were not usable ({err}); showing the defaults instead.")
        return default_config()


def _write_query(cfg: TrainConfig) -> None:
    wanted = {k: str(v) for k, v in cfg.to_dict().items()}
    for k, v in wanted.items():
        if st.query_params.get(k) != v:  # only changed keys: fewer browser history entries
            st.query_params[k] = v
    st.session_state[WRITTEN] = wanted


def open_config(cfg: TrainConfig) -> None:
    """Load cfg into the sidebar on the next run (call st.rerun or st.switch_page after)."""
    st.session_state[PENDING] = cfg.to_dict()


# -- the sidebar ---------------------------------------------------------------------------------


def _level_key(corruption: str) -> str:
    return f"{PREFIX}level_{corruption}"  # one slider per corruption: ranges differ


def _widget_values(cfg: dict[str, Any]) -> dict[str, Any]:
    """Config values as widget states; values a widget cannot show (a conv model's normalised
    latent of 0) fall back to the defaults."""
    base = default_config().to_dict()
    out = {}
    for name, value in cfg.items():
        low, high = RANGES.get(name, (None, None))
        if low is not None and not low <= value <= high:
            value = base[name]
        out[name] = value
    return out


def _seed_widgets() -> None:
    """Put values into the widget keys before the widgets exist (Streamlit's documented way)."""
    outside = {k: st.query_params[k] for k in st.query_params if k in FIELD_TYPES}
    source = None
    if PENDING in st.session_state:
        source = st.session_state.pop(PENDING)
    elif outside and outside != st.session_state.get(WRITTEN):
        cfg = config_from_query()  # a new link, a reload or a preset: the URL wins
        source = cfg.to_dict() if cfg else None
    elif VALUES in st.session_state:
        source = st.session_state[VALUES]
    else:
        source = default_config().to_dict()
    values = _widget_values(source)
    overwrite = source is not st.session_state.get(VALUES)
    for name, value in values.items():
        key = _level_key(values["corruption"]) if name == "level" else PREFIX + name
        if name == "level":
            meta = CORRUPTIONS[values["corruption"]].meta
            value = int(value) if meta.get("integer") else float(value)
        if overwrite or key not in st.session_state:
            st.session_state[key] = value


def config_sidebar() -> TrainConfig:
    """The configuration widgets in the sidebar, built from registry meta; returns a valid
    TrainConfig or shows why not and stops the page."""
    _seed_widgets()
    bar = st.sidebar
    bar.header("Configuration")
    v: dict[str, Any] = {}
    v["dataset"] = bar.selectbox(
        "Dataset", DATASETS.names(), key=PREFIX + "dataset", format_func=_dataset_label
    )
    v["corruption"] = bar.selectbox(
        "Corruption", CORRUPTIONS.names(), key=PREFIX + "corruption", format_func=_label(CORRUPTIONS)
    )
    meta = CORRUPTIONS[v["corruption"]].meta
    if meta["max"] > meta["min"]:
        cast = int if meta.get("integer") else float
        key = _level_key(v["corruption"])
        st.session_state.setdefault(key, cast(meta["default"]))
        v["level"] = bar.slider(
            f"Level: {meta['level_name']}",
            min_value=cast(meta["min"]),
            max_value=cast(meta["max"]),
            step=cast(meta["step"]),
            key=key,
        )
    else:
        v["level"] = 0.0
    v["model"] = bar.selectbox("Model", MODELS.names(), key=PREFIX + "model", format_func=_label(MODELS))
    model_meta = MODELS[v["model"]].meta
    if model_meta.get("uses_latent", True):
        v["latent"] = bar.number_input(
            "Code size (latent units)", *map(int, RANGES["latent"]), key=PREFIX + "latent"
        )
    if model_meta.get("uses_width"):
        v["width"] = bar.number_input(
            "Hidden width w (layers 2w, w)", *map(int, RANGES["width"]), step=32, key=PREFIX + "width"
        )
    if model_meta["family"] != "vae":  # a VAE's KL term is its regulariser
        v["regularizer"] = bar.selectbox("Regulariser on the code", REGULARIZERS, key=PREFIX + "regularizer")
        if v["regularizer"] != "none":
            v["reg_weight"] = bar.number_input(
                "Regulariser weight", 0.0, RANGES["reg_weight"][1], step=1e-4, format="%.5f",
                key=PREFIX + "reg_weight",
            )
    with bar.expander("Training settings"):
        v["loss"] = st.radio("Reconstruction loss", LOSSES, horizontal=True, key=PREFIX + "loss")
        v["optimizer"] = st.radio("Optimizer", OPTIMIZERS, horizontal=True, key=PREFIX + "optimizer")
        v["lr"] = st.number_input(
            "Learning rate", 1e-6, 10.0, step=1e-4, format="%.5f", key=PREFIX + "lr"
        )
        v["batch_size"] = st.number_input("Batch size", 1, 4096, step=32, key=PREFIX + "batch_size")
        v["epochs"] = st.number_input("Epochs", 1, 200, key=PREFIX + "epochs")
        v["limit_train"] = st.number_input(
            "Training images (0 = all)", 0, int(RANGES["limit_train"][1]), step=1000,
            key=PREFIX + "limit_train",
        )
        v["augment"] = st.checkbox("Augment (flips, small rotations)", key=PREFIX + "augment")
        v["seed"] = st.number_input("Seed", 0, 2**31 - 1, key=PREFIX + "seed")
    st.session_state[VALUES] = _widget_values(st.session_state.get(VALUES, {}) | v) | v
    try:
        cfg = TrainConfig.from_dict(default_config().to_dict() | v)
        check_shape(cfg.model, tuple(DATASETS[cfg.dataset].meta["shape"]))
    except ValueError as err:
        bar.error(str(err))
        st.stop()
    _write_query(cfg)
    bar.caption(f"Run key `{cfg.key()}` (the checkpoint's name; the URL holds these settings)")
    return cfg


def _label(registry):
    return lambda name: registry[name].label


def _dataset_label(name: str) -> str:
    return DATASETS[name].label + ("" if available_offline(name) else " (not downloaded)")


# -- cached data ---------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the dataset...")
def _load(name: str, where: str) -> ImageDataset:
    return load_dataset(name, where)  # `where` in the key: a changed AECORE_DATA_DIR reloads


def dataset(name: str) -> ImageDataset:
    """The dataset, or an error message and a stopped page if it cannot be had."""
    from aecore.data import data_dir

    try:
        return _load(name, str(data_dir()))
    except DatasetUnavailable as err:
        st.error(str(err))
        st.stop()


@st.cache_data(max_entries=64, show_spinner=False)
def _test_images(name: str, corruption: str, level: float, n: int, where: str):
    return corrupted_test_set(_load(name, where), corruption, level, "cpu", limit=n)


def test_images(cfg: TrainConfig, n: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, corrupted) first n test images, float (n, C, H, W); the noise has a fixed seed."""
    from aecore.data import data_dir

    dataset(cfg.dataset)  # shows the error and stops if the data is missing
    return _test_images(cfg.dataset, cfg.corruption, cfg.level, n, str(data_dir()))


@st.cache_data(max_entries=64, show_spinner=False)
def model_summary(cfg: TrainConfig) -> tuple[pd.DataFrame, int]:
    """Keras-style layer table of cfg's model (before training) and its parameter count."""
    shape = tuple(DATASETS[cfg.dataset].meta["shape"])
    model = build_model(cfg.model, shape, cfg.latent, cfg.width)
    rows = [
        {"layer": r.name, "type": r.kind, "output shape": str(r.output_shape), "params": r.params}
        for r in summary(model)
    ]
    return pd.DataFrame(rows), count_params(model)


# -- saved runs ----------------------------------------------------------------------------------


def saved_run_paths() -> list[Path]:
    """Checkpoint files in the runs folder, then the bundled ones, newest first in each."""
    found = []
    for folder in (runs_dir(), BUNDLED_DIR):
        if folder.is_dir():
            files = [p for p in folder.glob("*.pt") if p.is_file()]
            found += sorted(files, key=lambda p: p.stat().st_mtime, reverse=True)
    return found


@st.cache_resource(max_entries=32, show_spinner="Loading the checkpoint...")
def _load_run(path: str, mtime: float) -> Checkpoint | None:
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError:
        return None  # an unreadable file is skipped, not an error page
    ckpt.info["path"] = path
    return ckpt


def load_run(path: Path) -> Checkpoint | None:
    return _load_run(str(path), path.stat().st_mtime)


def run_label(cfg: TrainConfig) -> str:
    """A short human name for a run: model, data, corruption and key."""
    level = "" if cfg.corruption == "none" else f" {cfg.level:g}"
    return f"{cfg.model} | {cfg.dataset} | {cfg.corruption}{level} | {cfg.key()[:6]}"


def checkpoint_bytes(ckpt: Checkpoint) -> bytes | None:
    path = ckpt.info.get("path")
    return Path(path).read_bytes() if path and Path(path).is_file() else None
