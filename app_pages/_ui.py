"""Streamlit-only helpers shared by the pages: the job manager, the session id, cached data
accessors, saved runs and links. The configuration sidebar lives in app_pages/_config.py and is
re-exported here, so pages import one module.

The leading underscore keeps this file out of any page list; st.navigation lists pages explicitly.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from pathlib import Path

import pandas as pd
import streamlit as st
import torch
from streamlit.errors import StreamlitPageNotFoundError

from aecore import best_classical, classifier, latent, settings, sweep, train
from aecore.checkpoints import (
    BUNDLED_DIR,
    Checkpoint,
    CheckpointError,
    CheckpointUnavailable,
    checkpoint_mtime,
    download_bytes,
    load_checkpoint,
    runs_dir,
)
from aecore.config import TrainConfig, describe_run
from aecore.data import DATASETS, DatasetUnavailable, ImageDataset, data_dir, load_dataset
from aecore.evaluate import corrupted_test_set, evaluate
from aecore.gpu import job_workers
from aecore.jobs import BytesLRU, JobManager, model_bytes
from aecore.models import build_model, count_params, summary
from aecore.pretrain import bundled_names, read_manifest
from aecore.runindex import RunEntry, list_runs
from app_pages import _nav
from app_pages._config import (
    as_query,
    config_sidebar,
    current_values,
    default_config,
    level_slider,
    open_config,
)

# re-exported for the pages
log = logging.getLogger("aecore.app")
__all__ = ["config_sidebar", "current_values", "default_config", "level_slider", "open_config"]


@st.cache_resource
def jobs() -> JobManager:
    """The one job manager of this process, shared by every session (thread-safe): the
    training cluster's (aecore.cluster) when AECORE_CLUSTER names one, else the in-process one."""
    address = settings.current().cluster
    if address:
        from aecore.cluster import ClusterJobs  # lazily: distributed is an optional extra

        cluster = ClusterJobs(
            address, max_queue=16, per_session=2, budget_seconds=run_budget_seconds()
        )
        cluster.stop_on_exit()
        return cluster  # type: ignore[return-value]  # JobManager's public surface
    manager = JobManager(
        workers=job_workers(train.pick_device()),  # one run at a time on a CPU, several on a GPU
        max_queue=16,
        per_session=2,
        budget_seconds=run_budget_seconds(),
        state_file=runs_dir() / ".queue.json",
    )
    manager.stop_on_exit()  # a redeploy's SIGTERM: cancel the runs, let the process end
    return manager


def run_budget_seconds() -> float:
    """The longest run this server takes, in estimated seconds: AECORE_RUN_BUDGET_S, else 5
    minutes. The command line has no budget."""
    return settings.current().run_budget_s


def session_id() -> str:
    """A random id per browser session (one tab, until it reloads)."""
    if "session_id" not in st.session_state:
        st.session_state["session_id"] = uuid.uuid4().hex
    return st.session_state["session_id"]


def trained_run(cfg: TrainConfig) -> Checkpoint | None:
    """The finished run of cfg (memory, runs folder, bundled) or None; a file that cannot be
    read just now (the server is short of memory) stops the page with a plain message."""
    try:
        return jobs().result(cfg)
    except CheckpointUnavailable as err:
        st.warning(str(err), icon=":material/hourglass_empty:")
        st.stop()


def keep_alive() -> None:
    """Tell the job manager this session is still here (runs nobody watches stop), and tell a
    visitor once if the last restart dropped a run of theirs."""
    manager = jobs()
    manager.touch(session_id())
    dropped = manager.dropped_for(visitor_id())
    if dropped:
        st.warning(
            "The server restarted while your training run was queued or running, and it was "
            f"dropped: {'; '.join(dropped)}. Open Train and press Train to start it again.",
            icon=":material/restart_alt:",
        )


def visitor_id() -> str:
    """Who is asking, the same across reloads and tabs of one browser: the token in Streamlit's
    XSRF cookie (set for every browser that loads the app; the cookie's value is re-masked on
    each load, the token under the mask stays), else the client's address. A visitor who clears
    cookies, or a script that fetches a new cookie per connection, counts as new: the per-run
    budget and the turn-taking queue bound what that costs everyone else."""
    cookie = st.context.cookies.get("_streamlit_xsrf", "")
    token = _xsrf_token(cookie) if isinstance(cookie, str) else b""
    if token:
        return "browser:" + hashlib.sha256(token).hexdigest()[:16]
    address = st.context.ip_address
    if isinstance(address, str) and address:
        return f"address:{address}"
    return f"session:{session_id()}"  # no cookie and no address (a test harness)


def _xsrf_token(cookie: str) -> bytes:
    """The token in a Tornado version-2 XSRF cookie ("2|mask|masked token|time"), or b""."""
    try:
        version, mask, masked, _ = cookie.split("|")
        mask_bytes, masked_bytes = bytes.fromhex(mask), bytes.fromhex(masked)
    except ValueError:
        return b""
    if version != "2" or len(mask_bytes) != 4:
        return b""
    return bytes(b ^ mask_bytes[i % 4] for i, b in enumerate(masked_bytes))


