"""aecore.runindex: saved runs are listed from a small index, not by loading every checkpoint;
a missing or stale entry is rebuilt, an evicted run takes its entry with it, and a damaged
checkpoint that the index still lists is refused with a plain message when a page opens it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from aecore import runcache, runindex
from aecore.checkpoints import CheckpointCorrupt, checkpoint_name, load_checkpoint, save_checkpoint
from aecore.config import TrainConfig
from aecore.models import build_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runs(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "runs"
    monkeypatch.setenv("AECORE_RUNS_DIR", str(folder))
    monkeypatch.delenv("AECORE_RUNS_MAX_MB", raising=False)
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")
    return folder


@pytest.fixture
def loads(monkeypatch) -> list[str]:
    """Every torch.load call, by file."""
    seen, real = [], torch.load

    def counting(f, *args, **kwargs):
        seen.append(str(getattr(f, "name", f)))
        return real(f, *args, **kwargs)

    monkeypatch.setattr(torch, "load", counting)
    return seen


def cfg(seed: int) -> TrainConfig:
    return TrainConfig(dataset="digits", model="dense", latent=2, epochs=1, seed=seed)


def save(c: TrainConfig, folder: Path, psnr: float = 20.0, index: bool = True) -> Path:
    """An untrained run of c, saved (and indexed, as aecore.runs does) with test_psnr = psnr."""
    model = build_model(c, (1, 8, 8))
    info = {"shape": [1, 8, 8]}
    path = save_checkpoint(folder / checkpoint_name(c), c, model, [], {"test_psnr": psnr}, info)
    if index:
        runindex.write_entry(path, c, {"test_psnr": psnr}, info, 0)
    return path


def test_listing_twenty_runs_loads_no_checkpoint(runs, loads):
    paths = [save(cfg(i), runs, psnr=float(i)) for i in range(20)]
    listed = runindex.list_runs(runs)
    assert loads == []
    assert sorted(e.path for e in listed) == sorted(paths)
    assert {e.config.seed: e.metrics["test_psnr"] for e in listed} == {i: i for i in range(20)}
    entry = next(e for e in listed if e.path == paths[0])
    assert entry.size == paths[0].stat().st_size and len(entry.sha256) == 64


def test_a_missing_entry_is_rebuilt_once(runs, loads):
    path = save(cfg(1), runs, index=False)  # saved without an index entry (an older version)
    (entry,) = runindex.list_runs(runs)
    assert entry.config == cfg(1) and entry.metrics == {"test_psnr": 20.0}
    assert len(loads) == 1 and runcache.index_path(path).is_file()
    runindex.list_runs(runs)
    assert len(loads) == 1  # indexed now: not loaded again


def test_a_stale_or_edited_entry_is_rebuilt(runs, loads):
    path = save(cfg(1), runs, psnr=20.0)
    sidecar = runcache.index_path(path)
    old = json.loads(sidecar.read_text())
    save(cfg(1), runs, psnr=25.0, index=False)  # the run saved again; its entry not rewritten
    sidecar.write_text(json.dumps(old))
    assert [e.metrics["test_psnr"] for e in runindex.list_runs(runs)] == [25.0]
    assert len(loads) == 1
    data = json.loads(sidecar.read_text())
    data["metrics"]["test_psnr"] = 99.0  # edited by hand: its checksum no longer matches
    sidecar.write_text(json.dumps(data))
    assert [e.metrics["test_psnr"] for e in runindex.list_runs(runs)] == [25.0]
    assert len(loads) == 2


def test_an_evicted_run_leaves_no_index_entry(runs):
    old, new = save(cfg(1), runs), save(cfg(2), runs)
    then = old.stat().st_mtime - 3600
    os.utime(old, (then, then))
    evicted = runcache.evict(runs, limit=new.stat().st_size)
    assert evicted == [old] and not runcache.index_path(old).exists()
    assert runcache.index_path(new).exists()
    assert [e.path for e in runindex.list_runs(runs)] == [new]


def test_an_entry_whose_run_was_removed_otherwise_is_pruned(runs):
    path = save(cfg(1), runs)
    path.unlink()
    assert runindex.list_runs(runs) == [] and not runcache.index_path(path).exists()


def test_an_unreadable_unindexed_file_is_left_out_and_not_read_again(runs, loads):
    runs.mkdir()
    (runs / checkpoint_name(cfg(3))).write_bytes(b"not a checkpoint")
    assert runindex.list_runs(runs) == [] and runindex.list_runs(runs) == []
    assert len(loads) <= 1  # refused before torch.load, or once


def damage(path: Path) -> None:
    """Flip a byte in the weights, keeping the file's size and modification time."""
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_damaged_run_still_listed_is_refused_when_opened(runs, loads):
    path = save(cfg(1), runs)
    damage(path)
    assert [e.path for e in runindex.list_runs(runs)] == [path] and loads == []
    with pytest.raises(CheckpointCorrupt, match="damaged"):
        load_checkpoint(path)


def test_the_bundled_folder_is_listed_from_its_manifest(loads):
    listed = runindex.list_runs(ROOT / "checkpoints")
    assert loads == [] and len(listed) == len(list((ROOT / "checkpoints").glob("*.pt")))
    assert all(e.bundled and "test_psnr" in e.metrics for e in listed)
    assert not list((ROOT / "checkpoints").glob(".*.json"))  # no entries written there


def test_the_home_page_says_why_a_damaged_listed_run_cannot_be_opened(runs, monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import app_pages._ui

    monkeypatch.setattr(app_pages._ui, "BUNDLED_DIR", runs / "no-bundled-checkpoints")
    st.cache_data.clear()
    st.cache_resource.clear()
    damage(save(cfg(1), runs))
    at = AppTest.from_file(str(ROOT / "app_pages" / "home.py"), default_timeout=120).run()
    assert not at.exception
    assert any("damaged" in w.value for w in at.warning), [w.value for w in at.warning]
    st.cache_data.clear()
    st.cache_resource.clear()
