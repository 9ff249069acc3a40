"""JobManager: shared runs, queue order, limits, cancelling, failures, the result caches."""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch

from aecore.checkpoints import Checkpoint, checkpoint_name, runs_dir, save_checkpoint
from aecore.config import TrainConfig
from aecore.history import EpochStats
from aecore.jobs import JobManager, JobRejected, QueueFull, SessionLimit
from aecore.models import build_model
from aecore.runs import train_and_save
from aecore.train import TrainingDiverged

TIMEOUT = 15.0


@pytest.fixture(autouse=True)
def isolated_runs(tmp_path, monkeypatch):
    """Every test gets an empty runs folder and no bundled checkpoints."""
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AECORE_OFFLINE", "1")
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")
    return tmp_path / "runs"


def cfg(seed: int = 0, **kw) -> TrainConfig:
    base = dict(dataset="digits", model="dense", latent=2, epochs=1, batch_size=256, seed=seed)
    return TrainConfig(**(base | kw))


def wait_until(pred, timeout: float = TIMEOUT) -> None:
    end = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > end:
            raise AssertionError("timed out waiting")
        time.sleep(0.005)


class FakeRunner:
    """train_and_save's contract, fast: reports 4 batches and 1 epoch, then saves unless stopped.

    Each run blocks until `release` is set (checking should_stop meanwhile), so a test can hold
    runs in the "running" state.
    """

    def __init__(self, block: bool = True, save: bool = True, error: Exception | None = None):
        self.calls: list[str] = []
        self.stopped: list[str] = []
        self.release = threading.Event()
        if not block:
            self.release.set()
        self.save = save
        self.error = error

    def __call__(self, cfg, on_epoch, should_stop, on_batch, **_) -> Checkpoint | None:
        self.calls.append(cfg.key())
        while not self.release.wait(0.005):
            if should_stop():
                self.stopped.append(cfg.key())
                return None
        if self.error is not None:
            raise self.error
        for i in range(4):
            if should_stop():
                self.stopped.append(cfg.key())
                return None
            on_batch((i + 1) / 4)
        on_epoch(EpochStats(1, 1, 0.1, 0.1, 0.1, 0.1, 20.0, 0.01))
        model = build_model(cfg, (1, 8, 8))
        info = {"shape": [1, 8, 8]}
        if self.save:
            save_checkpoint(runs_dir() / checkpoint_name(cfg), cfg, model, [], {}, info)
        return Checkpoint(cfg, model, [], {}, info)


@pytest.fixture
def make_manager():
    managers: list[JobManager] = []

    def make(**kw) -> JobManager:
        managers.append(JobManager(**kw))
        return managers[-1]

    yield make
    for m in managers:
        m.shutdown()


def test_identical_requests_share_one_run(make_manager) -> None:
    runner = FakeRunner()
    jobs = make_manager(runner=runner, per_session=1)
    c = cfg(seed=11)
    barrier = threading.Barrier(5)

    def submit(i: int):
        barrier.wait()  # all five at once, from five threads, like five browser sessions
        return jobs.submit(c, session=f"student{i}")

    with ThreadPoolExecutor(5) as pool:
        got = list(pool.map(submit, range(5)))
    assert all(job is got[0] for job in got)
    assert got[0].snapshot().subscribers == 5
    runner.release.set()
    snaps = [job.wait(TIMEOUT) for job in got]
    assert runner.calls == [c.key()]
    assert all(s.status == "done" and not s.cached for s in snaps)
    assert all(s.checkpoint is snaps[0].checkpoint is not None for s in snaps)
    assert snaps[0].fraction == 1.0 and len(snaps[0].history) == 1
    # Submitting again after it finished: the memory cache, no new run.
    again = jobs.submit(c, session="late").snapshot()
    assert again.status == "done" and again.cached and again.checkpoint is snaps[0].checkpoint
    assert len(runner.calls) == 1


def test_different_configs_queue_in_order(make_manager) -> None:
    runner = FakeRunner()
    jobs = make_manager(runner=runner)
    first = jobs.submit(cfg(seed=1), session="a")
    wait_until(lambda: first.snapshot().status == "running")
    rest = [jobs.submit(cfg(seed=s), session=f"s{s}") for s in (2, 3, 4)]
    assert first.snapshot().position is None
    assert [j.snapshot().position for j in rest] == [1, 2, 3]
    assert [j.snapshot().status for j in rest] == ["queued"] * 3
    runner.release.set()
    assert all(j.wait(TIMEOUT).status == "done" for j in rest)
    assert runner.calls == [cfg(seed=s).key() for s in (1, 2, 3, 4)]
    assert all(j.snapshot().position is None for j in rest)


