"""The configuration sidebar: widgets built from registry meta, mirrored into the URL.

The URL (st.query_params) holds every TrainConfig field, so a link reproduces a run; a link's
values go through TrainConfig.from_dict, and bad ones give a warning and the defaults. Widget
states live under cfg_* keys and are reseeded from the session's last values after a page switch
(Streamlit forgets the state of widgets a page did not draw).
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import streamlit as st

from aecore.config import LEVEL_SAMPLINGS, LOSSES, OPTIMIZERS, RANGES, TrainConfig
from aecore.corruptions import CORRUPTIONS
from aecore.data import DATASETS, available_offline
from aecore.models import MODELS, REGULARIZERS, check_shape

PREFIX = "cfg_"  # widget keys of the configuration sidebar: cfg_dataset, cfg_model, ...
WRITTEN = "_cfg_query_written"  # the query params this session last wrote (to spot outside edits)
VALUES = "_cfg_values"  # the sidebar's last values; reseeds widgets after a page switch
PENDING = "_cfg_pending"  # a config to load into the widgets on the next run (presets, "open")
SAMPLING_LABELS = {"fixed": "this level", "uniform": "0 up to this level"}
# A regulariser switched on with weight 0 trains a plain AE. These are the Learn page's presets:
# the L1 penalty sums over the code while the Jacobian norm sums over code x pixels, so their
# useful weights differ by an order of magnitude.
REG_WEIGHTS = {"sparse": 1e-4, "contractive": 1e-3}
FIELD_TYPES = {f.name: f.type for f in fields(TrainConfig)}

# Sized for a 2-core CPU: trains and evaluates in well under a minute (timed in the report).
APP_DEFAULTS = {
    "corruption": "gaussian",
    "level": 0.5,
    "model": "dense",
    "latent": 64,
    "lr": 3e-3,  # Adam's 1e-3 needs more epochs for the same PSNR
    "epochs": 3,
    "limit_train": 20000,
}


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
    try:
        return {"int": int, "float": float, "str": str}[kind](text)
    except ValueError:
        raise ValueError(
            f"{name} must be {'an' if kind == 'int' else 'a'} {kind}, got {text!r}"
        ) from None


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
        why = _as_plain_text(str(err))
        st.warning(f"The link's settings were not usable ({why}); showing the defaults instead.")
        return default_config()


def _as_plain_text(text: str, limit: int = 200) -> str:
    """Clipped, with Markdown's special characters escaped: a crafted link must not be able to
    fill the page or put a clickable link of its own into the app's message."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~$])", r"\\\1", text)


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
    """Config values as widget states. A value no widget can show (a field the config normalised
    to 0, such as a conv model's latent) becomes the dataclass default."""
    raw_defaults = {f.name: f.default for f in fields(TrainConfig)} | APP_DEFAULTS
    out = {}
    for name, value in cfg.items():
        low, high = RANGES.get(name, (None, None))
        if low is not None and not low <= value <= high:
            value = raw_defaults[name]
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
        "Corruption",
        CORRUPTIONS.names(),
        key=PREFIX + "corruption",
        format_func=_label(CORRUPTIONS),
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
        v["level_sampling"] = bar.radio(
            "Training levels",
            LEVEL_SAMPLINGS,
            key=PREFIX + "level_sampling",
            horizontal=True,
            format_func=SAMPLING_LABELS.get,
            help="Uniform: each training batch draws its level from 0 up to the one above, so "
            "one model handles every level up to it. Validation and test use the level itself.",
        )
    else:
        v["level"] = 0.0
    v["model"] = bar.selectbox(
        "Model", MODELS.names(), key=PREFIX + "model", format_func=_label(MODELS)
    )
    model_meta = MODELS[v["model"]].meta
    if model_meta.get("uses_latent", True):
        v["latent"] = bar.number_input(
            "Code size (latent units)", *map(int, RANGES["latent"]), key=PREFIX + "latent"
        )
    if model_meta.get("uses_width"):
        v["width"] = bar.number_input(
            "Hidden width w (layers 2w, w)",
            *map(int, RANGES["width"]),
            step=32,
            key=PREFIX + "width",
        )
    if model_meta["family"] != "vae":  # a VAE's KL term is its regulariser
        v["regularizer"] = bar.selectbox(
            "Regulariser on the code",
            REGULARIZERS,
            key=PREFIX + "regularizer",
            on_change=_regularizer_changed,
        )
        if v["regularizer"] != "none":
            v["reg_weight"] = bar.number_input(
                "Regulariser weight",
                0.0,
                RANGES["reg_weight"][1],
                step=1e-4,
                format="%.5f",
                key=PREFIX + "reg_weight",
            )
    with bar.expander("Training settings"):
        v["loss"] = st.radio("Reconstruction loss", LOSSES, horizontal=True, key=PREFIX + "loss")
        v["optimizer"] = st.radio(
            "Optimizer", OPTIMIZERS, horizontal=True, key=PREFIX + "optimizer"
        )
        v["lr"] = st.number_input(
            "Learning rate", 1e-6, 10.0, step=1e-4, format="%.5f", key=PREFIX + "lr"
        )
        v["batch_size"] = st.number_input("Batch size", 1, 4096, step=32, key=PREFIX + "batch_size")
        v["epochs"] = st.number_input("Epochs", 1, 200, key=PREFIX + "epochs")
        v["limit_train"] = st.number_input(
            "Training images (0 = all)",
            0,
            int(RANGES["limit_train"][1]),
            step=1000,
            key=PREFIX + "limit_train",
        )
        v["augment"] = st.checkbox("Augment (flips, small rotations)", key=PREFIX + "augment")
        v["seed"] = st.number_input("Seed", 0, 2**31 - 1, key=PREFIX + "seed")
    # Remember every field, hidden ones too, so a widget shown again gets its last value back.
    st.session_state[VALUES] = default_config().to_dict() | st.session_state.get(VALUES, {}) | v
    try:
        cfg = TrainConfig.from_dict(default_config().to_dict() | v)
        check_shape(cfg.model, tuple(DATASETS[cfg.dataset].meta["shape"]))
    except ValueError as err:
        bar.error(str(err))
        st.stop()
    _write_query(cfg)
    bar.caption(f"Run key `{cfg.key()}` (the checkpoint's name; the URL holds these settings)")
    return cfg


def _regularizer_changed() -> None:
    """Give a newly chosen regulariser a useful weight, unless the user set one of their own."""
    chosen = st.session_state[PREFIX + "regularizer"]
    weight = st.session_state.get(PREFIX + "reg_weight", 0.0)
    if chosen in REG_WEIGHTS and (not weight or weight in REG_WEIGHTS.values()):
        st.session_state[PREFIX + "reg_weight"] = REG_WEIGHTS[chosen]


def _label(registry):
    return lambda name: registry[name].label


def _dataset_label(name: str) -> str:
    return DATASETS[name].label + ("" if available_offline(name) else " (not downloaded)")
