"""The configuration sidebar: one configuration per session, owned by the app.

The session's configuration is a dict of TrainConfig values in st.session_state[VALUES], hidden
fields included (a conv model's code size is kept for when an MLP is picked again). Every run
writes it into the widgets before drawing them, and each widget's on_change copies an edit back.
Streamlit gives a widget on another page another identity and forgets the state of widgets a run
did not draw, so widget state alone would reset on the first sidebar click; this way a page
switch can only show the values the session already has.

The URL mirrors the configuration, so a link reproduces a run. Query values that differ from
what this session last wrote (a new link, a reload, back/forward) are the user's choice and are
read through aecore.config.config_from_strings: a value out of range becomes the nearest allowed
one, with a warning.
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

import streamlit as st

from aecore.config import (
    LEVEL_SAMPLINGS,
    LOSSES,
    OPTIMIZERS,
    RANGES,
    TrainConfig,
    config_from_strings,
)
from aecore.corruptions import CORRUPTIONS
from aecore.data import DATASETS, available_offline
from aecore.models import MODELS, REGULARIZERS
from aecore.presets import DEFAULT_KIND, preset_config

PREFIX = "cfg_"  # widget keys of the configuration sidebar: cfg_dataset, cfg_model, ...
VALUES = "_cfg_values"  # the session's configuration (raw values, hidden fields too)
LEVELS = "_cfg_levels"  # the last level chosen for each corruption
WRITTEN = "_cfg_query_written"  # the query params this session last wrote (to spot outside edits)
SAMPLING_LABELS = {"fixed": "this level", "uniform": "0 up to this level"}
# A regulariser switched on with weight 0 trains a plain AE. These are the Learn page's presets:
# the L1 penalty sums over the code while the Jacobian norm sums over code x pixels, so their
# useful weights differ by an order of magnitude.
REG_WEIGHTS = {"sparse": 1e-4, "contractive": 1e-3}
FIELD_TYPES = {f.name: str(f.type) for f in fields(TrainConfig)}

# The number inputs: label, step, display format, and whether it sits in "Training settings".
NUMBERS = {
    "latent": ("Code size (latent units)", 1, None),
    "width": ("Hidden width w (layers 2w, w)", 32, None),
    "reg_weight": ("Regulariser weight", 1e-4, "%.5f"),
    "lr": ("Learning rate", 1e-4, "%.6f"),
    "batch_size": ("Batch size", 32, None),
    "epochs": ("Epochs", 1, None),
    "limit_train": ("Training images (0 = all)", 1000, None),
    "seed": ("Seed", 1, None),
}


def default_config() -> TrainConfig:
    """The denoising preset, on MNIST if it is on this machine, else on the bundled digits:
    either way a bundled run, so every page shows a trained model at once, offline too."""
    dataset = "mnist" if available_offline("mnist") else "digits"
    return preset_config(DEFAULT_KIND, dataset)


def _raw_defaults() -> dict[str, Any]:
    raw = {f.name: f.default for f in fields(TrainConfig)}
    for name, value in default_config().to_dict().items():
        low, high = RANGES.get(name, (value, value))
        if low <= value <= high:  # not a field the default model leaves at 0
            raw[name] = value
    return raw


def _as_raw(cfg: dict[str, Any], keep: dict[str, Any]) -> dict[str, Any]:
    """Config values as widget values: a field the config stores as 0 because the model does not
    use it (a conv model's latent) takes its value from `keep`, so no widget gets a value outside
    its range and a field shown again gets its last value back."""
    out = dict(cfg)
    for name, (low, high) in RANGES.items():
        if not low <= out[name] <= high:
            out[name] = keep[name]
    return out


# -- the URL -------------------------------------------------------------------------------------


def _link_values() -> dict[str, str]:
    return {k: st.query_params[k] for k in st.query_params if k in FIELD_TYPES}


def _read_link(given: dict[str, str], keep: dict[str, Any]) -> dict[str, Any]:
    """The link's config over the defaults, as raw values; each value it could not use as
    given gets a warning on the page (a shared link must never crash the page)."""
    cfg, notes = config_from_strings(given, default_config())
    for note in notes:
        st.warning(f"This link's settings: {_as_plain_text(note)}.", icon=":material/link_off:")
    return _as_raw(cfg.to_dict(), keep)


def _as_plain_text(text: str, limit: int = 200) -> str:
    """Clipped, with Markdown's special characters escaped: a crafted link must not be able to
    fill the page or put a clickable link of its own into the app's message."""
    if len(text) > limit:
        text = text[:limit] + "..."
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~$])", r"\\\1", text)


def _write_query(cfg: TrainConfig) -> None:
    wanted = {k: str(v) for k, v in cfg.to_dict().items()}
    changed = {k: v for k, v in wanted.items() if st.query_params.get(k) != v}
    if changed:  # one update, one browser history entry (each assignment would add one)
        st.query_params.update(changed)
    st.session_state[WRITTEN] = wanted


def open_config(cfg: TrainConfig) -> None:
    """Make cfg the session's configuration (then st.rerun or st.switch_page)."""
    keep = st.session_state.get(VALUES) or _raw_defaults()
    st.session_state[VALUES] = _as_raw(cfg.to_dict(), keep)


def current_values() -> dict[str, Any]:
    """The session's configuration as raw values: a new link first, else what the session has,
    else the defaults."""
    keep = st.session_state.get(VALUES) or _raw_defaults()
    given = _link_values()
    if given and given != st.session_state.get(WRITTEN):
        st.session_state[VALUES] = _read_link(given, keep)
    elif VALUES not in st.session_state:
        st.session_state[VALUES] = keep
    return st.session_state[VALUES]