def test_queue_full_and_session_limit_refuse_with_clear_messages(make_manager) -> None:
    runner = FakeRunner()
    jobs = make_manager(runner=runner, max_queue=3, per_session=2)
    a1 = jobs.submit(cfg(seed=1), session="a")
    jobs.submit(cfg(seed=2), session="a")
    with pytest.raises(SessionLimit, match=r"already have 2 .*limit is 2.*cancel") as err:
        jobs.submit(cfg(seed=3), session="a")
    assert isinstance(err.value, JobRejected)
    # Joining a run that is already queued costs nothing, so it is allowed past the limit.
    assert jobs.submit(cfg(seed=1), session="b") is a1
    jobs.submit(cfg(seed=3), session="b")
    with pytest.raises(QueueFull, match=r"3 runs are ahead.*try again in a minute"):
        jobs.submit(cfg(seed=4), session="c")
    assert len(jobs.jobs_for("a")) == 2 and len(jobs.jobs_for("c")) == 0
    # Finished runs no longer count against either limit.
    runner.release.set()
    wait_until(lambda: all(not j.snapshot().active for j in jobs.jobs_for("b")))
    assert jobs.submit(cfg(seed=5), session="a").wait(TIMEOUT).status == "done"


def test_cancel_by_one_subscriber_keeps_the_run_for_the_other(make_manager, isolated_runs) -> None:
    runner = FakeRunner()
    jobs = make_manager(runner=runner)
    c = cfg(seed=21)
    job = jobs.submit(c, session="a")
    assert jobs.submit(c, session="b") is job
    wait_until(lambda: job.snapshot().status == "running")
    assert jobs.cancel(job.key, "a") is False
    assert jobs.jobs_for("a") == [] and jobs.jobs_for("b") == [job]
    runner.release.set()
    snap = job.wait(TIMEOUT)
    assert snap.status == "done" and runner.stopped == []
    assert (isolated_runs / checkpoint_name(c)).is_file()


def test_cancel_by_last_subscriber_stops_the_run_and_saves_nothing(
    make_manager, isolated_runs
) -> None:
    runner = FakeRunner()
    jobs = make_manager(runner=runner)
    c = cfg(seed=22)
    job = jobs.submit(c, session="a")
    jobs.submit(c, session="b")
    wait_until(lambda: job.snapshot().status == "running")
    jobs.cancel(job.key, "a")
    assert jobs.cancel(job.key, "b") is True
    snap = job.wait(TIMEOUT)
    assert snap.status == "cancelled" and snap.checkpoint is None
    assert runner.stopped == [c.key()]
    assert not isolated_runs.exists() or not any(isolated_runs.iterdir())
    assert jobs.result(c) is None
    # The same config can be asked for again: a new run, not the cancelled one.
    runner.release.set()
    again = jobs.submit(c, session="a")
    assert again is not job and again.wait(TIMEOUT).status == "done"


def test_cancelled_queued_job_never_runs(make_manager) -> None:
    runner = FakeRunner()
    jobs = make_manager(runner=runner)
    first = jobs.submit(cfg(seed=1), session="a")
    queued = jobs.submit(cfg(seed=2), session="b")
    third = jobs.submit(cfg(seed=3), session="c")
    wait_until(lambda: first.snapshot().status == "running")
    assert jobs.cancel(queued.key, "b") is True
    assert queued.snapshot().status == "cancelled"
    assert third.snapshot().position == 1  # moved up
    runner.release.set()
    assert third.wait(TIMEOUT).status == "done"
    assert runner.calls == [cfg(seed=1).key(), cfg(seed=3).key()]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (TrainingDiverged("the loss became nan in epoch 1: lower the learning rate"), r"^the loss"),
        (ValueError("conv_pool needs image sides divisible by 4"), r"^conv_pool needs"),
        (torch.cuda.OutOfMemoryError("CUDA out of memory. Tried"), r"out of memory.*smaller batch"),
        (KeyError("boom"), r"^training failed: KeyError: 'boom'$"),
    ],
)
def test_failing_runner_gives_a_user_message(make_manager, caplog, error, message) -> None:
    runner = FakeRunner(block=False, error=error)
    jobs = make_manager(runner=runner)
    with caplog.at_level(logging.ERROR, logger="aecore.jobs"):
        snap = jobs.submit(cfg(seed=5), session="a").wait(TIMEOUT)
    assert snap.status == "failed" and snap.checkpoint is None
    assert snap.error is not None
    assert re.search(message, snap.error)
    unexpected = isinstance(error, KeyError)
    assert any(r.exc_info for r in caplog.records) == unexpected  # tracebacks only for bugs
    # A failed run is not cached: asking again retries.
    runner.error = None
    assert jobs.submit(cfg(seed=5), session="a").wait(TIMEOUT).status == "done"
    assert len(runner.calls) == 2


