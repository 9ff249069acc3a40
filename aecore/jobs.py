"""Background training jobs shared by every user of one app process.

A Streamlit app keeps one JobManager in st.cache_resource, so every browser session talks to the
same object from its own thread: all state lives behind one lock, and callers only ever see
frozen JobSnapshots. Jobs are keyed by TrainConfig.key(): identical requests share one run, and a
run that was trained before (in memory, or as a checkpoint on disk) is returned without training.

    jobs = JobManager()
    job = jobs.submit(cfg, session="abc")  # may raise QueueFull / SessionLimit
    snap = job.snapshot()  # status, fraction, history, position, error, checkpoint
    jobs.cancel(job.key, "abc")
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import torch

from aecore import runcache
from aecore.checkpoints import Checkpoint, load_for, runs_dir
from aecore.config import TrainConfig
from aecore.data import DatasetUnavailable
from aecore.runs import train_and_save
from aecore.train import EpochStats, TrainingDiverged

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed", "cancelled")
UNFINISHED = ("queued", "running")
SESSION_HISTORY = 10  # finished jobs remembered per session (unfinished ones are always kept)
# Sessions remembered at most. Each holds up to SESSION_HISTORY jobs, and a job holds its model,
# so without a bound a long-lived server would keep every model any visitor ever opened.
MAX_SESSIONS = 512

Runner = Callable[..., Checkpoint | None]  # train_and_save's signature


class JobRejected(Exception):
    """A submit was refused; str(err) is a message fit to show the user."""


class QueueFull(JobRejected):
    """Too many runs are queued or running in this process."""


class SessionLimit(JobRejected):
    """This session already has its share of unfinished runs."""


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state, taken under the manager's lock."""

    key: str
    status: str  # one of STATUSES
    fraction: float  # 0..1 of all batches of the run
    history: tuple[EpochStats, ...]
    error: str | None  # user-facing message when status == "failed"
    position: int | None  # 1-based place in the queue while queued, else None
    checkpoint: Checkpoint | None  # set when status == "done"
    cached: bool  # done without training: found in memory or on disk
    subscribers: int  # sessions waiting for this run
    submitted: float  # time.time() stamps
    started: float | None
    finished: float | None

    @property
    def active(self) -> bool:
        return self.status in UNFINISHED


class Job:
    """A handle on one run. Read it with snapshot(); all fields below are guarded by the lock."""

    def __init__(self, manager: JobManager, cfg: TrainConfig) -> None:
        self.key = cfg.key()
        self.config = cfg
        self._manager = manager
        self._cancel = threading.Event()  # should_stop of the runner
        self._ended = threading.Event()  # set once the job reaches a final status
        self._status = "queued"
        self._fraction = 0.0
        self._history: list[EpochStats] = []
        self._error: str | None = None
        self._checkpoint: Checkpoint | None = None
        self._cached = False
        self._subscribers: set[str] = set()
        self._submitted = time.time()
        self._started: float | None = None
        self._finished: float | None = None
        self._future: Future | None = None

    def snapshot(self) -> JobSnapshot:
        m = self._manager
        with m._lock:
            position = None
            if self._status == "queued" and self in m._queued:
                position = m._queued.index(self) + 1
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
    if isinstance(err, TrainingDiverged | ValueError | DatasetUnavailable):
        return str(err)
    log.error("training run %s failed", key, exc_info=err)
    return f"training failed: {type(err).__name__}: {err}"


