"""Beyond one machine, on one machine: a real Dask cluster (one `dask scheduler`, two `dask
worker` processes with one thread each) and two real `streamlit run streamlit_app.py` servers
with AECORE_CLUSTER pointing at it, every process on loopback and on one shared runs folder
(tests/load/cluster_procs.py starts them, each with its own log).

0. First, the README's layout on its own small deployment: every process with a runs folder of
   its own and one shared store (AECORE_STORE=file://...): 8 sessions, 2 configurations, 2
   trainings, all served, both runs whole in the store.
1. 20 sessions (tests/load/stclient.py), spread over both servers, ask for 4 configurations and
   click Train: exactly 4 trainings run (the workers' "training run ... started" lines, and 4
   checkpoints), none on the servers, and every session sees the results of its own run.
2. A worker is killed (SIGKILL to its process group: the nanny and the worker under it, as when
   a machine dies) while it trains a run two sessions wait for, one on each server: the run
   finishes on the other worker or fails visibly in both sessions; every checkpoint in the
   folder then loads and is the run its name says.
3. The scheduler is killed: Train on a server says the cluster does not answer, a run trained
   before still opens; the scheduler comes back at the same address, the surviving worker
   rejoins by itself, and Train works again.

The figures (wall seconds from the first click to the 20th session served, each training's
seconds, recovery after the kill and after the scheduler's restart) are printed and written to
test-artifacts/cluster.json.
Skipped only where Dask's `distributed` is not installed.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")  # the cluster engine: the `cluster` extra (requirements-dev)

from aecore.checkpoints import load_checkpoint  # noqa: E402
from aecore.config import TrainConfig  # noqa: E402
from tests.load.cluster_procs import Deployment  # noqa: E402
from tests.load.stclient import Session, View, xsrf_cookie  # noqa: E402
from tests.load.test_load import ARTIFACTS, run_async  # noqa: E402

SESSIONS = 20
SESSION_TIMEOUT = 150.0  # seconds from a click to the results, on a busy 2-core machine
# Every field the app's default would otherwise fill (its preset depends on the machine: MNIST
# present or not), so that the app's key for a link is cfg.key().
FIELDS = ("dataset", "corruption", "level", "model", "latent", "epochs", "batch_size", "seed")
FIELDS += ("lr", "limit_train")
# Four small configurations on the bundled digits, each a few seconds of training here; seed 11
# keeps them out of the bundled checkpoints, so each must really be trained.
CONFIGS = [
    TrainConfig(
        dataset="digits",
        corruption=corruption,
        level=level,
        model="dense",
        latent=latent,
        epochs=8,
        batch_size=16,
        seed=11,
        lr=3e-3,
    )
    for corruption, level, latent in [
        ("gaussian", 0.3, 4),
        ("salt_pepper", 0.1, 8),
        ("masking", 0.2, 8),
        ("gaussian", 0.5, 16),
    ]
]
# Long enough to be still training when its worker is killed, well inside the server's budget.
LONG = TrainConfig(
    dataset="digits", model="dense", latent=8, epochs=30, batch_size=8, seed=12, corruption="blur"
)
# Asked for while the scheduler is down, then again once it is back.
AFTER_RESTART = TrainConfig(
    dataset="digits", model="dense", latent=6, epochs=2, batch_size=16, seed=13, corruption="none"
)
# For the store's own deployment (the first test).
STORE_CONFIGS = [
    TrainConfig(dataset="digits", model="dense", latent=latent, epochs=4, seed=14, lr=3e-3)
    for latent in (4, 12)
]
STARTED = re.compile(r"training run \S+ started: .* \(key ([0-9a-f]{16})\)")
DONE = re.compile(r"training run \S+ done after ([0-9.]+) s \(key ([0-9a-f]{16})\)")
FIGURES: dict = {}  # each test adds its own; written to cluster.json after each


def query(cfg: TrainConfig) -> str:
    return "&".join(f"{k}={getattr(cfg, k)}" for k in FIELDS)


def write_figures(**figures) -> None:
    FIGURES.update(figures)
    print("\ncluster test:", json.dumps(figures))
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "cluster.json").write_text(json.dumps(FIGURES, indent=1))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """Scheduler, workers w1 and w2, servers s1 and s2; yields (deployment, [url1, url2])."""
    t0 = time.monotonic()
    with Deployment(tmp_path_factory.mktemp("cluster")) as d:
        d.start_scheduler()
        d.start_worker("w1")
        d.start_worker("w2")
        d.wait_workers(2)
        urls = [d.start_server("s1"), d.start_server("s2")]
        FIGURES["startup_seconds"] = round(time.monotonic() - t0, 1)
        try:
            yield d, urls
        finally:
            keep_logs(d, "main")


def keep_logs(d: Deployment, name: str) -> None:
    """Every process's log under test-artifacts/cluster_logs/<name>/, for a failure seen only
    in CI."""
    logs = ARTIFACTS / "cluster_logs" / name
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True)
    for log in d.root.glob("*.log"):
        shutil.copy(log, logs / log.name)


def shows_outcome(view: View) -> bool:
    """The page has settled: the run's results, or its failure (train.py's st.error)."""
    return "Test results" in view.headings or bool(view.alert("error"))


async def one_session(url: str, cfg: TrainConfig) -> dict:
    """Open Train with cfg in the URL, click Train (or find it trained), wait for the page to
    show the run's results or its failure."""
    async with Session(url, "train", query(cfg)) as s:
        view = await s.open()
        assert not view.exceptions, view.exceptions
        clicked_at = time.monotonic()
        clicked = "train" in view.buttons
        if clicked:
            await s.click("train")
        view = await s.until(shows_outcome, SESSION_TIMEOUT)
        keys = re.findall(r"Run key `([0-9a-f]{16})`", " ".join(view.texts))
        return {
            "url": url,
            "config": cfg.key(),
            "clicked": clicked,
            "clicked_at": clicked_at,
            "done_at": time.monotonic(),
            "results": "Test results" in view.headings,
            "success": " ".join(view.alert("success")),
            "errors": view.alert("error"),
            "exceptions": view.exceptions,
            "keys": keys,
        }


