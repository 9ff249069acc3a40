"""Background training jobs shared by every user of one app process.

A Streamlit app keeps one JobManager in st.cache_resource, so every browser session talks to the
same object from its own thread: all state lives behind one lock, and callers only ever see
frozen JobSnapshots. Jobs are keyed by TrainConfig.key(): identical requests share one run, and a
run that was trained before (in memory, or as a checkpoint on disk) is returned without training.

    jobs = JobManager()
    job = jobs.submit(cfg, session="abc")  # may raise QueueFull / SessionLimit
    snap = job.snapshot()  # status, fraction, history, position, error, checkpoint
    jobs.cancel(job.key, "abc")

A run has two timed phases: training (started .. trained, the last epoch's end) and testing
against the baselines (trained .. finished, which includes saving the checkpoint); a snapshot
gives both as train_seconds and test_seconds, and a finished run's checkpoint carries
info["test_seconds"] (in memory; the file's info has train_seconds only).

One runner for every kind of background work: a task is a TrainConfig (a training run) or a
ClassifierSpec (the Compare page's classifier); KINDS says, per task type, how to run it, find
it on disk and name it, so both share the queue, the limits, cancelling and the polling page.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aecore import allocator, artifacts, classifier, cost, runcache, train
from aecore.checkpoints import Checkpoint, CheckpointError, load_for, runs_dir
from aecore.classifier import Classifier, ClassifierSpec
from aecore.config import TrainConfig, epochs_text
from aecore.corruptions import has_level
from aecore.data import DatasetUnavailable
from aecore.gpu import worker_stream
from aecore.history import EpochStats
from aecore.runs import train_and_save
from aecore.train import TrainingDiverged
from aecore.watch import Hooks, Watch, hooked

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed", "cancelled")
UNFINISHED = ("queued", "running")
SESSION_HISTORY = 10  # finished jobs remembered per session (unfinished ones are always kept)
# Sessions remembered at most. Each holds up to SESSION_HISTORY jobs, and a job holds its model,
# so without a bound a long-lived server would keep every model any visitor ever opened.
MAX_SESSIONS = 512
# A paused run holds the one worker. It may stay paused as long as nobody else waits; once other
# runs are queued it resumes by itself after this many seconds of pausing (counted over the
# whole run), and cannot be paused again until the queue is empty: one student's pause must not
# hold up a class.
PAUSE_SECONDS = 30.0
PAUSE_POLL = 0.25  # seconds between a paused run's checks for cancel, watchers and the queue
MAX_PENDING_STEPS = 5  # Step clicks queued while a step runs

Task = TrainConfig | ClassifierSpec
Runner = Callable[..., Any]  # train_and_save's signature: (task, on_epoch, should_stop, on_batch)


@dataclass(frozen=True)
class TaskKind:
    """How the runner treats one type of task. A task has key() and is frozen (hashable)."""

    run: Runner  # trains; returns the result (with .model and .info), or None when stopped
    load: Callable[[Any], Any | None]  # the result trained before (from disk), or None
    label: Callable[[Any], str]  # a name for people: logs and the restart notice
    check: Callable[[Any, float], None] | None = None  # raises cost.OverBudget


def _load_classifier(spec: ClassifierSpec) -> Classifier | None:
    path = classifier.find_classifier(spec)
    if path is None:
        return None
    try:
        return classifier.load_classifier(path)
    except ValueError:  # unreadable or stale: counts as not trained, so it trains again
        return None


def default_kinds(runner: Runner = train_and_save) -> dict[type, TaskKind]:
    return {
        TrainConfig: TaskKind(runner, load_for, _label, cost.check_budget),
        ClassifierSpec: TaskKind(
            classifier.run_job, _load_classifier, lambda s: f"classifier for {s.dataset}"
        ),
    }


def check_budget(kind: TaskKind, task: Task, budget_seconds: float | None) -> None:
    """Raise RunTooLong when the task's estimated cost (aecore.cost) is over budget_seconds
    (None: no limit). Both runners call it: JobManager and aecore.cluster.ClusterJobs."""
    if budget_seconds is None or kind.check is None:
        return
    try:
        kind.check(task, budget_seconds)
    except cost.OverBudget as err:
        raise RunTooLong(str(err)) from None


class JobRejected(Exception):
    """A submit was refused; str(err) is a message fit to show the user."""


class QueueFull(JobRejected):
    """Too many runs are queued or running in this process."""


class SessionLimit(JobRejected):
    """This visitor already has its share of unfinished runs."""


class RunTooLong(JobRejected):
    """The run's estimated cost is over the server's per-run budget."""


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state, taken under the manager's lock."""

    key: str
    status: str  # one of STATUSES
    fraction: float  # 0..1 of all batches of the run
    history: tuple[EpochStats, ...]
    error: str | None  # user-facing message when status == "failed"
    position: int | None  # 1-based place in the queue while queued, else None
    checkpoint: Checkpoint | Classifier | None  # the result, set when status == "done"
    cached: bool  # done without training: found in memory or on disk
    subscribers: int  # sessions waiting for this run
    submitted: float  # time.time() stamps
    started: float | None
    finished: float | None
    trained: float | None = None  # the last epoch ended: training done, testing begins
    reason: str | None = None  # why a run was cancelled, when nobody pressed Cancel
    watch: Watch | None = None  # snapshots of a training run as it learns (aecore.watch)
    paused: bool = False  # asked to pause (it stops before its next batch)
    held: bool = False  # paused and waiting now: watch.latest shows where it stopped
    note: str | None = None  # e.g. why a paused run resumed by itself

    @property
    def active(self) -> bool:
        return self.status in UNFINISHED

    @property
    def train_seconds(self) -> float | None:
        """Seconds from the start of the run to the end of its last epoch (None before then)."""
        if self.started is None or self.trained is None:
            return None
        return self.trained - self.started

    @property
    def test_seconds(self) -> float | None:
        """Seconds spent testing after training: up to now while it runs, else to the end."""
        if self.trained is None:
            return None
        return (self.finished or time.time()) - self.trained


