"""AppTest helpers: one page file per test, a fresh runs folder and fresh Streamlit caches.

Runs are trained on the bundled 8x8 digits for one epoch (a second or two on a CPU) once per
session, and each test that needs them points AECORE_RUNS_DIR at that folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from aecore.config import TrainConfig
from aecore.runs import train_and_save

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 120  # seconds per script run: a cold dataset load and PCA fit fit well within it

# A tiny denoiser with a 2-unit code (so the Latent page can draw its manifold) and a VAE.
TINY = TrainConfig(
    dataset="digits", corruption="gaussian", level=0.3, model="dense", latent=2, epochs=1
)
TINY_VAE = TrainConfig(dataset="digits", corruption="none", level=0.0, model="vae_mlp", latent=2)


def query(cfg: TrainConfig) -> dict[str, str]:
    """cfg as the page's URL holds it."""
    return {k: str(v) for k, v in cfg.to_dict().items()}


def page(name: str, cfg: TrainConfig | None = None) -> AppTest:
    """AppTest for app_pages/<name>.py (not yet run), with cfg in its query params if given."""
    at = AppTest.from_file(str(ROOT / "app_pages" / f"{name}.py"), default_timeout=TIMEOUT)
    if cfg is not None:
        at.query_params.update(query(cfg))
    return at


def rerun_until(at: AppTest, done: Callable[[AppTest], bool], timeout: float = 120.0) -> AppTest:
    """Rerun the page about once a second (as the live panel's fragment would) until done(at)."""
    t0 = time.monotonic()
    while not done(at):
        assert not at.exception, at.exception
        assert time.monotonic() - t0 < timeout, f"the page did not get there: {describe(at)}"
        time.sleep(0.5)
        at.run()
    return at


def describe(at: AppTest) -> str:
    """What the page shows, for failure messages."""
    parts = {
        "progress": [p.proto.text for p in at.get("progress")],
        "success": [e.value for e in at.success],
        "info": [e.value for e in at.info],
        "warning": [e.value for e in at.warning],
        "error": [e.value for e in at.error],
        "buttons": [b.label for b in at.button],
    }
    return repr({k: v for k, v in parts.items() if v})


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    """Each test gets a new job manager and no cached runs or images from the previous one."""
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


def use_runs_dir(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs come from `folder` only: the repo's bundled checkpoints are hidden, so what a page
    shows does not depend on which of them exist."""
    import aecore.checkpoints
    import app_pages._ui

    monkeypatch.setenv("AECORE_RUNS_DIR", str(folder))
    hidden = folder / "no-bundled-checkpoints"
    monkeypatch.setattr(aecore.checkpoints, "BUNDLED_DIR", hidden)
    monkeypatch.setattr(app_pages._ui, "BUNDLED_DIR", hidden)


@pytest.fixture
def empty_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runs folder with nothing trained in it."""
    use_runs_dir(tmp_path, monkeypatch)
    return tmp_path


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("trained_runs")
    for cfg in (TINY, TINY_VAE):
        train_and_save(cfg, device="cpu", out_dir=folder)
    return folder


@pytest.fixture
def trained_runs(trained_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A runs folder holding TINY and TINY_VAE, trained."""
    use_runs_dir(trained_dir, monkeypatch)
    return trained_dir