async def first_visit(url: str) -> float:
    """One visitor opens Train on a cold server (torch, Plotly and the pages are imported)."""
    t0 = time.monotonic()
    async with Session(url, "train", query(CONFIGS[0])) as s:
        view = await s.open()
        assert "train" in view.buttons and not view.exceptions, view
    return time.monotonic() - t0


async def gather(coroutines: list) -> list:
    """Their results (or exceptions) in order; run_async needs one coroutine to run."""
    return await asyncio.gather(*coroutines, return_exceptions=True)


def started_keys(text: str) -> list[str]:
    return STARTED.findall(text)


def check_every_checkpoint(runs: Path) -> dict[str, dict]:
    """Load every checkpoint in the folder: each must load, be the run its name says, and be
    one of this test's configurations. Returns {key: its info} for the figures."""
    configs = {c.key(): c for c in [*CONFIGS, LONG, AFTER_RESTART, *STORE_CONFIGS]}
    found = {}
    for path in sorted(runs.glob("*.pt")):  # subfolders hold baselines and classifiers
        key = path.stem.rsplit("-", 1)[-1]
        ckpt = load_checkpoint(path, key=key)  # raises on anything save_checkpoint did not write
        assert ckpt.config == configs[key], path
        found[key] = ckpt.info
    return found


