"""The runs folder is a bounded cache: least recently used runs go first, recency is real (loads
count), the bundled folder and the run just saved are never evicted, and a restart finds every
finished run that fits."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from aecore import runcache
from aecore.checkpoints import checkpoint_name, load_checkpoint, save_checkpoint
from aecore.config import TrainConfig
from aecore.jobs import JobManager
from aecore.models import build_model
from aecore.runs import train_and_save


@pytest.fixture(autouse=True)
def isolated_runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("AECORE_RUNS_MAX_MB", raising=False)
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")
    monkeypatch.setattr("aecore.settings.BUNDLED_DIR", tmp_path / "bundled")  # runcache's view
    return tmp_path / "runs"


def cfg(seed: int) -> TrainConfig:
    return TrainConfig(dataset="digits", model="dense", latent=2, epochs=1, seed=seed)


def save(c: TrainConfig, folder: Path, age: float = 0.0) -> Path:
    """An untrained checkpoint of c in folder, last used `age` seconds ago."""
    model = build_model(c, (1, 8, 8))
    path = save_checkpoint(folder / checkpoint_name(c), c, model, [], {}, {"shape": [1, 8, 8]})
    then = time.time() - age
    os.utime(path, (then, then))
    return path


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, 500 * 2**20),
        ("0", None),
        ("1.5", int(1.5 * 2**20)),
        ("abc", 500 * 2**20),
        ("-3", 500 * 2**20),
        ("inf", 500 * 2**20),
        ("nan", 500 * 2**20),
    ],
)
def test_the_limit_comes_from_the_environment(monkeypatch, caplog, value, expected):
    if value is not None:
        monkeypatch.setenv("AECORE_RUNS_MAX_MB", value)
    with caplog.at_level(logging.WARNING, logger="aecore.runcache"):
        assert runcache.max_bytes() == expected
    bad = value not in (None, "0", "1.5")
    assert ("AECORE_RUNS_MAX_MB" in caplog.text) == bad


def test_loading_marks_a_run_as_used_without_changing_its_mtime(isolated_runs):
    path = save(cfg(1), isolated_runs, age=3600)
    mtime = path.stat().st_mtime_ns
    load_checkpoint(path)
    assert path.stat().st_mtime_ns == mtime  # pages key their caches on it
    assert time.time() - runcache.last_used(path) < 60


def test_the_least_recently_used_runs_are_evicted_first(isolated_runs):
    old, middle, new = (
        save(cfg(s), isolated_runs, age) for s, age in [(1, 300), (2, 200), (3, 100)]
    )
    load_checkpoint(old)  # used just now: the middle one is now the least recently used
    size = old.stat().st_size
    removed = runcache.evict(isolated_runs, limit=2 * size + size // 2)
    assert removed == [middle]
    assert old.exists() and new.exists()


def test_the_run_just_saved_stays_even_if_it_alone_is_over_the_limit(isolated_runs):
    first, second = save(cfg(1), isolated_runs, 100), save(cfg(2), isolated_runs)
    assert runcache.evict(isolated_runs, limit=1, keep={second}) == [first]
    assert second.exists()


def test_bundled_checkpoints_and_subfolders_are_never_evicted(tmp_path, isolated_runs):
    bundled = tmp_path / "bundled"
    kept = save(cfg(1), bundled, age=10_000)
    assert runcache.evict(bundled, limit=1) == [] and kept.exists()
    nested = save(cfg(2), isolated_runs / "classifiers", age=10_000)  # another module's files
    assert runcache.evict(isolated_runs, limit=1) == [] and nested.exists()


def test_quarantined_files_go_before_any_good_run(isolated_runs):
    good = save(cfg(1), isolated_runs, age=10_000)
    bad = isolated_runs / "dense-digits-0123456789abcdef.pt.bad"
    bad.write_bytes(b"x" * 100)
    assert runcache.evict(isolated_runs, limit=good.stat().st_size) == [bad]


def test_stale_temporary_files_are_swept(isolated_runs, monkeypatch):
    """Where locks are unavailable, the age rule: untouched for STALE_TEMP_SECONDS means dead."""
    monkeypatch.setattr(runcache, "fcntl", None)
    isolated_runs.mkdir()
    fresh = isolated_runs / ".dense-digits-0123456789abcdef.pt.abc.tmp"
    stale = isolated_runs / ".dense-digits-0123456789abcdef.pt.def.tmp"
    for p in (fresh, stale):
        p.write_bytes(b"partial")
    old = time.time() - runcache.STALE_TEMP_SECONDS - 1
    os.utime(stale, (old, old))
    assert runcache.remove_stale_temps(isolated_runs) == [stale]
    assert fresh.exists()


@pytest.mark.skipif(runcache.fcntl is None, reason="no flock on this platform")
def test_a_temporary_file_no_live_save_holds_is_swept_at_once(isolated_runs):
    """With locks: the lock decides, not the age. A dead writer's file goes however young; a
    live save's file stays however old."""
    isolated_runs.mkdir()
    dead = isolated_runs / ".dense-digits-0123456789abcdef.pt.dead.tmp"
    live = isolated_runs / ".dense-digits-0123456789abcdef.pt.live.tmp"
    dead.write_bytes(b"partial")
    fd = os.open(live, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert runcache.hold_temp(fd)  # what save_checkpoint does with its temporary file
        os.write(fd, b"partial")
        os.utime(live, (1, 1))  # as old as can be
        assert runcache.remove_stale_temps(isolated_runs) == [dead]
        assert live.exists()
    finally:
        os.close(fd)  # the writer is gone: now it is stale too
    other = isolated_runs / ".queue.json.tmp"  # not a checkpoint's: another module's business
    other.write_text("{}")
    assert runcache.remove_stale_temps(isolated_runs) == [live]
    assert other.exists()


def test_training_keeps_the_folder_bounded_and_a_restart_finds_what_fits(
    isolated_runs, monkeypatch
):
    """Real runs (1 epoch of digits): with room for two, the third save evicts the least recently
    used; a new manager (an app restart) finds exactly the two that fit, and trains the third."""
    # Without snapshots, so the three files have one size (compressed snapshots differ by run).
    import functools

    import aecore.runs

    monkeypatch.setattr(aecore.runs, "train", functools.partial(aecore.runs.train, snapshots=False))
    configs = [cfg(s) for s in (1, 2, 3)]
    first = train_and_save(configs[0], device="cpu")
    size = Path(first.info["path"]).stat().st_size
    monkeypatch.setenv("AECORE_RUNS_MAX_MB", str(2.5 * size / 2**20))
    train_and_save(configs[1], device="cpu")
    time.sleep(0.05)
    load_checkpoint(first.info["path"])  # the first is used again: the second is now the oldest
    train_and_save(configs[2], device="cpu")
    on_disk = sorted(p.name for p in isolated_runs.glob("*.pt"))
    assert on_disk == sorted(checkpoint_name(c) for c in (configs[0], configs[2]))

    calls = []
    jobs = JobManager(runner=lambda c, **kw: calls.append(c.key()))
    try:
        for c in (configs[0], configs[2]):
            snap = jobs.submit(c, session="s").snapshot()
            assert snap.status == "done" and snap.cached
        jobs.submit(configs[1], session="s").wait(30)
        assert calls == [configs[1].key()]
    finally:
        jobs.shutdown()


def test_with_room_for_all_a_restart_finds_every_finished_run(isolated_runs):
    configs = [cfg(s) for s in (4, 5, 6)]
    for c in configs:
        save(c, isolated_runs)
    assert runcache.evict(isolated_runs, runcache.max_bytes()) == []
    jobs = JobManager(runner=lambda c, **kw: pytest.fail("nothing should train"))
    try:
        assert all(jobs.submit(c, session="s").snapshot().cached for c in configs)
    finally:
        jobs.shutdown()
