"""Watching a run learn (aecore.watch): snapshots, determinism, pause / resume / step through the
job manager, the auto-resume policy, and snapshots in checkpoints (new, old and bundled files)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import aecore.watch as watch_mod
from aecore import artifacts, pretrain
from aecore.checkpoints import CheckpointCorrupt, load_checkpoint, save_checkpoint
from aecore.config import TrainConfig
from aecore.data import load_dataset
from aecore.jobs import JobManager
from aecore.train import train
from aecore.watch import Watch, attach, from_record, to_record, watch_indices
from aecore.watch_plots import batch_loss_figure, code_bounds, code_figure, recon_figure

TIMEOUT = 60.0
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def isolated_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")


def cfg(**kw) -> TrainConfig:
    base = dict(dataset="digits", corruption="gaussian", level=0.3, model="dense", latent=2)
    return TrainConfig(**(base | {"epochs": 3, "batch_size": 64} | kw))


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def wait_until(pred, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.01)


# -- which images, what a snapshot holds ---------------------------------------------------------


def test_the_eight_images_are_the_first_of_each_class_then_the_second():
    labels = torch.tensor([3, 3, 0, 1, 0, 2, 1, 3])
    assert watch_indices(labels, 3) == [2, 3, 5]  # the first 0, 1 and 2
    assert watch_indices(labels, 6) == [2, 3, 5, 0, 4, 6]  # then the first 3, the second 0, 1
    ds = load_dataset("digits")
    idx = watch_indices(ds.test_labels)
    assert [int(ds.test_labels[i]) for i in idx] == list(range(8))
    assert idx == watch_indices(ds.test_labels)  # deterministic


def test_a_run_records_snapshots_from_the_start_to_the_end():
    c = cfg()
    result = train(c, device="cpu")
    w = result.watch
    steps = w.steps_per_epoch
    assert steps == -(-int(1500 * 0.9) // 64) and w.total_steps == 3 * steps
    kept = [s.step for s in w.snapshots]
    assert kept[0] == 0 and kept[-1] == w.total_steps == w.latest.step
    assert {1, 2, 4, 8, 16} <= set(kept)  # the early landmarks
    assert {steps, 2 * steps} <= set(kept)  # epoch ends (far enough apart here)
    assert kept == sorted(kept)
    snap = w.latest
    assert snap.recon.dtype == np.uint8 and snap.recon.shape == (8, 1, 8, 8)
    assert w.clean.shape == w.noisy.shape == (8, 1, 8, 8) and w.labels == tuple(range(8))
    assert not np.array_equal(w.clean, w.noisy)  # corrupted once with the run's corruption
    assert snap.codes.dtype == np.float16 and snap.codes.shape == (len(w.code_labels), 2)
    assert len(w.code_labels) == min(watch_mod.CODE_POINTS, 297)
    # Reconstructions change as it learns: the first (untrained) is far from the last.
    first = w.snapshots[0].recon.astype(float)
    assert np.abs(first - snap.recon).mean() > 5
    # One loss per batch (blocks of 1 here), finite, and going down.
    assert w.loss_every == 1 and len(w.losses) == w.total_steps
    assert np.isfinite(w.losses).all() and w.losses[-10:].mean() < w.losses[:10].mean()
    assert result.model._aecore_watch is w  # it travels with the model


def test_a_conv_model_without_a_2d_code_has_no_codes():
    w = train(cfg(model="conv_pool", latent=0, epochs=1), device="cpu").watch
    assert all(s.codes is None for s in w.snapshots) and w.code_labels is None


@pytest.mark.parametrize(
    "kw",
    [
        {},  # dense, 2-unit code
        {"model": "conv_pool", "latent": 0},  # BatchNorm: running statistics must stay put
        {"model": "vae_mlp", "corruption": "none", "level": 0.0, "loss": "bce"},  # sampling
    ],
)
def test_watching_does_not_change_what_is_learned(kw, monkeypatch):
    c = cfg(epochs=2, **kw)
    plain = train(c, device="cpu", snapshots=False)
    monkeypatch.setattr(watch_mod, "INTERVAL_S", 0.0)  # a snapshot before every batch
    watched = train(c, device="cpu")
    assert len(watched.watch.snapshots) > 10
    assert same_weights(weights(plain.model), weights(watched.model))
    assert [h.train_loss for h in plain.history] == [h.train_loss for h in watched.history]
    assert plain.watch is None


def test_kept_snapshots_are_capped_and_thinned_evenly(monkeypatch):
    monkeypatch.setattr(watch_mod, "INTERVAL_S", 0.0)
    w = train(cfg(epochs=20, batch_size=32), device="cpu").watch  # 860 batches, all candidates
    kept = [s.step for s in w.snapshots]
    landmarks = [0] + [2**k for k in range(9)]  # 0, 1, 2, ..., 256
    assert set(landmarks) <= set(kept)
    others = [s for s in kept if s not in landmarks]
    assert len(others) <= watch_mod.MAX_KEPT + 1  # the final one may come on top
    assert kept[-1] == w.total_steps
    gaps = np.diff(others[:-1])
    assert gaps.max() <= 2 * gaps.min()  # evenly spread over the run, not bunched at its start


# -- the checkpoint -------------------------------------------------------------------------------


def test_snapshots_round_trip_through_a_checkpoint_and_old_files_still_load(tmp_path):
    c = cfg()
    result = train(c, device="cpu")
    path = save_checkpoint(tmp_path / "run.pt", c, result.model, result.history, {}, {}, half=True)
    loaded = load_checkpoint(path, key=c.key())
    a, b = result.watch, loaded.watch
    assert [s.step for s in a.snapshots] == [s.step for s in b.snapshots]
    assert all(
        np.array_equal(x.recon, y.recon) for x, y in zip(a.snapshots, b.snapshots, strict=True)
    )
    assert all(
        np.array_equal(x.codes, y.codes) for x, y in zip(a.snapshots, b.snapshots, strict=True)
    )
    assert np.array_equal(a.losses, b.losses) and np.array_equal(a.noisy, b.noisy)
    assert (b.classes, b.labels, b.params) == (a.classes, a.labels, a.params)
    # A file without snapshots (as every file saved before them) loads, with watch None.
    attach(result.model, None)
    old = save_checkpoint(tmp_path / "old.pt", c, result.model, result.history, {}, {})
    assert load_checkpoint(old).watch is None


def test_the_bundled_checkpoints_still_load():
    files = sorted((REPO / "checkpoints").glob("*.pt"))
    assert files
    for path in files[:4]:
        ckpt = load_checkpoint(path)
        assert ckpt.model is not None and (ckpt.watch is None or ckpt.watch.snapshots)


def test_a_malformed_watch_record_is_refused_even_with_a_valid_checksum(tmp_path):
    c = cfg(epochs=1)
    result = train(c, device="cpu")
    path = save_checkpoint(tmp_path / "run.pt", c, result.model, result.history, {}, {})
    payload = torch.load(path, weights_only=True)
    record = artifacts.record_fields(payload)
    big = np.zeros((8, 1, 8, 8), np.uint8)
    record["watch"]["snapshots"][0]["recon"] = watch_mod._pack(np.zeros(10**6, np.uint8))
    record["watch"]["clean"] = watch_mod._pack(big[:4])
    torch.save(artifacts.seal(record, payload["state_dict"]), path)  # re-sealed: checksum fine
    with pytest.raises(CheckpointCorrupt):
        load_checkpoint(path)
    with pytest.raises(ValueError):
        from_record({**to_record(result.watch), "shape": [8, 1, 9999, 8]})


def test_pretrain_records_snapshots(tmp_path):
    c = cfg(corruption="none", level=0.0, epochs=1)
    path = tmp_path / "manifest.json"
    items = [{"name": "tiny", "purpose": "test", "config": c.to_dict()}]
    path.write_text(json.dumps({"dtype": "float16", "models": items}))
    (entry,) = pretrain.pretrain(["tiny"], path=path, device="cpu")
    w = load_checkpoint(entry.path).watch
    assert w is not None and w.snapshots[0].step == 0 and w.latest.step == w.total_steps


def test_figures_draw_a_snapshot():
    w = train(cfg(), device="cpu").watch
    snap = w.snapshots[3]
    grid = recon_figure(w, snap)
    assert len(grid.data) == 1 and list(grid.layout.xaxis.ticktext) == [str(i) for i in range(8)]
    curve = batch_loss_figure(w, snap.step, "MSE per pixel", whole=True)
    assert len(curve.data[-1].x) == snap.step and len(curve.data[0].x) == w.total_steps
    scatter = code_figure(w, snap, code_bounds(w))
    assert sum(len(t.x) for t in scatter.data) == len(w.code_labels)


# -- pause, resume, step, cancel through the job manager ----------------------------------------

LONG = dict(epochs=40, batch_size=16)  # ~3,400 batches: seconds, time enough to pause it


@pytest.fixture
def manager():
    jobs = JobManager(pause_seconds=600)
    yield jobs
    jobs.shutdown()


def started(jobs: JobManager, c: TrainConfig, session: str = "a"):
    job = jobs.submit(c, session=session)
    wait_until(lambda: job.snapshot().watch is not None)
    return job


def batches_done(job) -> int:
    s = job.snapshot()
    return round(s.fraction * s.watch.total_steps)


def settle(job) -> int:
    """The paused run's batch count, once it waits and its snapshot shows where it stopped."""
    wait_until(lambda: job.snapshot().held)
    assert job.snapshot().watch.latest.step == batches_done(job)
    return batches_done(job)