def test_one_store_instead_of_one_folder(tmp_path):
    """The deployment of the README: every process keeps a runs folder of its own, and they
    share one store (AECORE_STORE; a folder URL here, a bucket in production). 8 sessions on two
    servers ask for 2 configurations: 2 trainings, every session sees its run, and the store
    holds both, whole."""
    store = tmp_path / "store"
    with Deployment(tmp_path / "d") as d:
        url = f"file://{store}"
        d.start_scheduler()
        d.start_worker("w1", AECORE_RUNS_DIR=str(tmp_path / "w1-runs"), AECORE_STORE=url)
        d.wait_workers(1)
        urls = [
            d.start_server(n, AECORE_RUNS_DIR=str(tmp_path / f"{n}-runs"), AECORE_STORE=url)
            for n in ("s1", "s2")
        ]
        pairs = [(urls[i % 2], STORE_CONFIGS[(i // 2) % 2]) for i in range(8)]
        results = run_async(lambda: gather([one_session(u, c) for u, c in pairs]))
        started = started_keys(d.logs("worker"))
        server_logs = d.logs("server")
        keep_logs(d, "store")
    failed = [repr(r)[:300] for r in results if isinstance(r, BaseException)]
    write_figures(
        store={
            "sessions": len(pairs),
            "sessions_served": sum(1 for r in results if isinstance(r, dict) and r["results"]),
            "trainings_started": len(started),
            "in_the_store": sorted(p.name for p in store.glob("*.pt")),
            "failed": failed,
        }
    )

    assert not failed, failed[:3]
    assert all(r["results"] and r["keys"] == [r["config"]] for r in results), results[:3]
    assert sorted(started) == sorted(c.key() for c in STORE_CONFIGS), started
    assert set(check_every_checkpoint(store)) == {c.key() for c in STORE_CONFIGS}
    assert not list(d.runs.glob("*.pt"))  # the deployment's own folder was not used
    assert "Traceback" not in server_logs, server_logs[-3000:]


def test_twenty_sessions_on_two_servers_train_four_runs_once_each(deployment):
    d, urls = deployment
    visits = run_async(lambda: gather([first_visit(u) for u in urls]))
    assert not [v for v in visits if isinstance(v, BaseException)], visits
    # Session i goes to server (i // 4) % 2 and asks for configuration i % 4: every
    # configuration is asked for on both servers, five times in all.
    pairs = [(urls[(i // len(CONFIGS)) % 2], CONFIGS[i % len(CONFIGS)]) for i in range(SESSIONS)]
    results = run_async(lambda: gather([one_session(u, c) for u, c in pairs]))
    failed = [repr(r)[:300] for r in results if isinstance(r, BaseException)]
    served = [r for r in results if not isinstance(r, BaseException) and r["results"]]
    started = started_keys(d.logs("worker"))
    infos = check_every_checkpoint(d.runs)
    stamps = [r for r in results if not isinstance(r, BaseException)]
    write_figures(
        sessions=SESSIONS,
        servers=len(urls),
        workers=2,
        configurations=len(CONFIGS),
        sessions_served=len(served),
        sessions_that_clicked_train=sum(r["clicked"] for r in stamps),
        trainings_started_on_workers=len(started),
        trainings_started_on_servers=len(started_keys(d.logs("server"))),
        checkpoints=len(infos),
        first_visit_seconds=[round(v, 1) for v in visits],
        wall_seconds=round(
            max((r["done_at"] for r in stamps), default=0)
            - min((r["clicked_at"] for r in stamps), default=0),
            1,
        ),
        # A worker's whole task (load the data, train, test, save), from its log.
        task_seconds=sorted(float(x) for x, _ in DONE.findall(d.logs("worker"))),
        training_seconds=sorted(round(i.get("train_seconds", -1), 2) for i in infos.values()),
        failed=failed,
    )

    assert not failed, failed[:3]
    bad = [r for r in served if r["exceptions"] or r["errors"]]
    assert not bad, bad[:3]
    assert len(served) == SESSIONS, [r for r in results if not r["results"]][:3]
    # Each session saw the run of its own configuration, and those are the 4 runs trained.
    assert all(r["keys"] == [r["config"]] for r in served), served[:3]
    assert all(r["success"].startswith(("Done", "Cached")) for r in served), served[:3]
    assert sorted(started) == sorted(c.key() for c in CONFIGS), started
    assert FIGURES["trainings_started_on_servers"] == 0  # the servers trained nothing themselves
    assert set(infos) == {c.key() for c in CONFIGS}
    assert "Traceback" not in d.logs("server"), d.logs("server")[-3000:]


def wait_started(d: Deployment, key: str, timeout: float = 90.0) -> str:
    """The name of the worker whose log says the run `key` started."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name in ("w1", "w2"):
            if key in started_keys(d.procs[name].text()):
                return name
        time.sleep(0.2)
    raise TimeoutError(f"run {key} not started:\n{d.logs('worker')[-3000:]}")


def test_a_worker_killed_mid_run_the_run_finishes_elsewhere_or_fails_visibly(deployment):
    d, urls = deployment
    key = LONG.key()

    async def two_sessions_and_a_kill():
        sessions = [asyncio.create_task(one_session(u, LONG)) for u in urls]
        victim = await asyncio.to_thread(wait_started, d, key)
        await asyncio.sleep(0.5)  # some batches into the run
        killed_at = time.monotonic()
        await asyncio.to_thread(d.procs[victim].kill_group)
        return victim, killed_at, await asyncio.gather(*sessions, return_exceptions=True)

    victim, killed_at, results = run_async(two_sessions_and_a_kill)
    failed = [repr(r)[:300] for r in results if isinstance(r, BaseException)]
    seen = [r for r in results if not isinstance(r, BaseException)]
    survivor = "w2" if victim == "w1" else "w1"
    rerun = key in started_keys(d.procs[survivor].text())
    infos = check_every_checkpoint(d.runs)  # nothing half-written, nothing wrong
    outcome = "finished on the other worker" if all(r["results"] for r in seen) else "failed"
    write_figures(
        kill={
            "killed": victim,
            "outcome": outcome,
            "rerun_on_the_other_worker": rerun,
            "recovery_seconds": round(max((r["done_at"] for r in seen), default=0) - killed_at, 1),
            "long_run_train_seconds": round(infos.get(key, {}).get("train_seconds", -1), 2),
            "errors_shown": sorted({e for r in seen for e in r["errors"]}),
            "checkpoints_after": len(infos),
            "failed": failed,
        }
    )

    assert not failed, failed[:3]
    # The kill came mid-run: the killed worker never finished it.
    assert key not in {k for _, k in DONE.findall(d.procs[victim].text())}
    assert len(seen) == len(urls) and not any(r["exceptions"] for r in seen), seen
    # Both sessions settled the same way: both see the results, or both see why not.
    if outcome == "finished on the other worker":
        assert rerun and key in infos and all(r["keys"] == [key] for r in seen), seen
    else:
        assert all(r["errors"] for r in seen) and key not in infos, seen
    assert "Traceback" not in d.logs("server"), d.logs("server")[-3000:]


async def click_train(url: str, cfg: TrainConfig, done, timeout: float) -> View:
    """Open Train with cfg, click Train, return the first view for which done(view) holds."""
    async with Session(url, "train", query(cfg)) as s:
        view = await s.open()
        assert "train" in view.buttons, view
        await s.click("train")
        return await s.until(done, timeout)


async def train_when_back(url: str, cfg: TrainConfig, timeout: float) -> tuple[View, list]:
    """Press Train as a visitor told "please try again" does, every few seconds until the run
    is accepted; returns the page with its outcome and the warnings of the refused presses."""
    deadline, refusals = time.monotonic() + timeout, []
    settled = lambda v: shows_outcome(v) or bool(v.alert("warning"))
    while True:
        view = await click_train(url, cfg, settled, SESSION_TIMEOUT)
        if shows_outcome(view) or time.monotonic() > deadline:
            return view, refusals
        refusals += view.alert("warning")
        await asyncio.sleep(3.0)


async def open_train(url: str, cfg: TrainConfig) -> View:
    async with Session(url, "train", query(cfg)) as s:
        return await s.open()


def restart_exited_workers(d: Deployment, names: list[str]) -> list[str]:
    """What a supervisor (systemd's Restart=always, Kubernetes) does: start again each worker
    that ended. A `dask worker` ends when its scheduler goes away (distributed 2026.8: "Stopping
    worker ... Reason: worker-handle-scheduler-connection-broken", and its nanny closes too);
    one that stays up after 30 s is left alone. Returns the names restarted."""
    restarted = []
    for name in names:
        try:
            d.procs[name].popen.wait(30)
        except subprocess.TimeoutExpired:
            continue
        d.start_worker(name)
        restarted.append(name)
    return restarted


def test_a_scheduler_restart_is_told_then_training_resumes(deployment):
    """The scheduler is killed: a new run is refused with a message, a run trained before still
    opens. It comes back at the same address, the workers are started again as a supervisor
    would, the servers reconnect by themselves, and Train works again."""
    d, urls = deployment
    workers = [n for n in ("w1", "w2") if d.procs[n].alive()]
    trained = run_async(lambda: one_session(urls[1], CONFIGS[0]))  # at once after the first test
    assert trained["results"], trained
    d.procs["scheduler"].kill_group()
    refused = lambda v: bool(v.alert("warning") or v.alert("error"))
    down = run_async(lambda: click_train(urls[0], AFTER_RESTART, refused, 60))
    before = run_async(lambda: open_train(urls[1], CONFIGS[0]))  # in the runs folder
    restarted_at = time.monotonic()
    d.start_scheduler()
    restarted = restart_exited_workers(d, workers)
    d.wait_workers(len(workers))
    rejoined = time.monotonic() - restarted_at
    back, refusals = run_async(lambda: train_when_back(urls[0], AFTER_RESTART, 60))
    write_figures(
        scheduler_restart={
            "message_while_down": [f"{k}: {b}" for k, b in down.alerts],
            "workers_restarted_by_the_supervisor": restarted,
            "workers_registered_seconds": round(rejoined, 1),
            "refused_presses_after_restart": refusals,
            "trained_after_restart_seconds": round(time.monotonic() - restarted_at, 1),
        }
    )

    warning = " ".join(down.alert("warning") + down.alert("error"))
    assert "does not answer" in warning, down.alerts
    assert not down.exceptions and not before.exceptions
    assert "Test results" in before.headings, before
    assert "Test results" in back.headings and not back.exceptions, back
    assert refusals == [], refusals  # once the workers are back, the first press trains
    assert AFTER_RESTART.key() in started_keys(d.logs("worker"))
    assert AFTER_RESTART.key() in check_every_checkpoint(d.runs)
    assert "Traceback" not in d.logs("server"), d.logs("server")[-3000:]


# Long enough to be unfinished while the same visitor asks for more (about a minute each here).
SLOW = [
    TrainConfig(dataset="digits", model="dense", latent=8, epochs=40, batch_size=1, seed=seed)
    for seed in (31, 32, 33, 34)
]


async def press_train(url: str, cfg: TrainConfig, cookie: str) -> View:
    """Click Train as the browser with this cookie; the page once it took the run or refused."""
    async with Session(url, "train", query(cfg), cookie=cookie) as s:
        await s.open()
        await s.click("train")
        taken = lambda v: any(k.startswith("cancel") for k in v.buttons) or shows_outcome(v)
        return await s.until(lambda v: bool(v.alert("warning")) or taken(v), 60)


def test_one_visitor_on_two_servers_has_one_limit(deployment):
    """A browser whose requests land on both servers is one visitor: its third unfinished run is
    refused on the other server (the limit is a semaphore on the scheduler), another browser's
    is not."""
    _, urls = deployment
    browser = xsrf_cookie()
    first = [run_async(lambda c=c: press_train(urls[0], c, browser)) for c in SLOW[:2]]
    third = run_async(lambda: press_train(urls[1], SLOW[2], browser))
    other = run_async(lambda: press_train(urls[1], SLOW[3], xsrf_cookie()))
    assert not any(view.alert("warning") for view in first), [v.alerts for v in first]
    assert "already have 2 training runs" in " ".join(third.alert("warning")), third.alerts
    assert not other.alert("warning"), other.alerts
