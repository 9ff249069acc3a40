"""The Train page's watch view: snapshots live with Pause / Step / Resume, then the scrubber."""

from __future__ import annotations

import pytest

import app_pages._ui
from aecore.checkpoints import save_checkpoint
from aecore.jobs import JobManager
from aecore.runs import train_and_save
from aecore.watch import attach
from tests.app.conftest import TINY, page, rerun_until, texts

# Long enough (~8,000 batches of 16 digits) to be caught training, paused and stepped.
SLOW = TINY.__class__(**(TINY.to_dict() | {"epochs": 100, "batch_size": 16}))


def captions(at) -> str:
    return texts(at.caption)


def markdown(at) -> str:
    return texts(at.markdown)


@pytest.fixture
def manager(monkeypatch):
    jobs = JobManager()
    monkeypatch.setattr(app_pages._ui, "jobs", lambda: jobs)
    yield jobs
    jobs.shutdown()


def test_a_training_run_shows_its_snapshots_pauses_steps_and_resumes(empty_runs, manager):
    key = SLOW.key()
    at = page("train", SLOW).run()
    at.button(key="train").click().run()
    rerun_until(at, lambda at: "What the model makes of 8 test images now" in markdown(at))
    charts = at.get("plotly_chart")
    assert len(charts) >= 3  # the 8 images, the per-batch loss and the 2-D codes (at least)
    assert "Loss per batch" in captions(at) and "Loss per epoch" in captions(at)
    at.button(key=f"pause_{key}").click().run()
    rerun_until(at, lambda at: "Paused after" in captions(at))
    assert at.button(key=f"resume_{key}") and not at.button(key=f"step_{key}").disabled
    job = manager.jobs_for(at.session_state["session_id"])[-1]
    rerun_until(at, lambda at: job.snapshot().held)
    before = job.snapshot().watch.latest.step
    at.run()
    assert f"Paused after {before:,} batches" in captions(at)
    at.button(key=f"step_{key}").click().run()
    rerun_until(at, lambda at: f"Paused after {before + 1:,} batches" in captions(at))
    at.button(key=f"resume_{key}").click().run()
    assert at.button(key=f"pause_{key}")  # running again
    rerun_until(at, lambda at: "Done" in texts(at.success), timeout=240)
    assert not at.exception


def test_a_runner_that_cannot_pause_offers_no_pause(empty_runs, monkeypatch):
    """The training cluster's runner (aecore.cluster) refuses Pause and Step: no button for
    them, the snapshots and Cancel stay."""
    jobs = JobManager()
    jobs.can_pause = False
    monkeypatch.setattr(app_pages._ui, "jobs", lambda: jobs)
    try:
        at = page("train", SLOW).run()
        at.button(key="train").click().run()
        rerun_until(at, lambda at: "What the model makes of 8 test images now" in markdown(at))
        keys = [b.key for b in at.button]
        assert f"cancel_{SLOW.key()}" in keys and f"pause_{SLOW.key()}" not in keys
        assert not at.exception
    finally:
        jobs.shutdown()


def test_a_finished_run_can_be_scrubbed_through(trained_runs):
    at = page("train", TINY).run()
    assert "Cached" in texts(at.success)
    assert "How it learned" in [h.value for h in at.subheader]
    slider = at.select_slider(key=f"scrub_{TINY.key()}")
    n = len(slider.options)
    assert n > 5
    assert f"snapshot {n} of {n}" in captions(at)  # opens at the end of training
    slider.set_value(0).run()
    assert not at.exception
    assert f"The model after 0 batches (epoch 0.00), 0 s in: snapshot 1 of {n}." in captions(at)
    at.select_slider(key=f"scrub_{TINY.key()}").set_value(3).run()
    assert "snapshot 4 of" in captions(at) and "after 4 batches" in captions(at)


def test_a_run_saved_without_snapshots_says_so(empty_runs):
    ckpt = train_and_save(TINY, device="cpu", out_dir=empty_runs)
    attach(ckpt.model, None)  # saved again as every file was before snapshots existed
    info = {k: v for k, v in ckpt.info.items() if k != "path"}
    save_checkpoint(ckpt.info["path"], TINY, ckpt.model, ckpt.history, ckpt.metrics, info)
    at = page("train", TINY).run()
    assert not at.exception
    assert "Cached" in texts(at.success)
    assert "saved without snapshots" in captions(at)
