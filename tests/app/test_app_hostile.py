"""Hostile links and a busy server, as a visitor meets them: query parameters that are out of
range, of the wrong type, path-like or very long give a warning and the defaults (never an error
page, never a file read or written because of them); a full queue or a used-up session limit is
a warning that says what to do, and a queued run shows its place in the queue."""

from __future__ import annotations

import builtins
import os
import threading
from functools import partial

import pytest

import app_pages._ui
from aecore.config import TrainConfig
from aecore.history import EpochStats
from aecore.jobs import JobManager
from tests.app.conftest import TINY, page, texts

MARKER = "aecore-hostile-marker"  # every path-like value below contains it

HOSTILE = [
    {"dataset": f"../../../../tmp/{MARKER}"},
    {"dataset": f"/tmp/{MARKER}.pt"},
    {"model": f"..%2F..%2F{MARKER}"},
    {"model": f"C:\\{MARKER}\\x"},
    {"corruption": f"../{MARKER}"},
    {"dataset": "digits", "latent": "-5"},
    {"dataset": "digits", "latent": "1e9"},
    {"dataset": "digits", "latent": "99999999999999999999999"},
    {"dataset": "digits", "level": "nan"},
    {"dataset": "digits", "level": "-inf"},
    {"dataset": "digits", "lr": "1e400"},
    {"dataset": "digits", "epochs": "0"},
    {"dataset": "digits", "seed": "-1"},
    {"dataset": "digits", "batch_size": "abc"},
    {"dataset": "digits", "augment": "maybe"},
    {"dataset": "digits", "level_sampling": f"../{MARKER}"},
    {"dataset": "x" * 20_000},
]


@pytest.fixture
def opened_paths(monkeypatch) -> list[str]:
    """Every path the process opens or stats while the page runs."""
    seen: list[str] = []
    real_open, real_os_open, real_stat = builtins.open, os.open, os.stat

    def spy(real):
        def wrapped(path, *args, **kwargs):
            if isinstance(path, str | bytes | os.PathLike):
                seen.append(os.fsdecode(path))
            return real(path, *args, **kwargs)

        return wrapped

    monkeypatch.setattr(builtins, "open", spy(real_open))
    monkeypatch.setattr(os, "open", spy(real_os_open))
    monkeypatch.setattr(os, "stat", spy(real_stat))
    return seen


@pytest.mark.parametrize("name", ["train", "denoise"])
@pytest.mark.parametrize(
    "bad", HOSTILE, ids=lambda bad: ",".join(f"{k}={v[:24]}" for k, v in bad.items())
)
def test_a_hostile_link_warns_and_touches_no_file(empty_runs, opened_paths, name, bad):
    at = page(name)
    at.query_params.update(bad)
    at.run()
    assert not at.exception
    assert "This link's settings" in texts(at.warning)
    assert opened_paths and not [p for p in opened_paths if MARKER in p]  # none became a path
    assert list(empty_runs.iterdir()) == []  # and nothing was written


def test_settings_that_are_not_config_fields_are_ignored(empty_runs, opened_paths):
    at = page("train")
    at.query_params.update({"checkpoint": f"../../{MARKER}.pt", "path": f"/{MARKER}"})
    at.run()
    assert not at.exception and not at.warning
    assert not [p for p in opened_paths if MARKER in p]


def test_a_hostile_value_is_clipped_and_not_rendered_as_markdown(empty_runs):
    at = page("train")
    at.query_params.update({"dataset": "[Log in again](https://evil.example/) " + "x" * 20_000})
    at.run()
    warning = texts(at.warning)
    assert len(warning) < 1000
    assert "[Log in again](https://evil.example/)" not in warning


# -- a busy server -------------------------------------------------------------------------------


def blocking_runner(release: threading.Event, cfg, on_epoch, should_stop, on_batch):
    """Holds the worker until released (or cancelled); saves nothing."""
    on_batch(0.5)
    on_epoch(EpochStats(1, cfg.epochs, 0.05, 0.05, 0.06, 0.06, 12.0, 0.1))
    while not release.wait(0.05):
        if should_stop():
            return None
    return None


@pytest.fixture
def busy(empty_runs, monkeypatch):
    """A job manager whose single worker is held by another visitor's run."""
    release = threading.Event()
    made: list[JobManager] = []

    def make(**kw) -> JobManager:
        manager = JobManager(runner=partial(blocking_runner, release), **kw)
        monkeypatch.setattr(app_pages._ui, "jobs", lambda: manager)
        made.append(manager)
        return manager

    yield make
    release.set()
    for m in made:
        m.shutdown()


def other(seed: int) -> TrainConfig:
    return TrainConfig(dataset="digits", model="dense", latent=2, epochs=1, seed=100 + seed)


def test_a_full_queue_is_a_warning_with_retry_advice(busy):
    manager = busy(max_queue=1)
    manager.submit(other(1), session="someone else")  # the only slot
    at = page("train", TINY).run()
    at.button(key="train").click().run()
    assert not at.exception and not at.error
    warning = texts(at.warning)
    assert "queue is full" in warning and "try again in a minute" in warning
    assert "still open at once" in warning  # what the visitor can do meanwhile
    assert at.button(key="train")  # the button is still there to try again


def test_joining_a_run_is_allowed_when_the_queue_is_full(busy):
    manager = busy(max_queue=1)
    manager.submit(TINY, session="someone else")  # the same configuration is being trained
    at = page("train", TINY).run()
    at.button(key="train").click().run()
    assert not at.exception and not at.warning
    assert "1 other session(s) wait for this same run" in texts(at.caption)


def test_a_queued_run_shows_its_position(busy):
    manager = busy(max_queue=4)
    manager.submit(other(1), session="a")  # running
    manager.submit(other(2), session="b")  # queued first
    at = page("train", TINY).run()
    at.button(key="train").click().run()
    assert not at.exception
    assert "Waiting in the queue (position 2)" in texts(at.info)


def test_the_session_limit_is_a_warning_that_says_what_to_do(busy):
    busy(per_session=1)
    at = page("train", TINY).run()
    at.button(key="train").click().run()
    at.number_input(key="cfg_latent").set_value(3).run()  # another config, same session
    at.button(key="train").click().run()
    assert not at.exception and not at.error
    warning = texts(at.warning)
    assert "limit is 1" in warning and "cancel one" in warning