# -- the sidebar ---------------------------------------------------------------------------------


def _level_key(corruption: str) -> str:
    return f"{PREFIX}level_{corruption}"  # one slider per corruption: ranges differ


def _cast_level(corruption: str, value: float) -> float | int:
    return int(value) if CORRUPTIONS[corruption].meta.get("integer") else float(value)


def _seed_widgets(values: dict[str, Any]) -> None:
    """Write the configuration into the widget keys before the widgets exist (Streamlit's
    documented way to set a widget's value)."""
    for name, value in values.items():
        if name == "level":
            if values["corruption"] != "none":
                key = _level_key(values["corruption"])
                st.session_state[key] = _cast_level(values["corruption"], value)
        else:
            st.session_state[PREFIX + name] = value


def _changed(name: str) -> None:
    """on_change of the widget for `name`: copy the user's edit into the configuration."""
    values = st.session_state[VALUES]
    if name == "level":
        key = _level_key(values["corruption"])
        values["level"] = st.session_state[key]
        st.session_state.setdefault(LEVELS, {})[values["corruption"]] = values["level"]
        return
    values[name] = st.session_state[PREFIX + name]
    if name == "corruption" and values[name] != "none":
        meta = CORRUPTIONS[values[name]].meta
        level = st.session_state.get(LEVELS, {}).get(values[name], meta["default"])
        values["level"] = _cast_level(values[name], level)
    if name == "regularizer":
        _give_regularizer_a_weight(values)


def _give_regularizer_a_weight(values: dict[str, Any]) -> None:
    """A newly chosen regulariser gets a useful weight, unless the user set one of their own."""
    chosen, weight = values["regularizer"], values["reg_weight"]
    if chosen in REG_WEIGHTS and (not weight or weight in REG_WEIGHTS.values()):
        values["reg_weight"] = REG_WEIGHTS[chosen]


def _number(where, name: str) -> None:
    label, step, fmt = NUMBERS[name]
    cast = float if FIELD_TYPES[name] == "float" else int
    low, high = RANGES[name]
    where.number_input(
        label,
        cast(low),
        cast(high),
        step=cast(step),
        format=fmt,
        key=PREFIX + name,
        on_change=_changed,
        args=(name,),
    )


def _choice(where, name: str, label: str, options, **kwargs) -> None:
    widget = where.radio if kwargs.pop("radio", False) else where.selectbox
    widget(label, options, key=PREFIX + name, on_change=_changed, args=(name,), **kwargs)


def _level_widgets(bar, corruption: str) -> None:
    meta = CORRUPTIONS[corruption].meta
    if meta["max"] <= meta["min"]:
        return
    cast = int if meta.get("integer") else float
    bar.slider(
        f"Training level: {meta['level_name']}",
        min_value=cast(meta["min"]),
        max_value=cast(meta["max"]),
        step=cast(meta["step"]),
        key=_level_key(corruption),
        on_change=_changed,
        args=("level",),
        help="The corruption the model is trained on; it is part of the run's settings.",
    )
    _choice(
        bar,
        "level_sampling",
        "Training levels",
        LEVEL_SAMPLINGS,
        radio=True,
        horizontal=True,
        format_func=SAMPLING_LABELS.get,
        help="Uniform: each training batch draws its level from 0 up to the one above, so "
        "one model handles every level up to it. Validation and test use the level itself.",
    )


def _model_widgets(bar, model: str, regularizer: str) -> None:
    _choice(bar, "model", "Model", MODELS.names(), format_func=_label(MODELS))
    bar.caption(MODELS[model].label)  # wraps: the box above cuts a long name off
    meta = MODELS[model].meta
    if meta.get("uses_latent", True):
        _number(bar, "latent")
    if meta.get("uses_width"):
        _number(bar, "width")
    if meta["family"] != "vae":  # a VAE's KL term is its regulariser
        _choice(bar, "regularizer", "Regulariser on the code", REGULARIZERS)
        if regularizer != "none":
            _number(bar, "reg_weight")


def _training_widgets(where) -> None:
    _choice(where, "loss", "Reconstruction loss", LOSSES, radio=True, horizontal=True)
    _choice(where, "optimizer", "Optimizer", OPTIMIZERS, radio=True, horizontal=True)
    for name in ("lr", "batch_size", "epochs", "limit_train"):
        _number(where, name)
    where.checkbox(
        "Augment (flips, small rotations)",
        key=PREFIX + "augment",
        on_change=_changed,
        args=("augment",),
    )
    _number(where, "seed")


def config_sidebar() -> TrainConfig:
    """The configuration widgets in the sidebar, built from registry meta; returns a valid
    TrainConfig or shows why not and stops the page."""
    values = current_values()
    _seed_widgets(values)
    bar = st.sidebar
    bar.header("Configuration")
    _choice(bar, "dataset", "Dataset", DATASETS.names(), format_func=_dataset_label)
    _choice(bar, "corruption", "Corruption", CORRUPTIONS.names(), format_func=_label(CORRUPTIONS))
    _level_widgets(bar, values["corruption"])
    _model_widgets(bar, values["model"], values["regularizer"])
    with bar.expander("Training settings"):
        _training_widgets(st)
    try:
        cfg = TrainConfig.from_dict(values)
    except ValueError as err:
        bar.error(str(err))
        st.stop()
    _write_query(cfg)
    bar.caption(
        f"Run key `{cfg.key()}`: it names the saved model; this page's link holds the settings."
    )
    return cfg


def _label(registry):
    return lambda name: registry[name].label


def _dataset_label(name: str) -> str:
    return DATASETS[name].label + ("" if available_offline(name) else " (not downloaded)")
