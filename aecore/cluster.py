"""The job runner's cluster backend: training runs as tasks on a Dask distributed cluster, shared
by every app server that names the same scheduler (AECORE_CLUSTER=tcp://scheduler:8786).

ClusterJobs has JobManager's public surface (submit, jobs_for, cancel, pause, resume, step,
waiting, result, touch, dropped_for, pause_seconds, stop_on_exit), so the pages do not know
which runner they talk to. Dask does the scheduling, queueing and messaging:

- **One run per configuration, cluster-wide.** A run is `client.submit(run_task, cfg,
  key="aecore-train-<cfg.key()>")`: the scheduler holds one task per key, so the same
  configuration asked for on several servers is trained once and every server's future
  resolves to it. A run the runs folder (the artifact store every server and worker shares)
  already holds opens at once, without the cluster. The task returns a small summary, never
  the model: each server loads the run from the store with every integrity check, and the
  store's atomic writes mean nothing half-written is ever loaded.
- **Progress** comes from the worker through a Dask Variable per run (aecore.cluster_task);
  each server reads it at most every READ_S seconds per run, whatever the number of sessions.
- **Per-visitor and queue limits across servers** are Dask Semaphores: one per visitor
  (per_session leases) and one for the cluster (max_queue leases); a new run takes a lease of
  each, released when the run ends. Chosen over counters in Variables because a Semaphore is
  atomic on the scheduler (two servers cannot both take the last lease) and its leases
  expire when the server holding them dies (distributed.scheduler.locks.lease-timeout, 30 s),
  so a crashed server cannot lock a visitor out. Joining a live run takes no lease.
- **Fair order**: a visitor's run is submitted with Dask priority -(their other live runs), so
  queued runs start everyone's first run before anyone's second, as far as Dask orders by
  priority (its scheduler queue, and each worker's queue of tasks assigned to it). The
  in-process queue also counts runs finished earlier; here only live ones count. Not measured
  by the tests (they check the limits, not the order).
- **Budget**: the same check as JobManager (aecore.jobs.check_budget, aecore.cost); the
  estimate is timed on the app server's CPU, so a faster worker only makes runs shorter.
- **Watchers**: as in JobManager, a run whose sessions all stop polling for grace_seconds is
  let go (touch() checks every few seconds); a queued run has no known place in the queue
  (snapshot.position is None).
- **Cancel** keeps JobManager's rule with the engine's own bookkeeping: a server releases its
  future when the last of its sessions cancels; the scheduler drops the task only when no
  server wants it any more, and then this server sets the run's cancel Event (which the task
  polls every 0.5 s; it also stops when its worker is told the task was released, e.g. when
  the only server that wanted it went away). What differs: `waiting()` and the "others wait"
  count see this server's sessions only, and a visitor's lease is returned when their
  server's interest ends even if the run goes on for others.
- **Pause and single steps are refused** on the cluster, with a message: the run may be on
  another machine, and a paused run would hold a worker that others queue for.
- **Faults**: a worker that dies mid-run makes Dask run the task again on another worker (up to
  distributed.scheduler.allowed-failures times; the snapshot says it restarted), then the job
  fails with a message for people. An unreachable scheduler makes submit raise
  ClusterUnavailable (a JobRejected: the pages show its message), and live runs end "failed"
  saying the cluster does not answer; runs already in the store still open.

Workers: `dask worker tcp://scheduler:8786 --nworkers $(nproc) --nthreads 1` (Dask's nanny starts
each worker with OMP_NUM_THREADS=1: one run per core) with aecore importable (PYTHONPATH)
and the same AECORE_STORE (aecore.store), or else the same AECORE_RUNS_DIR, as the app servers
(and their datasets: AECORE_DATA_DIR); the scheduler needs aecore importable too (it
unpickles the tasks). See README.md.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aecore import runcache
from aecore.cluster_task import CANCEL, PROGRESS, WATCH, run_task
from aecore.history import EpochStats
from aecore.jobs import (
    SESSION_HISTORY,
    BytesLRU,
    JobRejected,
    JobSnapshot,
    QueueFull,
    SessionLimit,
    TaskKind,
    check_budget,
    default_kinds,
    model_bytes,
)
from aecore.watch import Watch, from_record

log = logging.getLogger(__name__)

KEY_PREFIX = "aecore-train-"  # the Dask key of a run: this and the task's key()
# Semaphore names carry their limit: servers configured alike share them, and one configured
# otherwise keeps its own count rather than failing (Dask refuses a second max_leases).
QUEUE_SEMAPHORE = "aecore-queue-{limit}"
VISITOR_SEMAPHORE = "aecore-visitor-{limit}-{visitor}"
RESULT_S = 30.0  # the wait for a finished task's summary (a lost one is computed again)
READ_S = 0.3  # a run's progress is read from the scheduler at most this often per server
RETRY_S = 5.0  # after a failed connection, the next try waits this long (pages stay fast)
NO_TASK = (None, "released", "forgotten")  # the scheduler's states of a run that is not live
PAUSE_REFUSAL = (
    "Pausing and single steps are not available on the training cluster: the run may be on "
    "another machine, and a paused run would hold a worker that others wait for."
)


class _Forgotten(Exception):
    """A semaphore the scheduler no longer knows (it restarted since the semaphore was made)."""


class ClusterUnavailable(JobRejected):
    """The scheduler does not answer (or distributed is not installed); str() says so."""


def dask_key(task: Any) -> str:
    return KEY_PREFIX + task.key()


class ClusterJob:
    """One server's handle on a run of the cluster; read it with snapshot() (thread-safe)."""

    def __init__(self, runner: ClusterJobs, cfg: Any, future: Any = None) -> None:
        self.key = cfg.key()
        self.config = cfg
        self._runner = runner
        self._future = future
        self._lock = threading.Lock()
        self._subscribers: set[str] = set()
        self._leases: list[Any] = []  # semaphores this server took a lease of for the run
        self._submitted = time.time()
        self._state: dict[str, Any] = {}  # the latest progress read from the worker
        self._read = -float("inf")
        self._watch: tuple[int, Watch | None] = (0, None)
        self._workers: list[str] = []  # workers seen training it, in order
        self._final: JobSnapshot | None = None

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            if self._final is None and self._future is not None and self._future.done():
                self._final = self._runner._finish(self)
            if self._final is not None:
                return self._final
            self._refresh()
            return self._live_snapshot()

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the run ends (or timeout), then snapshot it."""
        end = None if timeout is None else time.monotonic() + timeout
        snap = self.snapshot()
        while snap.active and (end is None or time.monotonic() < end):
            time.sleep(0.1)
            snap = self.snapshot()
        return snap

    def _end(self, status: str, **fields: Any) -> JobSnapshot:
        return replace(
            self._live_snapshot(), **({"status": status, "finished": time.time()} | fields)
        )

    def _refresh(self) -> None:  # holds the lock
        if time.monotonic() - self._read < READ_S:
            return
        self._read = time.monotonic()
        name = dask_key(self.config)
        state = self._runner._read(name + PROGRESS)
        if state is None:  # queued, or between the task's end and its future's: keep the last
            return
        self._state = state
        worker = state.get("worker")  # None while queued
        if worker and (not self._workers or self._workers[-1] != worker):
            self._workers.append(worker)
            self._watch = (0, None)  # a new attempt numbers its snapshots from 1 again
        version = int(state.get("watch") or 0)
        if version > self._watch[0]:
            watch = _watch_from(self._runner._read(name + WATCH))
            if watch is not None:  # else the variable went with the task's end: keep the last
                self._watch = (version, watch)

    def _live_snapshot(self) -> JobSnapshot:  # holds the lock
        state = self._state
        history = tuple(EpochStats(**h) for h in state.get("history", []))
        note = None
        if len(self._workers) > 1:
            note = (
                "The worker that was training this run stopped; the run started again from "
                "the beginning on another worker."
            )
        return JobSnapshot(
            key=self.key,
            status=state.get("status", "queued"),
            fraction=float(state.get("fraction", 0.0)),
            history=history,
            error=None,
            position=None,
            checkpoint=None,
            cached=False,
            subscribers=len(self._subscribers),
            submitted=self._submitted,
            started=state.get("started"),
            finished=None,
            trained=state.get("trained"),
            watch=self._watch[1],
            note=note,
        )

    def __repr__(self) -> str:
        return f"ClusterJob({self.key})"


def _watch_from(value: Any) -> Watch | None:
    try:
        return from_record(_lists(value["record"]))
    except (ValueError, KeyError, TypeError):  # gone meanwhile, or not a record this app reads
        return None


def _lists(value: Any) -> Any:
    """The value as it was set: Dask's messages turn lists into tuples, and a watch record's
    reader checks for lists."""
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_lists(v) for v in value]
    return value


class ClusterJobs:
    """Runs training jobs as tasks of the Dask scheduler at `address`; shared by all sessions of
    one app server (thread-safe), and by every server that names the same scheduler."""

    pause_seconds = 0.0
    can_pause = False  # the pages offer no Pause or Step (see the module docstring)

    def __init__(
        self,
        address: str,
        max_queue: int = 16,
        per_session: int = 2,
        budget_seconds: float | None = None,
        grace_seconds: float = 120.0,
        connect_timeout: float = 5.0,
        memory_bytes: int = 256 * 2**20,
        kinds: dict[type, TaskKind] | None = None,
    ) -> None:
        if max_queue < 1 or per_session < 1:
            raise ValueError("max_queue and per_session must be >= 1")
        self.address = address
        self.max_queue, self.per_session = max_queue, per_session
        self.budget_seconds, self.grace_seconds = budget_seconds, grace_seconds
        self.connect_timeout = connect_timeout
        self._kinds = kinds or default_kinds()
        self._lock = threading.RLock()
        self._client_obj: Any = None
        self._connect_lock = threading.Lock()
        self._failed_at = -float("inf")
        self._why = ""
        self._jobs: dict[str, ClusterJob] = {}  # key -> this server's live job
        self._sessions: dict[str, list[ClusterJob]] = {}
        self._seen: dict[str, float] = {}
        self._swept = 0.0
        self._visitors: dict[str | None, Any] = {}  # Semaphore name -> it; None -> its client
        self._memory = BytesLRU(memory_bytes)

    # -- the connection ------------------------------------------------------------------------

    def unavailable(self, why: str = "") -> str:
        """The message for people when the cluster cannot be reached."""
        return (
            f"The training cluster at {self.address} does not answer{why}, so no new run can "
            "start now. Runs trained before still open; please try again in a minute."
        )

    def _client(self) -> Any:
        """The connected Client; ClusterUnavailable if the scheduler cannot be reached (tried
        again at most every RETRY_S seconds, so a page is not held up by each poll). Connecting
        holds its own lock, not the runner's: other sessions' polls go on meanwhile."""
        with self._connect_lock:
            client = self._client_obj
            if client is not None and client.status == "running":
                return client
            if client is not None and client.status == "connecting":  # Dask is reconnecting
                raise ClusterUnavailable(self.unavailable(" (reconnecting)"))
            if time.monotonic() - self._failed_at < RETRY_S:
                raise ClusterUnavailable(self._why)
            self._client_obj = self._connect()
            return self._client_obj

    def _connect(self) -> Any:  # holds the connect lock
        try:
            from distributed import Client
        except ImportError:
            self._why = (
                "AECORE_CLUSTER is set, but this server lacks the `distributed` package: "
                "install aecore[cluster], or unset AECORE_CLUSTER."
            )
            self._failed_at = time.monotonic()
            raise ClusterUnavailable(self._why) from None
        try:
            return Client(self.address, timeout=self.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as err:
            self._why = self.unavailable(f" ({type(err).__name__})")
            self._failed_at = time.monotonic()
            raise ClusterUnavailable(self._why) from None

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """fn(*args) through the client, ClusterUnavailable when the scheduler does not answer."""
        client = self._client()
        try:
            return client.sync(fn, *args, callback_timeout=self.connect_timeout, **kwargs)
        except (OSError, TimeoutError) as err:
            self._failed_at = time.monotonic()
            self._why = self.unavailable(f" ({type(err).__name__})")
            raise ClusterUnavailable(self._why) from None

    def _task_state(self, name: str) -> str | None:
        """The scheduler's state of the task (None: it holds no such task)."""
        client = self._client()
        return self._call(client.scheduler.get_task_status, keys=[name]).get(name)

    def _read(self, name: str) -> Any:
        """The value of the Variable `name`, or None (unset, or the scheduler is away)."""
        from distributed import Variable

        try:
            return Variable(name, client=self._client()).get(timeout=0.05)
        except (OSError, TimeoutError, JobRejected):
            return None

    # -- submitting ----------------------------------------------------------------------------

    def submit(self, cfg: Any, session: str, visitor: str | None = None) -> ClusterJob:
        """The job for cfg: done at once if the store holds it, joined if it is live on the
        cluster, else a new task. Raises SessionLimit, QueueFull, RunTooLong or
        ClusterUnavailable (all JobRejected, with a message for people)."""
        visitor = visitor or session
        self.touch(session)
        with self._lock:
            job = self._jobs.get(cfg.key())
            if job is not None:
                return self._subscribe(job, session)
        ckpt = self.result(cfg)
        if ckpt is not None:
            return self._cached(cfg, ckpt, session)
        name = dask_key(cfg)
        leases = []
        if self._task_state(name) in NO_TASK:  # a new run: limits apply
            check_budget(self._kind(cfg), cfg, self.budget_seconds)
            leases = self._take_leases(visitor)
        with self._lock:
            job = self._jobs.get(cfg.key())
            if job is not None:  # another session of this server was faster
                _release(leases)
                return self._subscribe(job, session)
            try:
                return self._start(cfg, name, session, leases)
            except JobRejected:
                _release(leases)
                raise

    def _start(self, cfg: Any, name: str, session: str, leases: list) -> ClusterJob:  # lock
        from distributed import Event, Variable

        client = self._client()
        try:
            if leases:  # a fresh run: clear a cancel left from an earlier run of the same key
                Event(name + CANCEL, client=client).clear()
                # Set before the task exists, so the worker's first state comes after it, and
                # readers never ask for an unset Variable (the scheduler logs each such miss).
                Variable(name + PROGRESS, client=client).set({"status": "queued"})
        except (OSError, TimeoutError) as err:
            raise ClusterUnavailable(self.unavailable(f" ({type(err).__name__})")) from None
        # Everyone's first live run before anyone's second: the scheduler serves higher first.
        priority = 1 - self._live_runs(leases[0]) if leases else 0
        future = client.submit(run_task, cfg, name, key=name, pure=False, priority=priority)
        self._wait_until_known(name)
        job = ClusterJob(self, cfg, future)
        job._leases = leases
        self._jobs[job.key] = job
        future.add_done_callback(lambda _: self._ended(job))
        return self._subscribe(job, session)

    def _wait_until_known(self, name: str, timeout: float = 2.0) -> None:
        """Wait until the scheduler holds the task just submitted. client.submit sends it in the
        background, a few milliseconds later: a second server asked for the same run meanwhile
        would find no task, and start another run, taking the visitor's lease a second time."""
        end = time.monotonic() + timeout
        while self._task_state(name) in NO_TASK:
            if time.monotonic() > end:
                return  # the scheduler is slow: the run still starts, unseen a little longer
            time.sleep(0.002)

    def _live_runs(self, semaphore: Any) -> int:
        """Live runs of the semaphore's visitor, this new one included."""
        try:
            return int(semaphore.get_value())
        except (OSError, TimeoutError):
            return 1

    def _take_leases(self, visitor: str) -> list[Any]:
        """A lease of the visitor's semaphore and of the queue's; SessionLimit or QueueFull. A
        scheduler that restarted has forgotten the semaphores: they are made again on it and
        tried once more, so the first press after a restart trains."""
        try:
            return self._try_leases(visitor)
        except _Forgotten:
            try:
                return self._try_leases(visitor)
            except _Forgotten:
                raise ClusterUnavailable(self.unavailable(" (it restarted just now)")) from None

    def _try_leases(self, visitor: str) -> list[Any]:
        mine, queue = self._semaphores(visitor)
        if not self._acquire(mine):
            raise SessionLimit(
                f"You already have {self.per_session} training runs queued or running (the "
                "limit). Wait for one to finish or cancel one."
            )
        try:
            took_queue = self._acquire(queue)
        except _Forgotten:
            _release([mine])
            raise
        if not took_queue:
            _release([mine])
            raise QueueFull(
                f"The training queue is full: {self.max_queue} runs are queued or running on "
                "the training cluster. Please try again in a minute or two. Meanwhile, "
                "configurations trained before still open at once."
            )
        return [mine, queue]

    def _semaphores(self, visitor: str) -> tuple[Any, Any]:
        """The visitor's Semaphore and the queue's, bound to the current client."""
        from distributed import Semaphore

        client = self._client()
        with self._lock:
            if self._visitors.get(None) is not client:  # a new client: its own semaphores
                self._visitors = {None: client}
            made = []
            for name, limit in (
                (
                    VISITOR_SEMAPHORE.format(limit=self.per_session, visitor=visitor),
                    self.per_session,
                ),
                (QUEUE_SEMAPHORE.format(limit=self.max_queue), self.max_queue),
            ):
                if name not in self._visitors:
                    self._visitors[name] = Semaphore(
                        limit, name, scheduler_rpc=client.scheduler, loop=client.loop
                    )
                made.append(self._visitors[name])
            return made[0], made[1]

    def _acquire(self, semaphore: Any) -> bool:
        try:
            return bool(semaphore.acquire(timeout=0))
        except RuntimeError:  # a restarted scheduler forgot it: made again on the next try
            with self._lock:
                self._visitors.pop(semaphore.name, None)
            raise _Forgotten from None
        except (OSError, TimeoutError) as err:
            raise ClusterUnavailable(self.unavailable(f" ({type(err).__name__})")) from None

    def _kind(self, task: Any) -> TaskKind:
        if type(task) not in self._kinds:
            raise TypeError(f"no runner for {type(task).__name__}; known: {list(self._kinds)}")
        return self._kinds[type(task)]

    def _subscribe(self, job: ClusterJob, session: str) -> ClusterJob:  # holds the lock
        # Not under job._lock: snapshot() takes that lock, then this one (in _finish).
        job._subscribers.add(session)
        mine = self._sessions.setdefault(session, [])
        if job not in mine:
            mine.append(job)
            ended = [j for j in mine if j._final is not None]
            for old in ended[: max(0, len(ended) - SESSION_HISTORY)]:
                mine.remove(old)
        return job

    def _cached(self, cfg: Any, ckpt: Any, session: str) -> ClusterJob:
        job = ClusterJob(self, cfg)
        history = tuple(getattr(ckpt, "history", ()))
        job._final = job._end("done", checkpoint=ckpt, cached=True, fraction=1.0, history=history)
        with self._lock:
            return self._subscribe(job, session)

    # -- the end of a run ----------------------------------------------------------------------

    def _ended(self, job: ClusterJob) -> None:
        """The future resolved (Dask's callback thread): return the leases, read the outcome
        (which lets the scheduler forget the task)."""
        with self._lock:
            leases, job._leases = job._leases, []
        _release(leases)
        job.snapshot()

    def _finish(self, job: ClusterJob) -> JobSnapshot:  # holds job._lock
        """The final snapshot of a run whose future resolved; then this server lets go of it."""
        try:
            fields = self._outcome(job)
        except Exception as err:  # the result could not be fetched: said, never a traceback
            log.warning("run %s: no result from the cluster: %r", job.key, err)
            fields = {"status": "failed", "error": self.unavailable(" (the result was lost)")}
        finally:
            self._drop(job)
        if fields["status"] == "failed":  # the task did not end by itself (a lost worker)
            self._forget_channels(dask_key(job.config))
        return job._end(**fields)

    def _outcome(self, job: ClusterJob) -> dict[str, Any]:
        future = job._future
        if future.status == "finished":
            summary = future.result(timeout=RESULT_S)
            if summary["status"] == "done":  # the phases as the worker timed them
                times = {k: summary[k] for k in ("started", "trained", "finished") if k in summary}
                return self._loaded(job) | times
            if summary["status"] == "failed":
                return {"status": "failed", "error": summary["error"]}
            return {"status": "cancelled", "reason": "everyone who asked for it left"}
        if future.status == "error":
            return {"status": "failed", "error": self._failure(future.exception())}
        return {  # cancelled under us: the scheduler went away (or restarted) and forgot it
            "status": "failed",
            "error": (
                f"The training cluster at {self.address} stopped answering while this run was "
                "queued or training, and the run was lost. Press Train to start it again once "
                "the cluster is back."
            ),
        }

    def _loaded(self, job: ClusterJob) -> dict[str, Any]:
        ckpt = self.result(job.config)  # from the store, with every integrity check
        if ckpt is None:
            return {
                "status": "failed",
                "error": (
                    "The run finished on the training cluster, but this server cannot read its "
                    "file: every app server and worker must share one artifact store "
                    "(AECORE_STORE) or one runs folder (AECORE_RUNS_DIR). Press Train to try "
                    "again."
                ),
            }
        history = tuple(getattr(ckpt, "history", ()))
        return {"status": "done", "checkpoint": ckpt, "fraction": 1.0, "history": history}

    def _failure(self, err: BaseException) -> str:
        from distributed import KilledWorker

        if isinstance(err, KilledWorker):
            return (
                "The run was lost: the training workers running it stopped several times (a "
                "machine may have run out of memory, or been restarted). Press Train to try "
                "again, perhaps with a smaller model or batch size."
            )
        return f"training failed on the cluster: {type(err).__name__}: {err}"

    def _drop(self, job: ClusterJob) -> None:
        """This server no longer wants the run: the scheduler forgets it once no server does."""
        with self._lock:
            if self._jobs.get(job.key) is job:
                del self._jobs[job.key]
            leases, job._leases = job._leases, []
        _release(leases)
        if job._future is not None:
            with contextlib.suppress(Exception):  # the client closed: nothing to release
                job._future.release()

    # -- cancelling, pausing, reading ----------------------------------------------------------

    def cancel(self, key: str, session: str) -> bool:
        """Stop waiting for a run; True when the run itself stopped (no session of any server
        waits for it any more), False when it goes on for the others."""
        with self._lock:
            mine = self._sessions.get(session, [])
            for j in [j for j in mine if j.key == key and j._final is None]:
                mine.remove(j)
            job = self._jobs.get(key)
            if job is None or session not in job._subscribers:
                return False
            job._subscribers.discard(session)
            if job._subscribers:
                return False
        return self._let_go(job, "cancelled")

    def _let_go(self, job: ClusterJob, reason: str) -> bool:
        """Release this server's interest; if the scheduler then holds no such task, nobody
        else wanted it: tell the worker through the run's Event (it saves nothing)."""
        from distributed import Event

        name = dask_key(job.config)
        with job._lock:
            job._final = job._final or job._end("cancelled", reason=reason)
        self._drop(job)
        try:
            for _ in range(10):  # the release travels on the client's batched stream
                time.sleep(0.05)
                if self._task_state(name) in NO_TASK:
                    Event(name + CANCEL, client=self._client()).set()
                    self._forget_channels(name)  # a run stopped before it started keeps them
                    return True
        except JobRejected:
            pass
        return False

    def _forget_channels(self, name: str) -> None:
        from distributed import Variable

        with contextlib.suppress(Exception):  # best effort: a left-over is a few bytes
            for suffix in (PROGRESS, WATCH):
                Variable(name + suffix, client=self._client()).delete()

    def pause(self, key: str, session: str) -> str | None:
        """Refused on the cluster (see the module docstring): the reason, for the user."""
        return PAUSE_REFUSAL

    def step(self, key: str, session: str) -> str | None:
        return PAUSE_REFUSAL

    def resume(self, key: str, session: str) -> bool:
        return False  # nothing is ever paused

    def waiting(self, key: str) -> int:
        """How many sessions of this server wait for the live run of `key`."""
        with self._lock:
            job = self._jobs.get(key)
            return len(job._subscribers) if job is not None else 0

    def result(self, cfg: Any) -> Any:
        """The finished run for cfg from memory, else from the store, else None. A file that
        fails its checks is never returned (it counts as not trained)."""
        key = cfg.key()
        ckpt = self._memory.get(key)
        if ckpt is not None:
            if ckpt.info.get("path"):
                runcache.touch(ckpt.info["path"])  # in use: the disk cache must keep it too
            return ckpt
        ckpt = self._kind(cfg).load(cfg)
        if ckpt is not None:
            self._memory.put(key, ckpt, model_bytes(ckpt.model))
        return ckpt

    def jobs_for(self, session: str) -> list[ClusterJob]:
        """This session's jobs on this server, oldest first."""
        with self._lock:
            return list(self._sessions.get(session, []))

    def dropped_for(self, visitor: str) -> list[str]:
        """Always empty: a run lives on the cluster, not in this server, so a server restart
        drops none (a run nobody waits for any more stops, as after a cancel)."""
        return []

    # -- watchers, stopping ----------------------------------------------------------------------

    def touch(self, session: str) -> None:
        """The session is still there; every few seconds, runs whose sessions all left are let go
        (the rule of JobManager's grace_seconds)."""
        now = time.monotonic()
        with self._lock:
            self._seen[session] = now
            if now - self._swept < min(5.0, self.grace_seconds):
                return
            self._swept = now
            gone = [s for s, t in self._seen.items() if now - t > self.grace_seconds]
            orphans = []
            for job in list(self._jobs.values()):
                job._subscribers.difference_update(gone)
                if not job._subscribers:
                    del self._jobs[job.key]
                    orphans.append(job)
            for s in gone:
                self._seen.pop(s, None)
                self._sessions.pop(s, None)
        for job in orphans:
            self._let_go(job, "everyone who asked for it left")

    def stop_on_exit(self) -> None:
        atexit.register(self.shutdown)

    def shutdown(self) -> None:
        """Let go of every run (the scheduler keeps those other servers want) and disconnect."""
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
            client, self._client_obj = self._client_obj, None
        for job in jobs:
            self._drop(job)
        if client is not None:
            client.close()


def _release(leases: list[Any]) -> None:
    for semaphore in leases:
        # RuntimeError: the lease timed out meanwhile (the scheduler freed it by itself).
        with contextlib.suppress(OSError, TimeoutError, RuntimeError, ValueError):
            semaphore.release()
