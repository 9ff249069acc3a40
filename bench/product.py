"""The product path: `python -m aecore train` in a fresh process, as a user runs it.

A benchmark that trains in its own process gets its own import order (torch before aecore: then
aecore's OpenMP wait policy comes too late), its own threads and its warm caches, none of which a
user's `python -m aecore train` has. So the benchmarks start the command line itself, one fresh
process per run, read its JSON report, and read each epoch's seconds from the checkpoint it
saved (the history the app shows). The child's environment is this one's, less the OpenMP wait
variables (aecore sets one when the benchmark imports it): a run gets exactly the `wait`
variables it is given, and otherwise what the command line chooses for itself.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, fields
from pathlib import Path

from aecore.checkpoints import load_checkpoint
from aecore.config import TrainConfig
from aecore.threads import WAIT_VARIABLES, machine_is_idle

ROOT = Path(__file__).resolve().parent.parent
# `python -m aecore`, except that torch is loaded first, so OpenMP reads the wait variables as
# given even where aecore/__init__ would set its own (how a run with none of them is measured).
TORCH_FIRST = (
    "import sys, runpy, torch; sys.argv[0] = 'aecore'; "
    "runpy.run_module('aecore', run_name='__main__', alter_sys=True)"
)


@dataclass
class CliRun:
    report: dict  # the command line's JSON report
    epoch_seconds: list[float]  # training seconds of each epoch, from the saved history
    peak_rss_mb: float  # the process's resident-memory peak
    checkpoint: Path
    page_faults: int  # the process's minor page faults, start to end (getrusage's ru_minflt)

    @property
    def first_epoch_s(self) -> float:
        return self.epoch_seconds[0]

    @property
    def steady_epoch_s(self) -> float:
        return steady(self.epoch_seconds)


def steady(epoch_seconds: list[float]) -> float:
    """The steady-state epoch: the median after the first, which pays for first-call setup
    (the first itself when it is the only one)."""
    return statistics.median(epoch_seconds[1:] or epoch_seconds)


@dataclass
class Started:
    proc: subprocess.Popen
    out: Path
    err: Path
    argv: list[str]
    usage: object = None  # its resource usage (wait4's), once it has ended


def train_argv(cfg: TrainConfig, device: str | None = None, torch_first: bool = False) -> list[str]:
    """The command line that trains cfg from scratch (--force) and prints a JSON report."""
    default = TrainConfig()
    args = ["train", "--force", "--json"] + (["--device", device] if device else [])
    for f in fields(TrainConfig):
        value = getattr(cfg, f.name)
        if value == getattr(default, f.name) and f.name != "epochs":
            continue
        option = "--" + f.name.replace("_", "-")
        args += [option] if value is True else [option, str(value)]
    launcher = ["-c", TORCH_FIRST] if torch_first else ["-m", "aecore"]
    return [sys.executable, *launcher, *args]


def child_env(runs_dir: Path, wait: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in WAIT_VARIABLES}
    return env | (wait or {}) | extra | {"AECORE_RUNS_DIR": str(runs_dir)}


def launch(argv: list[str], env: dict[str, str]) -> Started:
    """Start argv in the repository's root, its output going to temp files."""
    folder = Path(tempfile.mkdtemp(prefix="aecore-bench-"))
    out, err = folder / "stdout", folder / "stderr"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(argv, env=env, stdout=o, stderr=e, cwd=ROOT)
    return Started(proc, out, err, argv)


def _wait4(run: Started, timeout: float | None) -> tuple[int, object]:
    """Reap the child with wait4 (its own resource usage, which Popen.wait loses); after
    `timeout` seconds it is killed and TimeoutError raised."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(run.proc.pid, 0 if deadline is None else os.WNOHANG)
        if pid:
            run.usage = usage
            return status, usage
        if time.monotonic() > deadline:
            run.proc.kill()  # this run's own process, which this module started
            os.wait4(run.proc.pid, 0)
            run.proc.returncode = -9
            shutil.rmtree(run.out.parent, ignore_errors=True)
            raise TimeoutError(f"{' '.join(run.argv[1:4])}... ran over {timeout:.0f} s")
        time.sleep(0.2)


def wait_json(run: Started, timeout: float | None = None) -> tuple[dict, float]:
    """Wait for the run: the JSON object on its last line of output, and its peak memory in MB
    as wait4 reports it: at least this process's own, which Linux carries across fork and exec
    (a child that reports its own peak, "peak_rss_mb", is the one to believe).
    RuntimeError with the end of its stderr if it failed; TimeoutError past `timeout` s."""
    status, usage = _wait4(run, timeout)
    run.proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        if run.proc.returncode != 0:
            tail = run.err.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(run.argv[1:])} failed ({run.proc.returncode}):\n{tail}")
        return json.loads(run.out.read_text().strip().splitlines()[-1]), usage.ru_maxrss / 1024
    finally:
        shutil.rmtree(run.out.parent, ignore_errors=True)


def start(
    cfg: TrainConfig, env: dict[str, str], device: str | None = None, torch_first: bool = False
) -> Started:
    """Start one training run: `python -m aecore train ...`, or TORCH_FIRST's launcher."""
    return launch(train_argv(cfg, device, torch_first), env)


def finish(run: Started, timeout: float | None = None) -> CliRun:
    """Wait for a training run: its report, epoch seconds and peak memory."""
    report, peak_mb = wait_json(run, timeout)
    ckpt = load_checkpoint(report["checkpoint"], "cpu")
    peak_mb = report.get("peak_rss_mb") or peak_mb  # the run's own (see wait_json)
    seconds = [h.seconds for h in ckpt.history]
    return CliRun(report, seconds, peak_mb, Path(report["checkpoint"]), run.usage.ru_minflt)


def settle(limit_s: float = 120.0) -> float:
    """Wait until the machine is idle as the command line judges it (aecore.threads: the 1-minute
    load average), at most limit_s; the seconds waited. A benchmark's previous run keeps the load
    average up for about 40 s after it ends, and a command started then waits passively, as it
    should on a busy machine: the user who runs one command on a quiet machine gets spinning."""
    start = time.monotonic()
    while not machine_is_idle() and time.monotonic() - start < limit_s:
        time.sleep(2.0)
    return time.monotonic() - start


def run(
    cfg: TrainConfig, env: dict[str, str], device: str | None = None, torch_first: bool = False
) -> CliRun:
    return finish(start(cfg, env, device, torch_first))
