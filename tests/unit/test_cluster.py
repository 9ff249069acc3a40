"""The cluster backend of the job runner (aecore.cluster) on a real Dask cluster on loopback: a
scheduler in this process and two worker processes, shared by two ClusterJobs ("app servers"),
each with its own Client. Runs are tiny digits configs (a few seconds each)."""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import types
from pathlib import Path

import pytest

from aecore import settings
from aecore.checkpoints import load_for
from aecore.cluster import ClusterJobs, ClusterUnavailable, dask_key
from aecore.cluster_task import PROGRESS, TOPIC
from aecore.config import TrainConfig
from aecore.jobs import QueueFull, RunTooLong, SessionLimit

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0
QUICK_EPOCHS = 3  # a run of about a second on a small CPU
LONG_EPOCHS = 150  # with LONG_BATCH: several seconds, long enough to watch, cancel or kill
LONG_BATCH = 16


def cfg(seed: int, epochs: int = QUICK_EPOCHS) -> TrainConfig:
    """A digits run no other test (and no bundled checkpoint) has: the seed names it."""
    batch = LONG_BATCH if epochs == LONG_EPOCHS else 32
    return TrainConfig(
        dataset="digits", model="dense", latent=2, epochs=epochs, batch_size=batch, seed=1000 + seed
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cluster-runs")


@pytest.fixture(scope="module")
def cluster(store):
    """Scheduler here, two worker processes (under nannies) that see the same runs folder."""
    with pytest.MonkeyPatch.context() as mp:
        # The nannies start their workers with multiprocessing's spawn, which runs this
        # process's __main__ again by its path: after an AppTest (tests/app) that is the app
        # script AppTest ran, which fails there. A bare __main__ gives spawn nothing to rerun.
        mp.setitem(sys.modules, "__main__", types.ModuleType("__main__"))
        mp.setenv("AECORE_RUNS_DIR", str(store))
        mp.setenv("AECORE_OFFLINE", "1")
        mp.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        with distributed.LocalCluster(
            n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
        ) as lc:
            yield lc


@pytest.fixture(autouse=True)
def same_store(store, monkeypatch):
    """This process (the app servers) reads the runs folder the workers write."""
    monkeypatch.setenv("AECORE_RUNS_DIR", str(store))


@pytest.fixture
def servers(cluster):
    """Two app servers on one cluster: two ClusterJobs, two Clients."""
    made = [ClusterJobs(cluster.scheduler_address) for _ in range(2)]
    yield made
    for jobs in made:
        jobs.shutdown()


@pytest.fixture
def observer(cluster):
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        yield client


def events(client, key: str, event: str) -> list[dict]:
    """The workers' events of `key`: "started" (one per real training) or "ended"."""
    found = [msg for _, msg in client.get_events(TOPIC)]
    return [m for m in found if m.get("key") == key and m.get("event") == event]


def trainings(client, key: str) -> int:
    return len(events(client, key, "started"))


def wait_for(pred, timeout: float = TIMEOUT, step: float = 0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = pred()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("timed out waiting")


def worker_of(client, name: str) -> str:
    """The address of the worker that runs task `name`."""
    return wait_for(lambda: next((w for w, ks in client.processing().items() if name in ks), None))


# -- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw, parsed",
    [
        ("", ""),
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        (" scheduler:8786 ", "tcp://scheduler:8786"),
        ("http://scheduler:8786", ""),  # not a Dask protocol: trained in the app, warned
        ("tcp://scheduler", ""),  # no port
    ],
)
def test_the_cluster_setting_is_validated(monkeypatch, raw, parsed):
    monkeypatch.setenv("AECORE_CLUSTER", raw)
    assert settings.current().cluster == parsed


# -- one run per configuration, results for everyone ------------------------------------------


def test_two_servers_asking_for_one_config_train_it_once(servers, observer, capsys):
    a, b = servers
    c = cfg(1)
    t0 = time.monotonic()
    job_a = a.submit(c, "sa", "visitor-a")
    job_b = b.submit(c, "sb", "visitor-b")
    snap_a, snap_b = job_a.wait(TIMEOUT), job_b.wait(TIMEOUT)
    seconds = time.monotonic() - t0
    assert (snap_a.status, snap_b.status) == ("done", "done"), (snap_a.error, snap_b.error)
    assert snap_a.checkpoint.config == c and snap_b.checkpoint.config == c
    assert snap_a.checkpoint.history and not snap_a.cached
    assert trainings(observer, c.key()) == 1
    # Asked again later, on either server: from the store, no training.
    again = b.submit(c, "sb2", "visitor-c")
    assert again.snapshot().status == "done" and again.snapshot().cached
    assert trainings(observer, c.key()) == 1
    with capsys.disabled():
        print(f"\n[cluster] two servers, one config: 1 training, submit->result {seconds:.2f} s")


def test_progress_reaches_the_other_server_while_it_trains(servers):
    a, b = servers
    c = cfg(2, LONG_EPOCHS)
    a.submit(c, "sa", "va")
    seen = b.submit(c, "sb", "vb")  # joins the run that server a started
    snap = wait_for(lambda: (s := seen.snapshot()).history and s.watch is not None and s)
    assert snap.status == "running" and 0 < snap.fraction < 1
    assert snap.started is not None and snap.watch.latest.recon.shape[0] == 8
    later = wait_for(lambda: (s := seen.snapshot()).fraction > snap.fraction and s)
    assert len(later.history) >= len(snap.history)
    assert later.watch.latest.step >= snap.watch.latest.step
    assert later.subscribers == 1  # this server's one session (a's is a's)


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_stops_a_run_only_when_no_server_waits_for_it(servers, observer):
    a, b = servers
    c = cfg(3, LONG_EPOCHS)
    job_a = a.submit(c, "sa", "va")
    job_b = b.submit(c, "sb", "vb")
    wait_for(lambda: job_b.snapshot().fraction > 0)
    assert b.cancel(c.key(), "sb") is False  # server a still waits for it
    assert job_a.snapshot().status == "running"
    time.sleep(1.0)
    assert job_a.snapshot().active  # it went on
    assert a.cancel(c.key(), "sa") is True  # the last one: it stops
    assert job_a.snapshot().status == "cancelled"
    ended = wait_for(lambda: events(observer, c.key(), "ended"), timeout=10)
    assert ended[0]["status"] == "cancelled"  # the worker stopped it, before its end
    assert load_for(c) is None  # a stopped run saves nothing
    assert trainings(observer, c.key()) == 1


# -- limits, budget ------------------------------------------------------------------------------


def test_a_visitors_limit_holds_across_servers(cluster):
    a = ClusterJobs(cluster.scheduler_address, per_session=1)
    b = ClusterJobs(cluster.scheduler_address, per_session=1)
    try:
        one, two, three = cfg(4, LONG_EPOCHS), cfg(5, LONG_EPOCHS), cfg(14, LONG_EPOCHS)
        a.submit(one, "s1", "student")
        with pytest.raises(SessionLimit, match="limit"):
            b.submit(two, "s2", "student")  # same visitor, other server
        b.submit(two, "s3", "someone else")
        assert b.submit(one, "s4", "student").key == one.key()  # joining a live run is free
        assert a.cancel(one.key(), "s1") is False  # b's session s4 still waits
        assert b.cancel(one.key(), "s4") is True
        wait_for(lambda: _can_submit(b, three, "student"), timeout=10)  # the lease came back
        assert b.cancel(three.key(), "s5") is True
        assert b.cancel(two.key(), "s3") is True
    finally:
        a.shutdown()
        b.shutdown()


def test_a_second_server_asked_at_once_joins_the_run(cluster, monkeypatch):
    """client.submit sends the task to the scheduler a moment later (here 0.2 s); submit returns
    only once the scheduler holds it, so another server asked for the same run right away joins
    it, and the visitor's one lease is not taken twice (a race CI once lost)."""
    a = ClusterJobs(cluster.scheduler_address, per_session=1)
    b = ClusterJobs(cluster.scheduler_address, per_session=1)
    try:
        client = a._client()
        send = client._send_to_scheduler

        def late(msg: dict) -> None:
            if msg.get("op") == "update-graph":
                threading.Timer(0.2, send, (msg,)).start()
            else:
                send(msg)

        monkeypatch.setattr(client, "_send_to_scheduler", late)
        run = cfg(22, LONG_EPOCHS)
        a.submit(run, "s1", "student")
        assert b.submit(run, "s2", "student").key == run.key()  # joined, not refused
        assert a.cancel(run.key(), "s1") is False  # b's session still waits
        assert b.cancel(run.key(), "s2") is True
    finally:
        a.shutdown()
        b.shutdown()


def _can_submit(jobs: ClusterJobs, c: TrainConfig, visitor: str) -> bool:
    try:
        jobs.submit(c, "s5", visitor)
    except SessionLimit:
        return False
    return True


def test_the_queue_limit_and_the_budget_hold(cluster):
    tight = ClusterJobs(cluster.scheduler_address, budget_seconds=1)
    with pytest.raises(RunTooLong, match="would take about"):  # JobManager's check and words
        tight.submit(cfg(6, LONG_EPOCHS), "s1", "v1")
    tight.shutdown()
    a = ClusterJobs(cluster.scheduler_address, max_queue=1)
    b = ClusterJobs(cluster.scheduler_address, max_queue=1)
    try:
        running = cfg(7, LONG_EPOCHS)
        a.submit(running, "s1", "v1")
        with pytest.raises(QueueFull, match="queue is full"):
            b.submit(cfg(8, LONG_EPOCHS), "s2", "v2")  # the queue of the cluster, not of a
        assert "not available on the training cluster" in a.pause(running.key(), "s1")
        assert a.cancel(running.key(), "s1") is True
    finally:
        a.shutdown()
        b.shutdown()


# -- faults ------------------------------------------------------------------------------------


def test_a_killed_worker_reruns_the_run_on_another(servers, observer, capsys):
    a, _ = servers
    c = cfg(9, LONG_EPOCHS)
    job = a.submit(c, "sa", "va")
    wait_for(lambda: job.snapshot().fraction > 0.1)
    name = dask_key(c)
    victim = worker_of(observer, name)
    pid = observer.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    killed, killed_at = time.monotonic(), time.time()
    snap = job.wait(TIMEOUT)
    recovery = time.monotonic() - killed
    started = observer.get_events(TOPIC)
    starts = [t for t, m in started if m.get("key") == c.key() and m.get("event") == "started"]
    if snap.status == "done":  # trained again from the start on the other worker
        assert trainings(observer, c.key()) == 2
        assert "started again from the beginning on another worker" in snap.note
        assert snap.checkpoint.config == c
        ckpt = load_for(c)  # the file that loads is this run's, whole
        assert ckpt is not None and ckpt.config == c and len(ckpt.history) == LONG_EPOCHS
    else:
        assert snap.status == "failed" and "Press Train" in snap.error
    with capsys.disabled():
        restart = f", restarted {starts[-1] - killed_at:.2f} s after the kill" if starts else ""
        print(
            f"\n[cluster] worker SIGKILLed mid-run: {snap.status} {recovery:.2f} s after{restart}"
        )


def test_a_scheduler_that_does_not_answer_is_said_clearly():
    with socket.socket() as s:  # a free port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    jobs = ClusterJobs(f"tcp://127.0.0.1:{port}", connect_timeout=1.0)
    t0 = time.monotonic()
    with pytest.raises(ClusterUnavailable, match=rf"cluster at tcp://127.0.0.1:{port} does not"):
        jobs.submit(cfg(10), "s", "v")
    assert time.monotonic() - t0 < 10
    with pytest.raises(ClusterUnavailable):  # told at once now, not after another timeout
        jobs.submit(cfg(10), "s", "v")
    assert jobs.result(cfg(10)) is None  # reading the store needs no cluster
    jobs.shutdown()


def test_a_scheduler_that_goes_away_fails_its_runs_with_a_message(store):
    """A run waiting on a scheduler that stops (a restart): it fails with words, not a hang."""
    lc = distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0")
    jobs = ClusterJobs(lc.scheduler_address, connect_timeout=1.0)
    try:
        job = jobs.submit(cfg(11), "s", "v")  # no worker: it stays queued
        assert job.snapshot().status == "queued"
        lc.close()
        snap = job.wait(30)
        assert snap.status == "failed" and "stopped answering" in snap.error
        with pytest.raises(ClusterUnavailable, match="does not answer"):
            jobs.submit(cfg(12), "s", "v")
    finally:
        jobs.shutdown()
        lc.close()


def test_after_a_scheduler_restart_submit_works_again():
    """The scheduler comes back at the same address: new runs are taken again, by themselves."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kw = dict(n_workers=0, processes=False, dashboard_address=":0", scheduler_port=port)
    first = distributed.LocalCluster(**kw)
    jobs = ClusterJobs(first.scheduler_address, connect_timeout=1.0)
    try:
        jobs.submit(cfg(15), "s", "v")
        first.close()
        with pytest.raises(ClusterUnavailable):
            wait_for(lambda: jobs.submit(cfg(16), "s", "v") and False, timeout=10)
        with distributed.LocalCluster(**kw):
            job = wait_for(lambda: _submitted(jobs, cfg(16)), timeout=30)
            assert job.snapshot().status == "queued"  # no worker here: it waits, as it should
    finally:
        jobs.shutdown()
        first.close()


def _submitted(jobs: ClusterJobs, c: TrainConfig):
    try:
        return jobs.submit(c, "s2", "v2")
    except ClusterUnavailable:
        return None


def test_progress_variables_are_gone_after_a_run(servers, observer, capsys):
    a, _ = servers
    c = cfg(13)
    t0 = time.monotonic()
    assert a.submit(c, "s", "v").wait(TIMEOUT).status == "done"
    with capsys.disabled():
        print(f"\n[cluster] warm workers: submit->result {time.monotonic() - t0:.2f} s")
    wait_for(lambda: _unset(distributed.Variable(dask_key(c) + PROGRESS, client=observer)), 10)


def _unset(variable) -> bool:
    try:
        variable.get(timeout=0.1)
    except TimeoutError:
        return True
    return False