# -- cached data ---------------------------------------------------------------------------------


@st.cache_resource(show_spinner="Loading the dataset...")
def _load(name: str, where: str) -> ImageDataset:
    return load_dataset(name, where)  # `where` in the key: a changed AECORE_DATA_DIR reloads


def dataset(name: str) -> ImageDataset:
    """The dataset, or an error message and a stopped page if it cannot be had."""
    try:
        return _load(name, str(data_dir()))
    except DatasetUnavailable as err:
        log.warning("%s", err.detail)  # the folder and the settings: for whoever runs the server
        st.error(str(err))
        st.stop()


def _checkpoint_identity(ckpt: Checkpoint) -> str:
    """A run in a cache key: its config key, which names its checkpoint (the weights are not
    hashed: a run's config decides them, and hashing megabytes on every page run would cost)."""
    return ckpt.config.key()


def _dataset_identity(ds: ImageDataset) -> tuple:
    """A dataset in a cache key: its name and a fingerprint of its test images (their shape and
    the bytes of the first 64), so the same data from another folder shares the entries."""
    head = ds.test_images[:64].contiguous().numpy().tobytes()
    return ds.name, tuple(ds.test_images.shape), hashlib.sha256(head).hexdigest()


# For st.cache_data: callers pass runs and datasets themselves, and these say what identifies
# them (Streamlit would otherwise try to hash a model's and a dataset's tensors).
HASH_FUNCS = {
    Checkpoint: _checkpoint_identity,
    ImageDataset: _dataset_identity,
    classifier.Classifier: lambda clf: clf.spec.key(),  # its spec decides its weights
}


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=HASH_FUNCS)
def _test_images(ds: ImageDataset, corruption: str, level: float, stop: int):
    return corrupted_test_set(ds, corruption, level, "cpu", limit=stop)