class Job:
    """A handle on one run. Read it with snapshot(); all fields below are guarded by the lock."""

    def __init__(self, manager: JobManager, cfg: Task) -> None:
        self.key = cfg.key()
        self.config = cfg
        self._manager = manager
        self._cancel = threading.Event()  # should_stop of the runner
        self._ended = threading.Event()  # set once the job reaches a final status
        self._status = "queued"
        self._fraction = 0.0
        self._history: list[EpochStats] = []
        self._error: str | None = None
        self._checkpoint: Checkpoint | Classifier | None = None
        self._cached = False
        self._subscribers: set[str] = set()
        self._submitted = time.time()
        self._started: float | None = None
        self._finished: float | None = None
        self._trained: float | None = None
        self._owner = ""  # the visitor who queued it (limits count runs by their owner)
        self._number = 0  # numbers its "training run N started" log line
        self._reason: str | None = None
        self._watch: Watch | None = None  # the newest snapshots while it trains
        self._paused = False
        self._paused_since = 0.0  # time.monotonic() of the pause
        self._paused_for = 0.0  # seconds paused before the current pause
        self._steps = 0  # single batches allowed through while paused
        self._held = False  # waiting in the pause gate
        self._note: str | None = None

    def snapshot(self) -> JobSnapshot:
        m = self._manager
        with m._lock:
            position = None
            if self._status == "queued" and self in m._queued:
                position = m._fair_order().index(self) + 1
            return JobSnapshot(
                key=self.key,
                status=self._status,
                fraction=self._fraction,
                history=tuple(self._history),
                error=self._error,
                position=position,
                checkpoint=self._checkpoint,
                cached=self._cached,
                subscribers=len(self._subscribers),
                submitted=self._submitted,
                started=self._started,
                finished=self._finished,
                trained=self._trained,
                reason=self._reason,
                # A finished run's snapshots travel with its model (aecore.watch.attach).
                watch=self._watch or getattr(self._checkpoint, "watch", None),
                paused=self._paused,
                held=self._held,
                note=self._note,
            )

    def wait(self, timeout: float | None = None) -> JobSnapshot:
        """Block until the job is done, failed or cancelled (or timeout), then snapshot it."""
        self._ended.wait(timeout)
        return self.snapshot()

    def _end(self, status: str) -> None:  # caller holds the lock
        self._status = status
        self._finished = time.time()
        self._ended.set()

    def __repr__(self) -> str:
        return f"Job({self.key}, {self._status})"


