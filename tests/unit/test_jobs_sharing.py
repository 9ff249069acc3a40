"""JobManager on a shared server: limits per visitor, visitors served in turn, a cost budget,
runs nobody watches, cancel while others wait, memory in bytes, a restart's notice, stopping."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from aecore.jobs import RunTooLong, SessionLimit
from tests.unit import test_jobs as base
from tests.unit.test_jobs import FakeRunner, cfg, wait_until

# The fixtures of test_jobs: an empty runs folder per test, managers shut down after it.
isolated_runs = base.isolated_runs
make_manager = base.make_manager


class BatchingRunner(FakeRunner):
    """Reports a batch every few ms until released or stopped, as real training does."""

    def __call__(self, cfg, on_epoch, should_stop, on_batch, **kw):
        while not self.release.is_set():
            on_batch(0.5)
            if should_stop():
                self.stopped.append(cfg.key())
                return None
            time.sleep(0.005)
        return super().__call__(cfg, on_epoch, should_stop, on_batch, **kw)


def test_the_limit_counts_a_visitor_across_reloads(make_manager):
    jobs = make_manager(runner=FakeRunner(), per_session=2)
    jobs.submit(cfg(seed=1), session="tab1", visitor="alice")
    jobs.submit(cfg(seed=2), session="tab2", visitor="alice")  # a reload: a new session
    with pytest.raises(SessionLimit):
        jobs.submit(cfg(seed=3), session="tab3", visitor="alice")
    jobs.submit(cfg(seed=3), session="tab4", visitor="bob")  # someone else still can


def test_joining_anothers_run_is_not_limited(make_manager):
    jobs = make_manager(runner=FakeRunner(), per_session=1)
    jobs.submit(cfg(seed=1), session="a", visitor="alice")
    jobs.submit(cfg(seed=2), session="b", visitor="bob")
    assert jobs.submit(cfg(seed=2), session="a2", visitor="alice").snapshot().subscribers == 2


def test_visitors_are_served_in_turn(make_manager):
    runner = FakeRunner()
    jobs = make_manager(runner=runner, per_session=5)
    first = jobs.submit(cfg(seed=1), session="a", visitor="alice")
    wait_until(lambda: first.snapshot().status == "running")
    mine = [jobs.submit(cfg(seed=s), session="a", visitor="alice") for s in (2, 3, 4)]
    bobs = jobs.submit(cfg(seed=9), session="b", visitor="bob")
    assert bobs.snapshot().position == 1  # ahead of alice's three, though it came last
    assert [j.snapshot().position for j in mine] == [2, 3, 4]
    runner.release.set()
    wait_until(lambda: all(not j.snapshot().active for j in [*mine, bobs]))
    order = runner.calls
    assert order.index(bobs.key) < order.index(mine[0].key)


def test_a_run_over_the_budget_is_refused_with_a_cheaper_suggestion(make_manager):
    jobs = make_manager(runner=FakeRunner(), budget_seconds=30)
    with pytest.raises(RunTooLong, match=r"would take about .* (fits|batch size|smaller)"):
        jobs.submit(cfg(epochs=200, batch_size=1, model="deep_mlp", width=512), session="s")
    assert jobs.submit(cfg(epochs=1), session="s").snapshot().active  # a small one is taken


def test_a_run_nobody_watches_stops_after_the_grace_period(make_manager):
    runner = BatchingRunner()
    jobs = make_manager(runner=runner, grace_seconds=0.3)
    job = jobs.submit(cfg(seed=1), session="gone")
    snap = job.wait(10)
    assert snap.status == "cancelled" and "left" in snap.reason
    assert runner.stopped == [job.key]


def test_a_watched_run_goes_on(make_manager):
    runner = BatchingRunner()
    jobs = make_manager(runner=runner, grace_seconds=0.3)
    job = jobs.submit(cfg(seed=1), session="here")
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        jobs.touch("here")  # the live panel polls
        time.sleep(0.05)
    assert job.snapshot().status == "running"
    runner.release.set()
    assert job.wait(10).status == "done"


def test_cancel_while_another_visitor_waits_lets_the_run_go_on(make_manager):
    runner = FakeRunner()
    jobs = make_manager(runner=runner)
    job = jobs.submit(cfg(seed=1), session="a", visitor="alice")
    jobs.submit(cfg(seed=1), session="b", visitor="bob")
    assert jobs.cancel(job.key, "b") is False  # bob leaves; alice still waits
    assert jobs.waiting(job.key) == 1
    runner.release.set()
    assert job.wait(10).status == "done"


def test_finished_runs_in_memory_are_bounded_in_bytes(make_manager):
    runner = FakeRunner(block=False)
    jobs = make_manager(runner=runner, memory_bytes=1)  # smaller than any model: keep the newest
    for seed in range(3):
        jobs.submit(cfg(seed=seed, latent=32), session="s").wait(10)
    assert len(jobs._memory) == 1
    assert jobs.memory_used() > 0


def test_a_restart_tells_visitors_which_runs_it_dropped(make_manager, tmp_path):
    state = tmp_path / "queue.json"
    first = make_manager(runner=FakeRunner(), state_file=state)
    first.submit(cfg(seed=1), session="a", visitor="alice")
    first.submit(cfg(seed=2), session="b", visitor="bob")
    first.stop()
    again = make_manager(runner=FakeRunner(), state_file=state)
    assert len(again.dropped_for("alice")) == 1 and "dense" in again.dropped_for("bob")[0]
    assert again.dropped_for("alice") == []  # told once
    third = make_manager(runner=FakeRunner(), state_file=state)
    assert third.dropped_for("bob") == []  # the second start rewrote the file


def test_a_process_with_a_run_going_exits_at_once_and_cancels_it(tmp_path):
    """Worker threads are daemons and stop() runs at exit: the interpreter does not wait for
    a run (a redeploy's SIGTERM stops Streamlit's server, then the process must end)."""
    script = textwrap.dedent(
        f"""
        import os, time
        os.environ["AECORE_RUNS_DIR"] = {str(tmp_path / "runs")!r}
        from aecore.jobs import JobManager
        from aecore.config import TrainConfig
        from tests.unit.test_jobs_sharing import BatchingRunner
        jobs = JobManager(runner=BatchingRunner(), state_file=__import__("pathlib").Path(
            {str(tmp_path / "queue.json")!r}))
        jobs.stop_on_exit()
        job = jobs.submit(TrainConfig(dataset="digits", model="dense", latent=2), "s", "v")
        while job.snapshot().status != "running":
            time.sleep(0.01)
        print("running", flush=True)
        """
    )
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd="."
    )
    assert done.returncode == 0, done.stderr
    assert "running" in done.stdout
    assert time.monotonic() - t0 < 30  # it would hang forever with a non-daemon worker
    assert "dense" in (tmp_path / "queue.json").read_text()  # the next start can tell "v"
