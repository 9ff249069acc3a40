"""aecore.gate (page runs computing at once) and the job manager's bounds on what it remembers:
sessions, and one log line per training run actually started."""

from __future__ import annotations

import logging
import re
import threading
import time

import pytest

from aecore import jobs as jobs_module
from aecore.checkpoints import Checkpoint
from aecore.config import TrainConfig
from aecore.gate import Gate
from aecore.jobs import JobManager
from aecore.models import build_model


def test_the_gate_lets_at_most_its_slots_in_at_once():
    gate = Gate(slots=2, max_wait=30)
    inside, peak, lock = 0, 0, threading.Lock()

    def visit() -> None:
        nonlocal inside, peak
        with gate() as got_slot:
            assert got_slot
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.02)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=visit) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak == 2


def test_a_run_that_waits_too_long_goes_ahead_and_errors_free_the_slot():
    gate = Gate(slots=1, max_wait=0.05)
    with gate() as first:
        t0 = time.monotonic()
        with gate() as second:  # the slot is taken: it waits max_wait, then runs anyway
            assert first and not second and time.monotonic() - t0 >= 0.04
    with pytest.raises(RuntimeError), gate():
        raise RuntimeError("a page failed")  # Streamlit's rerun and stop exceptions, too
    with gate() as again:
        assert again  # the slot came back


@pytest.mark.parametrize(("slots", "wait"), [(0, 1.0), (1, -1.0)])
def test_the_gate_refuses_nonsense(slots, wait):
    with pytest.raises(ValueError):
        Gate(slots, wait)


# -- the job manager --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def isolated_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")


def cfg(seed: int) -> TrainConfig:
    return TrainConfig(dataset="digits", model="dense", latent=2, epochs=1, seed=seed)


class Runner:
    """Finishes at once without saving, except runs whose key is in `hold` (until released)."""

    def __init__(self) -> None:
        self.hold: set[str] = set()
        self.release = threading.Event()

    def __call__(self, c, on_epoch, should_stop, on_batch, **_) -> Checkpoint | None:
        while c.key() in self.hold and not self.release.wait(0.01):
            if should_stop():
                return None
        return Checkpoint(c, build_model(c, (1, 8, 8)), [], {}, {})


def test_sessions_are_forgotten_oldest_first_but_never_with_a_run_unfinished(monkeypatch):
    monkeypatch.setattr(jobs_module, "MAX_SESSIONS", 3)
    runner = Runner()
    manager = JobManager(runner=runner, workers=2)  # one worker held by "busy", one free
    try:
        busy = cfg(1)
        runner.hold.add(busy.key())
        manager.submit(busy, session="busy")  # unfinished for the whole test
        for i in range(6):
            assert manager.submit(cfg(10 + i), session=f"s{i}").wait(10).status == "done"
        remembered = [s for s in ("busy", *(f"s{i}" for i in range(6))) if manager.jobs_for(s)]
        assert remembered == ["busy", "s4", "s5"]
    finally:
        runner.release.set()
        manager.shutdown()


def test_one_log_line_per_training_actually_started(caplog):
    runner = Runner()
    manager = JobManager(runner=runner)
    try:
        with caplog.at_level(logging.INFO, logger="aecore.jobs"):
            for session in ("a", "b", "c"):  # the same configuration three times
                manager.submit(cfg(2), session=session).wait(10)
            manager.submit(cfg(3), session="a").wait(10)
    finally:
        manager.shutdown()
    started = re.findall(r"training run (\d+) started: dense on digits", caplog.text)
    assert started == ["1", "2"]
    assert len(re.findall(r"training run \d+ done after", caplog.text)) == 2