class JobManager:
    """Runs training jobs in a thread pool; shared by all sessions, so every method is thread-safe.

    workers=1 by default, on purpose: PyTorch's intra-op (OpenMP) threads already use every
    core for one run, and they spin-wait between ops. Two runs in two threads on a 2-core machine
    fight over the same cores and were measured about 10x slower than one run alone, so jobs
    queue and each runs at full speed. More workers only pay off when runs do not share the CPU
    (e.g. on a GPU, or after torch.set_num_threads(cores // workers), which is process-wide).

    Limits keep one process usable by a class of students: at most max_queue runs queued or
    running, at most per_session unfinished runs started by one session. Joining a run that is
    already queued or running is always allowed: it costs nothing.
    """

    def __init__(
        self,
        workers: int = 1,
        max_queue: int = 16,
        per_session: int = 2,
        runner: Runner = train_and_save,
        memory_items: int = 32,
    ) -> None:
        if workers < 1 or max_queue < 1 or per_session < 1 or memory_items < 0:
            raise ValueError("workers, max_queue and per_session must be >= 1, memory_items >= 0")
        self.max_queue = max_queue
        self.per_session = per_session
        self.memory_items = memory_items
        self._runner = runner
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="aecore-train")
        self._lock = threading.Lock()
        self._jobs: dict[str, Job] = {}  # key -> the live (queued or running) job for that key
        self._queued: list[Job] = []  # in start order; position = index + 1
        self._running: set[Job] = set()  # includes runs that are cancelled but not yet stopped
        self._sessions: OrderedDict[str, list[Job]] = OrderedDict()  # least recently active first
        self._memory: OrderedDict[str, Checkpoint] = OrderedDict()  # LRU, newest last
        self._runs_started = 0  # numbers the "training run N started" log lines
        # A process killed mid-write leaves a temporary file; a restart is when to sweep them.
        runcache.remove_stale_temps(runs_dir())

    # -- submitting -------------------------------------------------------------------------

    def submit(self, cfg: TrainConfig, session: str) -> Job:
        """The job for cfg: a finished one at once if it was trained before, the live one if it is
        already queued or running, else a new queued one. Raises QueueFull or SessionLimit."""
        key = cfg.key()
        with self._lock:
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
            self._check_limits(session)
            job = Job(self, cfg)
            self._queued.append(job)
            self._jobs[key] = job
            self._subscribe(job, session)
            job._future = self._pool.submit(self._run, job)
            return job

    def _live(self, key: str) -> Job | None:
        job = self._jobs.get(key)
        # A run being cancelled cannot be revived (its runner may already have stopped).
        return job if job is not None and not job._cancel.is_set() else None

    def _subscribe(self, job: Job, session: str) -> Job:
        job._subscribers.add(session)
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

    def _check_limits(self, session: str) -> None:
        mine = sum(j._status in UNFINISHED for j in self._sessions.get(session, []))
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

    # -- running ----------------------------------------------------------------------------

    def _run(self, job: Job) -> None:
        with self._lock:
            if job._cancel.is_set():  # cancelled while queued: never starts
                return
            self._queued.remove(job)
            self._running.add(job)
            job._status = "running"
            job._started = time.time()
            self._runs_started += 1
            number = self._runs_started
        # One line per training run: operators (and the load test) count runs with it.
        log.info("training run %d started: %s (key %s)", number, _label(job.config), job.key)
        ckpt, error = None, None
        try:
            ckpt = self._runner(
                job.config,
                on_epoch=lambda stats: self._on_epoch(job, stats),
                should_stop=job._cancel.is_set,
                on_batch=lambda fraction: self._on_batch(job, fraction),
            )
        except Exception as err:
            error = describe_error(err, job.key)
        finally:
            with self._lock:
                self._running.discard(job)
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
                    self._memorize(job.key, ckpt)
                    job._end("done")
                status, seconds = job._status, job._finished - job._started
            log.info("training run %d %s after %.1f s (key %s)", number, status, seconds, job.key)

    def _on_epoch(self, job: Job, stats: EpochStats) -> None:
        with self._lock:
            job._history.append(stats)

    def _on_batch(self, job: Job, fraction: float) -> None:
        with self._lock:
            job._fraction = min(1.0, max(0.0, float(fraction)))

    # -- cancelling, reading ----------------------------------------------------------------

    def cancel(self, key: str, session: str) -> bool:
        """Stop waiting for a run. The run itself stops only when no other session waits for it.

        The job leaves this session's list either way. Returns True when the run was stopped
        (a queued run never starts; a running one stops at its next batch and saves nothing).
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
            if job._status == "queued":
                self._queued.remove(job)
                del self._jobs[key]
                if job._future is not None:
                    job._future.cancel()
                job._end("cancelled")
            return True

    def result(self, cfg: TrainConfig) -> Checkpoint | None:
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
        ckpt = load_for(cfg)
        if ckpt is None:
            return None
        with self._lock:
            self._memorize(key, ckpt)
        return ckpt

    def _memorize(self, key: str, ckpt: Checkpoint) -> None:  # caller holds the lock
        self._memory[key] = ckpt
        self._memory.move_to_end(key)
        while len(self._memory) > self.memory_items:
            self._memory.popitem(last=False)

    def jobs_for(self, session: str) -> list[Job]:
        """This session's jobs, oldest first: its unfinished ones and its last finished ones."""
        with self._lock:
            return list(self._sessions.get(session, []))

    def shutdown(self, wait: bool = True) -> None:
        """Stop every run and the worker threads (for tests and clean exits)."""
        with self._lock:
            for job in list(self._jobs.values()):
                job._cancel.set()
                if job._status == "queued":
                    self._queued.remove(job)
                    job._end("cancelled")
            self._jobs.clear()
        self._pool.shutdown(wait=wait, cancel_futures=True)


def _label(cfg: TrainConfig) -> str:
    level = "" if cfg.corruption == "none" else f" {cfg.level:g}"
    return f"{cfg.model} on {cfg.dataset}, {cfg.corruption}{level}, {cfg.epochs} epoch(s)"
