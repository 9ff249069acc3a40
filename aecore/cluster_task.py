"""The worker side of the training cluster (aecore.cluster): what one Dask task does.

`run_task(task, name)` runs on a Dask worker (started with `dask worker tcp://...`, aecore
importable, the same runs folder as the app servers). It trains through the same TaskKind as the
in-process runner (aecore.jobs.default_kinds: train_and_save for a TrainConfig), and talks to
the app servers only through Dask's own channels, all named after the task's key `name`:

- `Variable(name + PROGRESS)`: the latest state (status, fraction, epochs, times, worker), set
  at most every PUBLISH_S seconds, so a run costs the scheduler a few small messages a second;
- `Variable(name + WATCH)`: the newest "watch it learn" snapshots (aecore.watch.to_record,
  plain data), set only when a new snapshot was taken, since it is the larger message;
- `Event(name + CANCEL)`: set by the app server that cancelled the run; should_stop reads it
  (and whether the scheduler still wants the task at all) at most every POLL_S seconds, never
  per batch.

The task returns a small summary (status, the checkpoint's path, an error message for people),
never the model: the app loads the run from the runs folder with every integrity check. Each
real training logs one line "training run N started: <label> (key <key>)" (N counts this
worker process's runs) and records the Dask event TOPIC, so operators and tests count trainings.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from dataclasses import asdict
from typing import Any

from aecore.history import EpochStats
from aecore.watch import Hooks, Watch, hooked, to_record

log = logging.getLogger(__name__)

PROGRESS, WATCH, CANCEL = "-progress", "-watch", "-cancel"  # suffixes of the channel names
# The Dask event topic: {"event": "started" | "ended", "key", "number"(, "status")} per training.
TOPIC = "aecore-runs"
PUBLISH_S = 0.5  # progress is published at most this often
POLL_S = 0.5  # the cancel signal is read at most this often
_numbers = itertools.count(1)  # numbers the "training run N started" lines of this process


def run_task(task: Any, name: str) -> dict[str, Any]:
    """Train `task` (a TrainConfig or ClassifierSpec) unless the runs folder already holds it;
    the summary: {"status": "done" | "failed" | "cancelled", "key", "path", "error", ...}."""
    from aecore.jobs import default_kinds, describe_error

    _log_to_stderr()
    kind = default_kinds()[type(task)]
    summary: dict[str, Any] = {"key": task.key(), "path": "", "error": None, "cached": False}
    if kind.load(task) is not None:  # trained meanwhile (another key's run, an earlier retry)
        return summary | {"status": "done", "cached": True}
    reporter = Reporter(name)
    number = next(_numbers)
    log.info("training run %d started: %s (key %s)", number, kind.label(task), task.key())
    reporter.event({"event": "started", "key": task.key(), "number": number})
    result, error = None, None
    try:
        with hooked(Hooks(publish=reporter.watch)):
            result = kind.run(
                task,
                on_epoch=reporter.epoch,
                should_stop=reporter.should_stop,
                on_batch=reporter.batch,
            )
    except Exception as err:
        error = describe_error(err, task.key())  # logged on the worker, with the traceback
    status = "failed" if error else ("cancelled" if result is None else "done")
    log.info("training run %d %s after %.1f s (key %s)", number, status, reporter.age(), task.key())
    reporter.close()
    reporter.event({"event": "ended", "key": task.key(), "number": number, "status": status})
    path = str(getattr(result, "info", {}).get("path", "")) if result is not None else ""
    times = {k: reporter.state[k] for k in ("started", "trained")} | {"finished": time.time()}
    return summary | times | {"status": status, "error": error, "path": path, "number": number}


class Reporter:
    """Publishes one run's progress and reads its cancel signal (see the module docstring)."""

    def __init__(self, name: str) -> None:
        from distributed import Event, Variable, get_client, get_worker

        client = get_client()
        self.name = name
        self.worker = get_worker()
        self.progress = Variable(name + PROGRESS, client=client)
        self.watch_var = Variable(name + WATCH, client=client)
        self.cancel = Event(name + CANCEL, client=client)
        self.state: dict[str, Any] = {
            "status": "running",
            "fraction": 0.0,
            "history": [],
            "started": time.time(),
            "trained": None,
            "worker": self.worker.address,
            "watch": 0,  # version of the watch variable; 0: none yet
        }
        self._t0 = time.monotonic()
        self._sent = -float("inf")
        self._checked = -float("inf")
        self._stop = False
        self._watch: Watch | None = None
        self._watch_sent: Watch | None = None
        self._send()

    def age(self) -> float:
        return time.monotonic() - self._t0

    def event(self, msg: dict[str, Any]) -> None:
        self.worker.log_event(TOPIC, msg)

    def epoch(self, stats: EpochStats) -> None:
        self.state["history"].append({k: _plain(v) for k, v in asdict(stats).items()})
        if stats.epoch >= stats.epochs:  # the last epoch: testing starts now
            self.state["trained"] = time.time()
        self._maybe_send()

    def batch(self, fraction: float) -> None:
        self.state["fraction"] = min(1.0, max(0.0, float(fraction)))
        self._maybe_send()

    def watch(self, watch: Watch) -> None:
        self._watch = watch  # sent with the next progress message

    def _maybe_send(self) -> None:
        if time.monotonic() - self._sent >= PUBLISH_S:
            self._send()

    def _send(self) -> None:
        """Publish; a scheduler that does not answer just now costs this update, not the run."""
        self._sent = time.monotonic()
        try:
            if self._watch is not None and self._watch is not self._watch_sent:
                version = self.state["watch"] + 1
                self.watch_var.set({"version": version, "record": to_record(self._watch)})
                self._watch_sent, self.state["watch"] = self._watch, version
            self.progress.set(self.state)
        except Exception as err:  # a scheduler away, a client closing: never stops the run
            log.warning("run %s: progress not published: %r", self.name, err)

    def should_stop(self) -> bool:
        """True once cancelled: the Event is set, or no app server wants the task any more
        (the scheduler released it, so this worker marked it cancelled)."""
        if self._stop or time.monotonic() - self._checked < POLL_S:
            return self._stop
        self._checked = time.monotonic()
        self._maybe_send()  # testing reports no batches: keep the page's clock honest
        ts = self.worker.state.tasks.get(self.name)
        released = ts is None or ts.state == "cancelled"
        try:
            self._stop = released or self.cancel.is_set()
        except Exception:  # the scheduler is away (or the worker closing): ask again later
            self._stop = released
        return self._stop

    def close(self) -> None:
        """The final state, then the channels go: the app reads the summary from now on."""
        self._send()
        for channel in (self.progress, self.watch_var):
            with contextlib.suppress(Exception):  # best effort, as _send
                channel.delete()


def _plain(value: Any) -> Any:
    """A number as msgpack takes it (a NumPy or torch scalar becomes a Python number)."""
    return value.item() if hasattr(value, "item") else value


def _log_to_stderr() -> None:
    """`dask worker` configures the distributed loggers only: give aecore's a handler too, so
    the "training run N started" lines reach the worker's log."""
    root = logging.getLogger("aecore")
    if root.handlers or logging.getLogger().handlers:
        root.setLevel(min(root.level or logging.INFO, logging.INFO))
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
