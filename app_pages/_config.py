"""The configuration sidebar: one configuration per session, owned by the app.

The session's configuration is a dict of TrainConfig values in st.session_state[VALUES], hidden
fields included (a conv model's code size is kept for when an MLP is picked again). Every run
writes it into the widgets before drawing them, and each widget's on_change copies an edit back.
Streamlit gives a widget on another page another identity and forgets the state of widgets a run
did not draw, so widget state alone would reset on the first sidebar click; this way a page
switch can only show the values the session already has. The widgets are the rows of FIELDS,
one per TrainConfig field (a number's range is aecore.config.RANGES'): a new field is a new row.

The URL mirrors the configuration, so a link reproduces a run. Query values that differ from
what this session last wrote (a new link, a reload, back/forward) are the user's choice and are
read through aecore.config.config_from_strings: a value out of range becomes the nearest allowed
one, with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import streamlit as st

from aecore.config import (
    LEVEL_SAMPLINGS,
    LOSSES,
    OPTIMIZERS,
    PRECISION_LABELS,
    PRECISIONS,
    RANGES,
    TrainConfig,
    config_from_strings,
)
from aecore.corruptions import CORRUPTIONS, has_level
from aecore.data import DATASETS, available_offline
from aecore.models import MODELS, REGULARIZERS, has_weight, is_variational
from aecore.presets import DEFAULT_KIND, preset_config
from app_pages import _nav

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


# -- the fields: one row per TrainConfig field -------------------------------------------------


def _label(registry) -> Callable[[str], str]:
    return lambda name: registry[name].label


def _dataset_label(name: str) -> str:
    return DATASETS[name].label + ("" if available_offline(name) else " (not downloaded)")


def _has_level(values: dict[str, Any]) -> bool:
    return has_level(values["corruption"])


def _model_uses(what: str, default: bool) -> Callable[[dict[str, Any]], bool]:
    return lambda values: bool(MODELS[values["model"]].meta.get(what, default))


def _not_vae(values: dict[str, Any]) -> bool:
    return not is_variational(values["model"])  # a VAE's KL term is its regulariser


def _precision_note(values: dict[str, Any]) -> str:
    """A warning under the choice where bf16 would be emulated on the training device."""
    from aecore.train import native_bf16, pick_device  # here: the training loop's imports

    if values["precision"] != "bf16" or native_bf16(pick_device()):
        return ""
    return "This computer has no bfloat16 arithmetic: bf16 would train slower here."


def _always(values: dict[str, Any]) -> bool:
    return True


@dataclass(frozen=True)
class Field:
    """One sidebar widget. kind: "select", "radio" (horizontal), "number" (its range is
    aecore.config.RANGES[name]), "checkbox", "text" or "level" (the corruption's own range, from
    its meta; `label` may name {level_name}). shown(values) decides whether this run draws it."""

    name: str
    kind: str
    label: str
    options: Callable[[], Sequence[str]] | None = None
    format_func: Callable[[str], str] | None = None
    shown: Callable[[dict[str, Any]], bool] = _always
    help: str | None = None
    step: float | None = None  # number inputs: the +/- step
    fmt: str | None = None  # number inputs: the display format
    in_expander: bool = False  # under "Training settings"
    caption: Callable[[dict[str, Any]], str] | None = None  # a line under the widget


FIELDS: tuple[Field, ...] = (
    Field("dataset", "select", "Dataset", DATASETS.names, _dataset_label),
    Field("corruption", "select", "Corruption", CORRUPTIONS.names, _label(CORRUPTIONS)),
    Field(
        "level",
        "level",
        "Training level: {level_name}",
        shown=_has_level,
        help="The corruption the model is trained on; it is part of the run's settings.",
    ),
    Field(
        "level_sampling",
        "radio",
        "Training levels",
        lambda: LEVEL_SAMPLINGS,
        SAMPLING_LABELS.get,
        shown=_has_level,
        help="Uniform: each training batch draws its level from 0 up to the one above, so "
        "one model handles every level up to it. Validation and test use the level itself.",
    ),
    # The caption repeats the model's name: it wraps, where the box cuts a long name off.
    Field(
        "model",
        "select",
        "Model",
        MODELS.names,
        _label(MODELS),
        caption=lambda values: MODELS[values["model"]].label,
    ),
    Field(
        "latent",
        "number",
        "Code size (latent units)",
        shown=_model_uses("uses_latent", True),
        step=1,
    ),
    Field(
        "width",
        "number",
        "Hidden width w (layers 2w, w)",
        shown=_model_uses("uses_width", False),
        step=32,
    ),
    Field("regularizer", "select", "Regulariser on the code", lambda: REGULARIZERS, shown=_not_vae),
    Field(
        "reg_weight",
        "number",
        "Regulariser weight",
        shown=lambda values: _not_vae(values) and has_weight(values["regularizer"]),
        step=1e-4,
        fmt="%.5f",
    ),
    Field(
        "beta",
        "number",
        "β: weight of the KL term",
        shown=lambda values: not _not_vae(values),
        help="1 trains the plain VAE (the ELBO). Above 1 the codes are pulled harder towards "
        "N(0, I): smoother samples, blurrier reconstructions. Below 1: the reverse.",
        step=0.5,
        fmt="%.2f",
    ),
    Field("loss", "radio", "Reconstruction loss", lambda: LOSSES, in_expander=True),
    Field("optimizer", "radio", "Optimizer", lambda: OPTIMIZERS, in_expander=True),
    Field(
        "precision",
        "radio",
        "Arithmetic",
        lambda: PRECISIONS,
        PRECISION_LABELS.get,
        help="bfloat16 mixed: the matrix products and convolutions of training in 16-bit "
        "floats, weights and loss in 32-bit. On a CPU with AVX-512 BF16 or AMX an epoch took "
        "up to a quarter less in our benchmarks, at test losses within 3.5% of float32's. "
        "Testing is always float32.",
        in_expander=True,
        caption=_precision_note,
    ),
    Field("lr", "number", "Learning rate", step=1e-4, fmt="%.6f", in_expander=True),
    Field("batch_size", "number", "Batch size", step=32, in_expander=True),
    Field("epochs", "number", "Epochs", step=1, in_expander=True),
    Field("limit_train", "number", "Training images (0 = all)", step=1000, in_expander=True),
    Field(
        "classes",
        "text",
        "Train on classes (empty = all)",
        help="For example 0-4 or 1,7: the model sees only these classes while it trains; the "
        "test set keeps every class (the Anomaly detection page flags the others).",
        in_expander=True,
    ),
    Field("augment", "checkbox", "Augment (flips, small rotations)", in_expander=True),
    Field("seed", "number", "Seed", step=1, in_expander=True),
)


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


def as_query(cfg: TrainConfig) -> dict[str, str]:
    """cfg as a URL's query holds it."""
    return {k: str(v) for k, v in cfg.to_dict().items()}