def test_pause_step_resume_leave_the_result_unchanged(manager):
    c = cfg(**LONG)
    job = started(manager, c)
    assert manager.pause(c.key(), "a") is None
    assert job.snapshot().paused
    at = settle(job)
    time.sleep(0.3)
    assert batches_done(job) == at and job.snapshot().active  # it really waits
    for _ in range(3):  # single steps: exactly one batch each, and a snapshot after it
        assert manager.step(c.key(), "a") is None
        wait_until(lambda n=at: batches_done(job) == n + 1)
        at = settle(job)
        assert job.snapshot().paused
    assert manager.resume(c.key(), "a")
    done = job.wait(TIMEOUT * 2)
    assert done.status == "done" and not done.paused
    assert done.watch is done.checkpoint.watch and done.watch.latest.step == done.watch.total_steps
    plain = train(c, snapshots=False)  # the same run, never paused nor watched
    assert same_weights(weights(plain.model), weights(done.checkpoint.model))


def test_cancel_while_paused_stops_the_run(manager):
    c = cfg(**LONG)
    job = started(manager, c)
    assert manager.pause(c.key(), "a") is None
    settle(job)
    assert manager.cancel(c.key(), "a")
    assert job.wait(10).status == "cancelled"


def test_only_the_one_session_a_run_is_for_may_pause_it(manager, monkeypatch):
    c = cfg(**LONG)
    job = started(manager, c)
    assert "not watching" in manager.pause(c.key(), "stranger")
    manager.submit(c, session="b")  # a second session waits for the same run
    assert "1 other session(s)" in manager.pause(c.key(), "a")
    assert not job.snapshot().paused
    manager.cancel(c.key(), "b")
    assert manager.pause(c.key(), "a") is None
    # A session joining a paused run resumes it: a shared run is nobody's to hold.
    manager.submit(c, session="c")
    wait_until(lambda: not job.snapshot().paused)
    assert "another session" in job.snapshot().note
    # Single steps are for small models only.
    manager.cancel(c.key(), "c")
    assert manager.pause(c.key(), "a") is None
    monkeypatch.setattr(watch_mod, "STEP_MAX_PARAMS", 10)
    assert "small models" in manager.step(c.key(), "a")
    manager.cancel(c.key(), "a")