def test_images(
    cfg: TrainConfig, n: int = 10, start: int = 0, level: float | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, corrupted) test images start..start+n, float (n, C, H, W), corrupted as cfg says
    (at `level` if given). The noise has a fixed seed, so the images match the test metrics."""
    ds = dataset(cfg.dataset)  # shows the error and stops if the data is missing
    level = cfg.level if level is None else level
    clean, noisy = _test_images(ds, cfg.corruption, level, start + n)
    return clean[start:], noisy[start:]


@st.cache_data(max_entries=128, show_spinner="Evaluating on test images...", hash_funcs=HASH_FUNCS)
def evaluate_at(ckpt: Checkpoint, corruption: str, level: float, limit: int, pca: bool = True):
    """Test metrics of a run on `limit` test images corrupted as given; the same keys as
    Checkpoint.metrics (less the PCA baseline's with pca=False, which spares its fit). The
    baselines' metrics (the same for every run) are kept in the runs folder's baselines/
    subfolder, so a restart does not filter again."""
    cfg = ckpt.config
    ds = dataset(cfg.dataset)
    cache = runs_dir() / "baselines"
    return evaluate(
        ckpt.model, ds, corruption, level, cfg.loss, limit=limit, cache_dir=cache, pca=pca
    )


@st.cache_data(
    max_entries=128,
    show_spinner="Tuning the classical methods on validation images (once per task)...",
    hash_funcs=HASH_FUNCS,
)
def strongest_classical(
    ds: ImageDataset, corruption: str, level: float, limit: int | None = None
) -> best_classical.BestClassical | None:
    """The best tuned classical method for the task and its test metrics on the first `limit`
    test images (all: None); kept on disk too, so only the first visit waits."""
    return best_classical.best_classical(ds, corruption, level, limit)


@st.cache_data(max_entries=16, show_spinner="Encoding the test images...", hash_funcs=HASH_FUNCS)
def latent_points(ckpt: Checkpoint, n: int, method: str):
    """(codes (n, L), 2-D points (M, 2), method used) for the first n test images of the run.
    t-SNE keeps the first latent.TSNE_MAX_POINTS only, so M <= n."""
    ds = dataset(ckpt.config.dataset)
    codes = latent.encode_all(ckpt.model, ds.test_images[:n])
    points, used = latent.project_2d(codes, method)
    return codes, points, used


@st.cache_data(max_entries=64, show_spinner=False)
def model_summary(cfg: TrainConfig) -> tuple[pd.DataFrame, int]:
    """Keras-style layer table of cfg's model (before training) and its parameter count."""
    shape = tuple(DATASETS[cfg.dataset].meta["shape"])
    model = build_model(cfg, shape)
    rows = [
        {"layer": r.name, "type": r.kind, "output shape": str(r.output_shape), "params": r.params}
        for r in summary(model)
    ]
    return pd.DataFrame(rows), count_params(model)


# -- saved runs ----------------------------------------------------------------------------------


def saved_runs() -> list[RunEntry]:
    """The saved runs of the runs folder, then the bundled ones, newest first in each, from
    their index (aecore.runindex): configs and test metrics, no weights loaded. A file that
    another session's save evicts while this runs is left out, not an error."""
    return [*list_runs(runs_dir()), *list_runs(BUNDLED_DIR)]


LOADED_RUNS_BYTES = 128 * 2**20  # weights of runs loaded from files, kept for every session


@st.cache_resource
def _loaded_runs() -> BytesLRU:
    """Runs loaded from files (Home, Compare, saved-run lists), shared by every session and
    bounded in bytes: a handful of very wide models cannot fill the server's memory."""
    return BytesLRU(LOADED_RUNS_BYTES)


def load_run(path: Path, warn: bool = False) -> Checkpoint | None:
    """The checkpoint at path, or None if it is unreadable or was evicted meanwhile. With
    warn=True (a run the visitor picked from a list), why it cannot be opened is shown."""
    mtime = checkpoint_mtime(path)
    if mtime is None:
        if warn:
            st.warning(f"{path.name[:80]!r} was just removed to make room for newer runs.")
        return None
    cache, key = _loaded_runs(), (str(path), mtime)
    cached = cache.get(key)
    if isinstance(cached, CheckpointError):  # read before and refused: not read again
        if warn:
            st.warning(str(cached), icon=":material/broken_image:")
        return None
    if cached is not None:
        return cached
    try:
        ckpt = load_checkpoint(path)
    except CheckpointUnavailable as err:  # short of memory for now: not cached as unreadable
        st.warning(str(err))
        return None
    except CheckpointError as err:
        cache.put(key, err, 0)  # an unreadable file is skipped or explained, not an error page
        if warn:
            st.warning(str(err), icon=":material/broken_image:")
        return None
    ckpt.info["path"] = str(path)
    cache.put(key, ckpt, model_bytes(ckpt.model))
    return ckpt


@st.cache_data(show_spinner=False)
def _bundled_names() -> dict[str, str]:
    return bundled_names()


@st.cache_data(show_spinner=False)
def bundled_metrics() -> dict[str, dict[str, float]]:
    """Config key -> recorded test metrics of every bundled model (no checkpoint is loaded)."""
    entries = read_manifest()[1]
    return {e.config.key(): e.record.get("metrics", {}) for e in entries if e.record}


def run_label(cfg: TrainConfig) -> str:
    """A run's name in words: what it is, then what differs from the app's default settings;
    "(bundled)" when it ships with the app."""
    name = describe_run(cfg, default_config())
    return f"{name} (bundled)" if cfg.key() in _bundled_names() else name


def page_link(page: str, label: str, icon: str | None = None) -> None:
    """st.page_link carrying the session's settings (one browser history entry, as the sidebar's
    menu: app_pages/_nav.py), or plain text when the page is run on its own (AppTest runs one page
    file without the router, so no other page is registered)."""
    try:
        query = st.session_state.get(_nav.QUERY, {})
        st.page_link(page, label=label, icon=icon, query_params=query)
    except StreamlitPageNotFoundError:
        st.markdown(f"**{label}** (open it from the sidebar)")


def switch_page(page: str, cfg: TrainConfig) -> None:
    """Open `page` with cfg in its URL; run on its own (AppTest), only the URL changes."""
    query = as_query(cfg)
    try:
        st.switch_page(page, query_params=query)
    except StreamlitPageNotFoundError:
        st.query_params.update(query)
        st.success("Settings loaded: open Train from the sidebar.")


def checkpoint_bytes(ckpt: Checkpoint, read: bool = True) -> bytes | None:
    """The checkpoint file's bytes (b"" with read=False), or None if the run was never saved.
    A file evicted since the page listed it is written again from the run in memory."""
    if not ckpt.info.get("path"):
        return None
    return (download_bytes(ckpt) or b"") if read else b""


# -- the Compare page's sweep and classifier ------------------------------------------------------


@st.cache_data(
    max_entries=16, show_spinner="Fitting PCA and reconstructing...", hash_funcs=HASH_FUNCS
)
def sweep_data(runs: dict[int, Checkpoint | None], dataset_name: str, n: int = 10):
    """(sweep points, image rows) of the latent-size sweep over runs {latent: run or None}."""
    ds = dataset(dataset_name)
    return sweep.sweep_points(ds, runs), sweep.sweep_rows(ds, runs, n)


@st.cache_data(max_entries=32, show_spinner="Classifying the test images...", hash_funcs=HASH_FUNCS)
def classifier_accuracies(
    clf: classifier.Classifier,
    runs: dict[str, Checkpoint],
    dataset_name: str,
    corruption: str,
    level: float,
    limit: int,
) -> dict[str, float]:
    """aecore.classifier.accuracies of the runs {name: run} (and of the best tuned classical
    method's output), cached."""
    models = {name: run.model for name, run in runs.items()}
    ds = dataset(dataset_name)
    best = strongest_classical(ds, corruption, level, limit) if level > 0 else None
    return classifier.accuracies(clf.model, ds, corruption, level, models, limit, best)