def _write_query(cfg: TrainConfig) -> None:
    wanted = as_query(cfg)
    changed = {k: v for k, v in wanted.items() if st.query_params.get(k) != v}
    if changed:  # one update, one browser history entry (each assignment would add one)
        st.query_params.update(changed)
    st.session_state[WRITTEN] = wanted
    _nav.carry(wanted)  # the sidebar menu's links carry these settings


def settings_now() -> dict[str, str] | None:
    """The session's configuration as the URL would hold it; None if it is not valid."""
    try:
        cfg = TrainConfig.from_dict(current_values())
    except ValueError:
        return None
    return as_query(cfg)


_nav.settings_now = settings_now  # for the menu, which must not import this module (torch)


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
            if has_level(values["corruption"]):
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
    if name == "corruption" and has_level(values[name]):
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


def _draw(where, field: Field, values: dict[str, Any]) -> None:
    """One field's widget; its value comes from the seeded key, edits go through _changed."""
    common = {"on_change": _changed, "args": (field.name,), "help": field.help}
    if field.kind == "level":
        corruption = values["corruption"]
        label = field.label.format(level_name=CORRUPTIONS[corruption].meta["level_name"])
        level_slider(where, corruption, label, _level_key(corruption), **common)
    elif field.kind == "number":
        cast = float if FIELD_TYPES[field.name] == "float" else int
        low, high = RANGES[field.name]
        where.number_input(
            field.label,
            cast(low),
            cast(high),
            step=cast(field.step),
            format=field.fmt,
            key=PREFIX + field.name,
            **common,
        )
    elif field.kind == "checkbox":
        where.checkbox(field.label, key=PREFIX + field.name, **common)
    elif field.kind == "text":
        where.text_input(field.label, key=PREFIX + field.name, max_chars=60, **common)
    else:
        widget = where.radio if field.kind == "radio" else where.selectbox
        extra = {"horizontal": True} if field.kind == "radio" else {}
        if field.format_func is not None:
            extra["format_func"] = field.format_func
        widget(field.label, field.options(), key=PREFIX + field.name, **common, **extra)
    caption = field.caption(values) if field.caption is not None else ""
    if caption:
        where.caption(caption)


def level_slider(
    where,
    corruption: str,
    label: str,
    key: str,
    start: float | None = None,
    note: str | None = None,
    **kwargs: Any,
) -> float | None:
    """The app's one corruption-level slider: over the corruption's range and step (integer
    levels stay integers), starting at `start` (None: at the value in st.session_state[key]),
    with `note` as a caption under it; kwargs go to st.slider. None, and nothing drawn, if the
    corruption takes no level."""
    if not has_level(corruption):
        return None
    meta = CORRUPTIONS[corruption].meta
    cast = int if meta.get("integer") else float
    value = {} if start is None else {"value": cast(start)}
    level = where.slider(
        label,
        min_value=cast(meta["min"]),
        max_value=cast(meta["max"]),
        step=cast(meta["step"]),
        key=key,
        **value,
        **kwargs,
    )
    if note is not None:
        where.caption(note)
    return level


def config_sidebar() -> TrainConfig:
    """The configuration widgets in the sidebar, one per shown row of FIELDS; returns a valid
    TrainConfig or shows why not and stops the page."""
    values = current_values()
    _seed_widgets(values)
    bar = st.sidebar
    bar.header("Configuration")
    for field in FIELDS:
        if not field.in_expander and field.shown(values):
            _draw(bar, field, values)
    with bar.expander("Training settings"):
        for field in FIELDS:
            if field.in_expander and field.shown(values):
                _draw(st, field, values)
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