def test_a_paused_run_resumes_by_itself_when_others_wait(make_short_pause):
    jobs = make_short_pause
    a = cfg(**LONG)
    job = started(jobs, a, session="a")
    assert jobs.pause(a.key(), "a") is None
    at = settle(job)
    time.sleep(0.6)  # nobody else waits: it may stay paused past the limit
    assert job.snapshot().paused and batches_done(job) == at
    other = jobs.submit(cfg(seed=5, epochs=1), session="b")
    assert other.snapshot().status == "queued"
    wait_until(lambda: not job.snapshot().paused, timeout=5)
    assert "Resumed by itself" in job.snapshot().note and "1 other run(s)" in job.snapshot().note
    refusal = jobs.pause(a.key(), "a")  # its pause is used up while the queue is not empty
    assert refusal is not None and "queue is empty" in refusal
    assert job.wait(TIMEOUT * 2).status == "done"
    assert other.wait(TIMEOUT).status == "done"


@pytest.fixture
def make_short_pause():
    jobs = JobManager(pause_seconds=0.3)
    yield jobs
    jobs.shutdown()


def test_a_paused_run_nobody_watches_any_more_stops():
    jobs = JobManager(grace_seconds=1.0)
    try:
        c = cfg(**LONG)
        job = started(jobs, c)
        jobs.touch("a")
        assert jobs.pause(c.key(), "a") is None
        at, total = settle(job), job.snapshot().watch.total_steps
        snap = job.wait(10)  # no touch() from session "a": after the grace period it stops
        assert snap.status == "cancelled" and "left" in snap.reason
        assert round(snap.fraction * total) == at  # stopped while paused, not by a batch
    finally:
        jobs.shutdown()


def test_a_finished_run_cannot_be_paused(manager):
    c = cfg(epochs=1)
    job = manager.submit(c, session="a")
    assert job.wait(TIMEOUT).status == "done"
    assert manager.pause(c.key(), "a") is not None
    assert isinstance(job.snapshot().watch, Watch)
