"""Streamlit-only helpers shared by the pages: the job manager, the session id, cached data
accessors, saved runs and links. The configuration sidebar lives in pages/_config.py and is
re-exported here, so pages import one module.

The leading underscore keeps this file out of any page list; st.navigation lists pages explicitly.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pandas as pd
import streamlit as st
import torch
from streamlit.errors import StreamlitPageNotFoundError
from streamlit.runtime.pages_manager import PagesManager

from aecore import classifier, latent, sweep
from aecore.checkpoints import BUNDLED_DIR, Checkpoint, CheckpointError, load_checkpoint, runs_dir
from aecore.config import TrainConfig
from aecore.corruptions import CORRUPTIONS
from aecore.data import DATASETS, DatasetUnavailable, ImageDataset, data_dir, load_dataset
from aecore.evaluate import corrupted_test_set, evaluate
from aecore.jobs import JobManager
from aecore.models import build_model, count_params, summary
from aecore.pretrain import bundled_names
from pages._config import config_sidebar, default_config, open_config

__all__ = ["config_sidebar", "default_config", "open_config"]  # re-exported for the pages


def ensure_router() -> None:
    """Call first on every page. With a pages/ folder next to the entrypoint, Streamlit 1.67
    decides per process, at the first session, whether it is an old-style pages/ app; if that
    first visit opens /train directly, the page runs without streamlit_app.py (wrong sidebar, no
    page config). st.navigation clears the flag on its first call; this clears it sooner and
    reruns through the router, keeping the URL's page and query (streamlit/streamlit#10276)."""
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


@st.cache_resource
def jobs() -> JobManager:
    """The one job manager of this process, shared by every session (thread-safe)."""
    return JobManager(workers=1, max_queue=16, per_session=2)


def session_id() -> str:
    """A random id per browser session; the job manager counts runs per session with it."""
    if "session_id" not in st.session_state:
        st.session_state["session_id"] = uuid.uuid4().hex
    return st.session_state["session_id"]


# -- cached data ---------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the dataset...")
def _load(name: str, where: str) -> ImageDataset:
    return load_dataset(name, where)  # `where` in the key: a changed AECORE_DATA_DIR reloads


def dataset(name: str) -> ImageDataset:
    """The dataset, or an error message and a stopped page if it cannot be had."""
    try:
        return _load(name, str(data_dir()))
    except DatasetUnavailable as err:
        st.error(str(err))
        st.stop()


@st.cache_data(max_entries=64, show_spinner=False)
def _test_images(name: str, corruption: str, level: float, stop: int, where: str):
    return corrupted_test_set(_load(name, where), corruption, level, "cpu", limit=stop)


def test_images(
    cfg: TrainConfig, n: int = 10, start: int = 0, level: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, corrupted) test images start..start+n, float (n, C, H, W), corrupted as cfg says
    (at `level` if given). The noise has a fixed seed, so the images match the test metrics."""
    dataset(cfg.dataset)  # shows the error and stops if the data is missing
    level = cfg.level if level is None else level
    clean, noisy = _test_images(cfg.dataset, cfg.corruption, level, start + n, str(data_dir()))
    return clean[start:], noisy[start:]


@st.cache_data(max_entries=128, show_spinner="Evaluating on test images...")
def evaluate_at(_ckpt: Checkpoint, key: str, corruption: str, level: float, limit: int):
    """Test metrics of a run (key = its config key) on `limit` test images corrupted as given;
    the same keys as Checkpoint.metrics."""
    cfg = _ckpt.config
    ds = dataset(cfg.dataset)
    return evaluate(_ckpt.model, ds, corruption, level, cfg.loss, limit=limit)


@st.cache_data(max_entries=16, show_spinner="Encoding the test images...")
def latent_points(_ckpt: Checkpoint, key: str, n: int, method: str):
    """(codes (n, L), 2-D points (M, 2), method used) for the first n test images of run `key`.
    t-SNE keeps the first latent.TSNE_MAX_POINTS only, so M <= n."""
    ds = dataset(_ckpt.config.dataset)
    codes = latent.encode_all(_ckpt.model, ds.test_images[:n])
    points, used = latent.project_2d(codes, method)
    return codes, points, used


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


@st.cache_data(show_spinner=False)
def _bundled_names() -> dict[str, str]:
    return bundled_names()


def run_label(cfg: TrainConfig) -> str:
    """A short human name for a run: a bundled model's manifest name, else model, data,
    corruption and key."""
    name = _bundled_names().get(cfg.key())
    if name is not None:
        return f"{name} (bundled)"
    level = "" if cfg.corruption == "none" else f" {cfg.level:g}"
    return f"{cfg.model} | {cfg.dataset} | {cfg.corruption}{level} | {cfg.key()[:6]}"


def level_slider(where, corruption: str, start: float, label: str, key: str) -> float | None:
    """A slider over the corruption's level range, starting at `start`; None if the corruption
    has no level (its only level is 0)."""
    meta = CORRUPTIONS[corruption].meta
    if meta["max"] <= meta["min"]:
        return None
    cast = int if meta.get("integer") else float
    low, high, step = cast(meta["min"]), cast(meta["max"]), cast(meta["step"])
    return where.slider(label, low, high, cast(start), step=step, key=key)


def page_link(page: str, label: str, icon: str | None = None) -> None:
    """st.page_link, or plain text when the page is run on its own (AppTest runs one page file
    without the router, so no other page is registered)."""
    try:
        st.page_link(page, label=label, icon=icon)
    except StreamlitPageNotFoundError:
        st.markdown(f"**{label}** (open it from the sidebar)")


def switch_page(page: str, cfg: TrainConfig) -> None:
    """Open `page` with cfg in its URL; run on its own (AppTest), only the URL changes."""
    query = {k: str(v) for k, v in cfg.to_dict().items()}
    try:
        st.switch_page(page, query_params=query)
    except StreamlitPageNotFoundError:
        st.query_params.update(query)
        st.success("Settings loaded: open Train from the sidebar.")


def checkpoint_bytes(ckpt: Checkpoint, read: bool = True) -> bytes | None:
    """The checkpoint file's bytes (b"" with read=False), or None if it has no file."""
    path = ckpt.info.get("path")
    if not path or not Path(path).is_file():
        return None
    return Path(path).read_bytes() if read else b""


# -- the Compare page's sweep and classifier ------------------------------------------------------


@st.cache_data(max_entries=16, show_spinner="Fitting PCA and reconstructing...")
def sweep_data(_runs: dict, dataset_name: str, keys: tuple, n: int = 10):
    """(sweep points, image rows) of the latent-size sweep; `keys` (latent, run key or None)
    stands for `_runs` in the cache key."""
    ds = dataset(dataset_name)
    return sweep.sweep_points(ds, _runs), sweep.sweep_rows(ds, _runs, n)


@st.cache_resource
def classifiers() -> classifier.ClassifierTrainer:
    """The one background trainer of classifiers, shared by every session."""
    return classifier.ClassifierTrainer()


@st.cache_data(max_entries=32, show_spinner="Classifying the test images...")
def classifier_accuracies(
    _clf, clf_key: str, _models: dict, keys: tuple, dataset_name: str, corruption, level, limit
) -> dict[str, float]:
    """aecore.classifier.accuracies, cached; clf_key and `keys` (name, run key) stand for the
    classifier and the models in the cache key."""
    return classifier.accuracies(
        _clf.model, dataset(dataset_name), corruption, level, _models, limit
    )