def describe_error(err: BaseException, key: str = "") -> str:
    """A message for the user; unexpected errors are logged with their traceback."""
    if isinstance(err, torch.cuda.OutOfMemoryError | MemoryError) or "out of memory" in str(err):
        log.warning("training run %s ran out of memory: %s", key, str(err).partition("\n")[0])
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # hand the failed run's blocks back before the next run
        return (
            "training ran out of memory: choose a smaller batch size (or a smaller model) "
            "and try again"
        )
    if isinstance(err, DatasetUnavailable):
        log.warning("training run %s: %s", key, err.detail)
    if isinstance(err, TrainingDiverged | ValueError | DatasetUnavailable):
        return str(err)
    if isinstance(err, CheckpointError):  # a full disk, a folder that cannot be written
        log.warning("training run %s: %s (%s)", key, err, getattr(err, "technical", ""))
        return str(err)
    log.error("training run %s failed", key, exc_info=err)
    return f"training failed: {type(err).__name__}: {err}"


class JobManager:
    """Runs training jobs on worker threads; shared by all sessions, so every method is
    thread-safe.

    workers=1 by default, on purpose: PyTorch's intra-op (OpenMP) threads already use every
    core for one run. Two runs in two threads on a 2-core machine fight over the same cores and
    were measured about 10x slower than one run alone, so jobs queue and each runs at full speed.

    Sharing one server with a class:
    - Limits count *visitors* (a browser, across its reloads and tabs; the page layer says how it
      tells them apart), not sessions: at most per_session unfinished runs started by one
      visitor, at most max_queue runs queued or running. Joining a live run is always allowed.
    - The queue serves visitors in turn: the next run is the oldest one of the visitor who has
      had the fewest runs started, so one visitor's many runs cannot push everyone back.
    - budget_seconds (None: no limit) refuses a run whose estimated cost (aecore.cost) is over
      it, with the estimate and a cheaper config that fits.
    - A run whose every watcher is gone (no touch() from any of its sessions for grace_seconds)
      stops; Cancel stops a run only when nobody else waits for it.
    - Finished runs stay in memory up to memory_bytes of weights (and memory_items runs).
    - state_file (None: none) lists the unfinished runs and their visitors; a restart reads it,
      so visitors can be told that their run was dropped (dropped_for).
    Worker threads are daemons: a stopping server is not held up by a run (see stop_on_exit).
    """

    can_pause = True  # Pause, Resume and Step work (aecore.cluster's runner says False)

    def __init__(
        self,
        workers: int = 1,
        max_queue: int = 16,
        per_session: int = 2,
        runner: Runner = train_and_save,
        kinds: dict[type, TaskKind] | None = None,
        memory_items: int = 32,
        memory_bytes: int = 256 * 2**20,
        budget_seconds: float | None = None,
        grace_seconds: float = 120.0,
        state_file: Path | None = None,
        pause_seconds: float = PAUSE_SECONDS,
    ) -> None:
        if workers < 1 or max_queue < 1 or per_session < 1 or memory_items < 0:
            raise ValueError("workers, max_queue and per_session must be >= 1, memory_items >= 0")
        self.max_queue = max_queue
        self.per_session = per_session
        self.memory_items = memory_items
        self.memory_bytes = memory_bytes
        self.budget_seconds = budget_seconds
        self.grace_seconds = grace_seconds
        self.pause_seconds = pause_seconds
        self._kinds = kinds or default_kinds(runner)  # runner: how a TrainConfig trains
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # a job was queued, or stop() was called
        self._unpause = threading.Condition(self._lock)  # resume, step, cancel, stop
        self._stopping = False
        self._jobs: dict[str, Job] = {}  # key -> the live (queued or running) job for that key
        self._queued: list[Job] = []  # in submission order; _fair_order() is the serving order
        self._running: set[Job] = set()  # includes runs that are cancelled but not yet stopped
        self._sessions: OrderedDict[str, list[Job]] = OrderedDict()  # least recently active first
        self._visitor: dict[str, str] = {}  # session -> visitor
        self._seen: dict[str, float] = {}  # session -> last touch()
        self._served: dict[str, int] = {}  # visitor -> runs started for them
        self._memory: OrderedDict[str, Checkpoint] = OrderedDict()  # LRU, newest last
        self._runs_started = 0  # numbers the "training run N started" log lines
        self._state_file = state_file
        self._dropped = _read_state(state_file)  # visitor -> labels of runs a restart dropped
        if self._dropped:
            self._save_state()  # told from memory from now on; the next restart must not repeat it
        # A process killed mid-write leaves a temporary file; a restart is when to sweep them.
        runcache.remove_stale_temps(runs_dir())
        self._workers = [
            threading.Thread(target=self._work, name=f"aecore-train-{i}", daemon=True)
            for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()

    # -- submitting -------------------------------------------------------------------------

    def submit(self, cfg: Task, session: str, visitor: str | None = None) -> Job:
        """The job for cfg: a finished one at once if it was trained before, the live one if it is
        already queued or running, else a new queued one. Raises QueueFull, SessionLimit or
        RunTooLong. `visitor` (default: the session) is whom the limits count."""
        key = cfg.key()
        visitor = visitor or session
        with self._lock:
            self._visitor[session] = visitor
            self._seen[session] = time.monotonic()
            job = self._live(key)
            if job is not None:
                return self._subscribe(job, session)
        ckpt = self.result(cfg)  # may read a file: outside the lock, so others are not blocked
        with self._lock:
            job = self._live(key)  # another session may have queued it meanwhile
            if job is not None:
                return self._subscribe(job, session)
            ckpt = ckpt or self._memory.get(key)  # or a run may have finished meanwhile
            if ckpt is not None:
                job = Job(self, cfg)
                job._checkpoint, job._cached, job._fraction = ckpt, True, 1.0
                job._history = list(ckpt.history)
                job._end("done")
                self._remember(session, job)
                return job
            self._check_limits(visitor)
        self._check_budget(cfg)  # times a few steps: outside the lock
        with self._lock:
            job = self._live(key)
            if job is not None:
                return self._subscribe(job, session)
            self._check_limits(visitor)
            job = Job(self, cfg)
            job._owner = visitor
            self._queued.append(job)
            self._jobs[key] = job
            self._subscribe(job, session)
            self._save_state()
            self._wake.notify()
            return job

    def _check_budget(self, cfg: Task) -> None:
        check_budget(self._kind(cfg), cfg, self.budget_seconds)

    def _kind(self, task: Any) -> TaskKind:
        if type(task) not in self._kinds:
            raise TypeError(f"no runner for {type(task).__name__}; known: {list(self._kinds)}")
        return self._kinds[type(task)]

    def _label(self, job: Job) -> str:
        return self._kind(job.config).label(job.config)

    def _live(self, key: str) -> Job | None:
        job = self._jobs.get(key)
        # A run being cancelled cannot be revived (its runner may already have stopped).
        return job if job is not None and not job._cancel.is_set() else None

    def _subscribe(self, job: Job, session: str) -> Job:
        job._subscribers.add(session)
        if job._paused and len(job._subscribers) > 1:  # shared now: nobody may hold it
            self._end_pause(job)
            job._note = "Resumed: another session asked for this same run."
        self._remember(session, job)
        return job

    def _remember(self, session: str, job: Job) -> None:
        jobs = self._sessions.setdefault(session, [])
        self._sessions.move_to_end(session)
        if job not in jobs:
            jobs.append(job)
            finished = [j for j in jobs if j._status not in UNFINISHED]
            for old in finished[: max(0, len(finished) - SESSION_HISTORY)]:
                jobs.remove(old)
        # Forget the least recently active sessions, but never one with an unfinished run.
        for name in list(self._sessions) if len(self._sessions) > MAX_SESSIONS else []:
            if len(self._sessions) <= MAX_SESSIONS:
                break
            if name != session and all(j._status not in UNFINISHED for j in self._sessions[name]):
                del self._sessions[name]
                self._visitor.pop(name, None)
                self._seen.pop(name, None)

    def _check_limits(self, visitor: str) -> None:  # caller holds the lock
        mine = sum(j._owner == visitor for j in self._jobs.values())
        if mine >= self.per_session:
            raise SessionLimit(
                f"You already have {mine} training run{'s' if mine != 1 else ''} queued or "
                f"running (the limit is {self.per_session}). Wait for one to finish or cancel one."
            )
        ahead = len(self._queued) + len(self._running)
        if ahead >= self.max_queue:
            raise QueueFull(
                f"The training queue is full: {ahead} run{'s are' if ahead != 1 else ' is'} ahead "
                f"of yours (the limit is {self.max_queue}). Please try again in a minute or two. "
                "Meanwhile, configurations trained before, or being trained for someone else "
                "right now, still open at once."
            )

    def _fair_order(self) -> list[Job]:  # caller holds the lock
        """The queue in serving order: visitors take turns, each visitor's runs oldest first."""
        turn: dict[str, int] = {}
        ranked = []
        for index, job in enumerate(self._queued):
            n = turn.get(job._owner, 0)
            turn[job._owner] = n + 1
            ranked.append((self._served.get(job._owner, 0) + n, index, job))
        return [job for *_, job in sorted(ranked, key=lambda r: r[:2])]

    # -- watchers ---------------------------------------------------------------------------

    def touch(self, session: str) -> None:
        """The session is still there (its page ran, or its live panel polled)."""
        with self._lock:
            self._seen[session] = time.monotonic()

    def _orphaned(self, job: Job) -> bool:  # caller holds the lock
        now = time.monotonic()
        return all(now - self._seen.get(s, 0.0) > self.grace_seconds for s in job._subscribers)

    # -- running ----------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            with self._lock:
                job = self._take()
                while job is None and not self._stopping:
                    self._wake.wait()
                    job = self._take()
                if job is None:
                    return
            self._run(job)

    def _take(self) -> Job | None:  # caller holds the lock
        """The next job to run, moved to running; queued jobs nobody watches are dropped."""
        for job in self._fair_order():
            if self._orphaned(job):
                self._drop_queued(job, "everyone who asked for it left")
                continue
            self._queued.remove(job)
            self._running.add(job)
            job._status = "running"
            job._started = time.time()
            self._served[job._owner] = self._served.get(job._owner, 0) + 1
            self._runs_started += 1
            job._number = self._runs_started
            return job
        return None

    def _drop_queued(self, job: Job, reason: str) -> None:  # caller holds the lock
        job._cancel.set()
        job._reason = reason
        self._queued.remove(job)
        if self._jobs.get(job.key) is job:
            del self._jobs[job.key]
        job._end("cancelled")
        self._save_state()

    def _run(self, job: Job) -> None:
        number = job._number
        # One line per training run: operators (and the load test) count runs with it.
        log.info("training run %d started: %s (key %s)", number, self._label(job), job.key)
        ckpt, error = None, None
        hooks = Hooks(publish=lambda w: self._on_watch(job, w), paused=lambda: self._paused(job))
        try:
            # hooked: a training run on this thread publishes its snapshots here; worker_stream:
            # on a GPU each worker's runs go on a CUDA stream of their own, so workers overlap.
            with hooked(hooks), worker_stream(train.pick_device()):
                ckpt = self._kind(job.config).run(
                    job.config,
                    on_epoch=lambda stats: self._on_epoch(job, stats),
                    should_stop=lambda: self._gate(job),
                    on_batch=lambda fraction: self._on_batch(job, fraction),
                )
        except Exception as err:
            error = describe_error(err, job.key)
        finally:
            with self._lock:
                self._finish(job, ckpt, error)
                status, seconds = job._status, job._finished - job._started
                phases = ""
                if job._trained is not None:
                    phases = (
                        f" (training {job._trained - job._started:.1f} s, "
                        f"testing {job._finished - job._trained:.1f} s)"
                    )
            log.info(
                "training run %d %s after %.1f s%s (key %s)",
                number,
                status,
                seconds,
                phases,
                job.key,
            )
            allocator.release()  # the memory kept for its steps goes back, unless a run trains

    def _finish(self, job: Job, ckpt: Checkpoint | None, error: str | None) -> None:
        self._running.discard(job)  # caller holds the lock
        self._end_pause(job)
        job._watch = None  # a saved run's snapshots travel with its model; a failed run's go
        if self._jobs.get(job.key) is job:
            del self._jobs[job.key]
        if error is not None:
            job._error = error
            job._end("failed")
        elif ckpt is None:  # the runner saw should_stop and saved nothing
            job._end("cancelled")
        else:
            job._checkpoint = ckpt
            job._fraction = 1.0
            now = time.time()
            if job._trained is None:  # a runner that reported no epochs
                job._trained = now
            ckpt.info.setdefault("test_seconds", now - job._trained)
            self._memorize(job.key, ckpt)
            job._end("done")
        self._save_state()

    def _on_epoch(self, job: Job, stats: EpochStats) -> None:
        with self._lock:
            job._history.append(stats)
            if stats.epoch >= stats.epochs:  # the last epoch: testing starts now
                job._trained = time.time()
                self._end_pause(job)  # testing cannot pause (the runner asks should_stop too)

    def _on_batch(self, job: Job, fraction: float) -> None:
        with self._lock:
            job._fraction = min(1.0, max(0.0, float(fraction)))
            if not job._cancel.is_set() and self._orphaned(job):
                job._reason = "everyone who asked for it left"
                job._cancel.set()
                log.info(
                    "run %s stopped: nobody has watched it for %gs", job.key, self.grace_seconds
                )

    # -- watching, pausing -----------------------------------------------------------------------

    def _on_watch(self, job: Job, watch: Watch) -> None:
        with self._lock:
            job._watch = watch

    def _paused(self, job: Job) -> bool:
        with self._lock:
            return job._paused

    def _gate(self, job: Job) -> bool:
        """The runner's should_stop: True once cancelled; while paused, blocks (letting single
        steps through) until resumed, cancelled, auto-resumed or everyone left."""
        with self._lock:
            try:
                self._hold(job)
            finally:
                job._held = False
            return job._cancel.is_set()

    def _hold(self, job: Job) -> None:  # caller holds the lock
        while job._paused and not job._cancel.is_set():
            if job._steps > 0:
                job._steps -= 1
                return
            if self._orphaned(job):
                job._reason = "everyone who asked for it left"
                job._cancel.set()
                return
            if self._queued and self._pause_used(job) >= self.pause_seconds:
                self._end_pause(job)
                job._note = (
                    f"Resumed by itself after {self.pause_seconds:g} s of pausing: "
                    f"{len(self._queued)} other run(s) wait for the trainer, which trains one "
                    "run at a time."
                )
                log.info("run %s resumed by itself: others are queued", job.key)
                return
            job._held = True
            self._unpause.wait(PAUSE_POLL)

    def _pause_used(self, job: Job) -> float:  # caller holds the lock
        now = time.monotonic()
        return job._paused_for + (now - job._paused_since if job._paused else 0.0)

    def _end_pause(self, job: Job) -> None:  # caller holds the lock
        if job._paused:
            job._paused_for = self._pause_used(job)
            job._paused = False
        job._steps = 0
        self._unpause.notify_all()

    def _pause_refusal(self, job: Job | None, session: str) -> str | None:  # holds the lock
        """Why this session may not pause (or single-step) the run, or None."""
        if job is None or job._status != "running" or job._cancel.is_set():
            return "This run is not training right now."
        if not isinstance(job.config, TrainConfig) or job._watch is None:
            return "Only a training run can be paused."
        if job._trained is not None:
            return "Training is over; the run is being tested and saved."
        if session not in job._subscribers:
            return "You are not watching this run."
        others = len(job._subscribers) - 1
        if others:  # the rule of cancel: only a run nobody else waits for
            return f"{others} other session(s) watch this run, so it cannot be paused."
        if self._queued and self._pause_used(job) >= self.pause_seconds:
            return (
                f"Other runs wait for the trainer and this run has been paused for "
                f"{self.pause_seconds:g} s already: it can pause again once the queue is empty."
            )
        return None

    def pause(self, key: str, session: str) -> str | None:
        """Pause the live training run of `key` before its next batch. None when paused (or
        already paused), else why not, in words for the user. Only a session that alone waits
        for the run may pause it (the rule of cancel); see PAUSE_SECONDS for the time limit."""
        with self._lock:
            job = self._jobs.get(key)
            why = self._pause_refusal(job, session)
            if why is None and not job._paused:
                job._paused, job._paused_since, job._note = True, time.monotonic(), None
            return why

    def resume(self, key: str, session: str) -> bool:
        """Resume a paused run; any session that waits for it may. True if it was paused."""
        with self._lock:
            job = self._jobs.get(key)
            if job is None or not job._paused or session not in job._subscribers:
                return False
            self._end_pause(job)
            return True

    def step(self, key: str, session: str) -> str | None:
        """Let a paused run train one batch, then pause again (and snapshot). None when done,
        else why not: the pause rules, and only for models of at most STEP_MAX_PARAMS."""
        with self._lock:
            job = self._jobs.get(key)
            why = self._pause_refusal(job, session)
            if why is None and not job._paused:
                why = "Pause the run first."
            if why is None and not job._watch.can_step:
                n = job._watch.params
                why = f"Single steps are for small models; this one has {n:,} parameters."
            if why is None:
                job._steps = min(job._steps + 1, MAX_PENDING_STEPS)
                self._unpause.notify_all()
            return why

    # -- cancelling, reading ----------------------------------------------------------------

    def cancel(self, key: str, session: str) -> bool:
        """Stop waiting for a run. The run itself stops only when no other session waits for it.

        The job leaves this session's list either way. Returns True when the run was stopped
        (a queued run never starts; a running one stops at its next batch and saves nothing),
        False when it goes on for the others who wait for it.
        """
        with self._lock:
            mine = self._sessions.get(session, [])
            for j in [j for j in mine if j.key == key and j._status in UNFINISHED]:
                mine.remove(j)
            job = self._jobs.get(key)
            if job is None or session not in job._subscribers:
                return False
            job._subscribers.discard(session)
            if job._subscribers:
                return False
            job._cancel.set()
            self._unpause.notify_all()
            if job._status == "queued":
                self._drop_queued(job, None)
            self._save_state()
            return True

    def waiting(self, key: str) -> int:
        """How many sessions wait for the live run of `key` (0 if none is live)."""
        with self._lock:
            job = self._jobs.get(key)
            return len(job._subscribers) if job is not None else 0

    def result(self, cfg: Task) -> Checkpoint | Classifier | None:
        """The finished run for cfg from memory, else from disk, else None (not trained).

        A file on disk that fails its checks is never returned (see checkpoints.load_for): the
        configuration counts as not trained, so submitting it trains it again."""
        key = cfg.key()
        with self._lock:
            ckpt = self._memory.get(key)
            if ckpt is not None:
                self._memory.move_to_end(key)
        if ckpt is not None:
            if ckpt.info.get("path"):
                runcache.touch(ckpt.info["path"])  # in use: the disk cache must keep it too
            return ckpt
        ckpt = self._kind(cfg).load(cfg)
        if ckpt is None:
            return None
        with self._lock:
            self._memorize(key, ckpt)
        return ckpt

    def _memorize(self, key: str, ckpt: Checkpoint) -> None:  # caller holds the lock
        self._memory[key] = ckpt
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items or (
            len(self._memory) > 1 and self.memory_used() > self.memory_bytes
        ):
            self._memory.popitem(last=False)

    def memory_used(self) -> int:
        """Bytes of weights held by the finished runs kept in memory."""
        return sum(model_bytes(c.model) for c in self._memory.values())

    def jobs_for(self, session: str) -> list[Job]:
        """This session's jobs, oldest first: its unfinished ones and its last finished ones."""
        with self._lock:
            return list(self._sessions.get(session, []))

    def dropped_for(self, visitor: str) -> list[str]:
        """Names of this visitor's runs that the last restart dropped; each is told once."""
        with self._lock:
            return self._dropped.pop(visitor, [])

    # -- state across restarts, stopping --------------------------------------------------------

    def _save_state(self) -> None:  # caller holds the lock (or __init__)
        if self._state_file is None:
            return
        live = [
            {"visitor": j._owner, "label": self._label(j), "key": j.key}
            for j in [*self._running, *self._queued]
            if not j._cancel.is_set()
        ]
        try:
            self._state_file.parent.mkdir(parents=True, exist_ok=True)
            artifacts.write_atomic(self._state_file, json.dumps({"unfinished": live}).encode())
        except OSError as err:  # a read-only or full disk: the notice after a restart is lost
            log.warning("could not record the queue in %s: %s", self._state_file, err)

    def stop(self, reason: str = "the server is restarting", wait: float = 3.0) -> None:
        """Cancel every run (nothing partial is kept) and let the workers end; waits up to
        `wait` seconds for a running run to notice. The state file keeps the unfinished runs,
        so the next start can tell their visitors."""
        with self._lock:
            self._state_file = None  # the file keeps what was unfinished, for the next start
            self._stopping = True
            for job in list(self._jobs.values()):
                job._reason = reason
                job._cancel.set()
                if job._status == "queued":
                    self._queued.remove(job)
                    del self._jobs[job.key]
                    job._end("cancelled")
            running = list(self._running)
            self._wake.notify_all()
            self._unpause.notify_all()
        deadline = time.monotonic() + wait
        for job in running:
            job._ended.wait(max(0.0, deadline - time.monotonic()))

    def stop_on_exit(self) -> None:
        """Call stop() when the process exits (a redeploy's SIGTERM): worker threads are
        daemons, so the interpreter does not wait for a run to finish."""
        atexit.register(self.stop)

    def shutdown(self, wait: bool = True) -> None:
        """Stop every run and the worker threads (for tests and clean exits)."""
        self.stop(reason="the job manager was shut down", wait=30.0 if wait else 0.0)
        if wait:
            for worker in self._workers:
                worker.join(30)


class BytesLRU:
    """A thread-safe least-recently-used map of finished runs, bounded by the bytes of their
    weights (and a count): the newest entry always stays, however large."""

    def __init__(self, max_bytes: int, max_items: int = 1 << 30) -> None:
        self.max_bytes, self.max_items = max_bytes, max_items
        self._items: OrderedDict = OrderedDict()  # key -> (value, bytes)
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key, value, size: int) -> None:
        with self._lock:
            self._items[key] = (value, size)
            self._items.move_to_end(key)
            while len(self._items) > 1 and (
                len(self._items) > self.max_items or self.used() > self.max_bytes
            ):
                self._items.popitem(last=False)

    def used(self) -> int:
        return sum(size for _, size in self._items.values())

    def __len__(self) -> int:
        return len(self._items)


def model_bytes(model: torch.nn.Module) -> int:
    """Bytes of a model's parameters and buffers."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def _read_state(path: Path | None) -> dict[str, list[str]]:
    """visitor -> labels of the runs the file lists as unfinished (the last process's)."""
    if path is None or not path.is_file():
        return {}
    try:
        live = json.loads(path.read_text())["unfinished"]
        dropped: dict[str, list[str]] = {}
        for item in live:
            dropped.setdefault(str(item["visitor"]), []).append(str(item["label"]))
        return dropped
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("ignoring the unreadable queue file %s: %s", path, err)
        return {}


def _label(cfg: TrainConfig) -> str:
    level = f" {cfg.level:g}" if has_level(cfg.corruption) else ""
    return f"{cfg.model} on {cfg.dataset}, {cfg.corruption}{level}, {epochs_text(cfg.epochs)}"