def test_a_new_manager_finds_a_run_on_disk(make_manager, isolated_runs, caplog) -> None:
    c = cfg(seed=31)
    saved = train_and_save(c, device="cpu")  # the real thing, 1 epoch of digits
    path = Path(saved.info["path"])
    assert path.parent == isolated_runs

    runner = FakeRunner()
    jobs = make_manager(runner=runner)  # a restarted app: empty memory
    snap = jobs.submit(c, session="a").snapshot()
    assert snap.status == "done" and snap.cached and runner.calls == []
    assert snap.checkpoint.config == c and len(snap.checkpoint.history) == 1
    torch.testing.assert_close(snap.checkpoint.model.state_dict(), saved.model.state_dict())

    # A corrupt file counts as "not trained": logged, and the run is queued again.
    path.write_bytes(b"not a checkpoint")
    fresh = make_manager(runner=runner)
    with caplog.at_level(logging.WARNING, logger="aecore.jobs"):
        assert fresh.result(c) is None
        job = fresh.submit(c, session="a")
    assert "ignoring checkpoint" in caplog.text
    assert job.snapshot().status in ("queued", "running")


def test_memory_cache_is_a_bounded_lru(make_manager) -> None:
    runner = FakeRunner(block=False, save=False)  # nothing on disk: memory is all there is
    jobs = make_manager(runner=runner, memory_items=2)
    a, b, c = cfg(seed=1), cfg(seed=2), cfg(seed=3)
    for x in (a, b):
        assert jobs.submit(x, session="s").wait(TIMEOUT).status == "done"
    assert jobs.result(a) is not None  # touch a: b is now the least recently used
    assert jobs.submit(c, session="s").wait(TIMEOUT).status == "done"
    assert jobs.result(b) is None
    assert jobs.result(a) is not None and jobs.result(c) is not None


def test_end_to_end_with_the_real_runner(make_manager, isolated_runs) -> None:
    jobs = make_manager()  # runner = train_and_save
    c = cfg(seed=41, epochs=2, batch_size=128)
    job = jobs.submit(c, session="a")
    fractions = []
    deadline = time.monotonic() + 120  # cold imports and a busy CI box; normally a few seconds
    while job.wait(0.01).active and time.monotonic() < deadline:
        fractions.append(job.snapshot().fraction)
    snap = job.snapshot()
    assert snap.status == "done", snap.error
    assert snap.fraction == 1.0 and not snap.cached
    assert [h.epoch for h in snap.history] == [1, 2]
    assert fractions == sorted(fractions)  # progress only goes forward
    assert snap.started is not None and snap.finished >= snap.started
    assert Path(snap.checkpoint.info["path"]).is_file()
    assert Path(snap.checkpoint.info["path"]).parent == isolated_runs
    assert snap.train_seconds > 0 and snap.test_seconds > 0
    assert snap.checkpoint.info["test_seconds"] == pytest.approx(snap.test_seconds, abs=0.01)


def test_training_and_testing_are_timed_apart(make_manager) -> None:
    """The runner's last epoch ends training; what follows (testing, saving) is timed apart."""
    testing = threading.Event()
    done_testing = threading.Event()

    def runner(cfg, on_epoch, should_stop, on_batch, **_):
        time.sleep(0.05)  # training
        on_batch(1.0)
        on_epoch(EpochStats(1, 1, 0.1, 0.1, 0.1, 0.1, 20.0, 0.01))
        testing.set()
        done_testing.wait(TIMEOUT)  # testing against the baselines
        model = build_model(cfg, (1, 8, 8))
        return Checkpoint(cfg, model, [], {}, {"train_seconds": 0.05})

    jobs = make_manager(runner=runner)
    job = jobs.submit(cfg(seed=51), session="a")
    assert testing.wait(TIMEOUT)
    mid = job.snapshot()
    assert mid.status == "running" and mid.train_seconds >= 0.05
    assert mid.test_seconds is not None and mid.test_seconds >= 0  # counting up while it tests
    time.sleep(0.1)
    done_testing.set()
    snap = job.wait(TIMEOUT)
    assert snap.status == "done"
    assert snap.train_seconds == pytest.approx(mid.train_seconds)
    assert snap.test_seconds >= 0.1
    assert snap.train_seconds + snap.test_seconds == pytest.approx(snap.finished - snap.started)
    assert snap.checkpoint.info["test_seconds"] == pytest.approx(snap.test_seconds, abs=0.01)
    assert snap.checkpoint.info["train_seconds"] == 0.05  # the runner's own figure is kept


def test_a_queued_job_has_no_phase_times_yet(make_manager) -> None:
    runner = FakeRunner()
    jobs = make_manager(runner=runner)
    first = jobs.submit(cfg(seed=61), session="a")
    second = jobs.submit(cfg(seed=62), session="b")
    snap = second.snapshot()
    assert snap.status == "queued" and snap.train_seconds is None and snap.test_seconds is None
    runner.release.set()
    assert first.wait(TIMEOUT).train_seconds is not None


def test_a_queued_runs_label_counts_its_epochs_in_words():
    from aecore import jobs

    assert jobs._label(TrainConfig(epochs=1)).endswith(", 1 epoch")
    assert jobs._label(TrainConfig(epochs=3)).endswith(", 3 epochs")
