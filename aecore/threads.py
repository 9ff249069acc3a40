"""How OpenMP's threads wait, chosen per process before torch starts them.

Between parallel regions, OpenMP's threads spin for a while before they sleep (GNU libgomp, the
runtime torch's Linux wheels ship). Spinning costs a shared machine dearly, while on a machine the
process owns it is what makes a small model's epoch fast. `python -m bench.threads` measured both
(JANet-50, 2 cores, seconds per epoch of 20,000 images; README "Threads"): with 2 threads,
passive 0.77 idle and 0.67 with two runs at once; active 0.38 idle but 2.49 with two runs, and
OpenMP's default over 60. So the policy depends on who runs aecore and on what else runs:

- the app, tests and any program importing aecore: `OMP_WAIT_POLICY=PASSIVE` (never spin): a
  server always shares its cores (page runs, health checks, other visitors);
- aecore's command line (`python -m aecore ...` or the `aecore` script) spins (SPIN_ENV) only
  when it owns the machine: the load average is low (IDLE_LOAD_PER_CORE) and no other aecore
  command line spins (an exclusive lock, SPIN_LOCK, held until the process ends); else PASSIVE,
  so that two commands at once, or one beside the app, never meet the spinning trap.

`configure()` must run before torch is imported (OpenMP reads its variables once, when torch
loads it): aecore/__init__.py is the place. A variable the user set always wins.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import tempfile
from collections.abc import MutableMapping, Sequence
from pathlib import Path, PurePath

# OpenMP's variables that decide how threads wait: if the user set any, aecore sets none.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
SHARED_ENV: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}
# ACTIVE rather than OpenMP's default: as fast on an idle machine (0.38 s), and when something
# starts beside it after all, 2.49 s rather than over 60 (bench/threads.py, "two runs").
SPIN_ENV: dict[str, str] = {"OMP_WAIT_POLICY": "ACTIVE"}
IDLE_LOAD_PER_CORE = 0.5  # the 1-minute load average per core under which the machine is idle
SPIN_LOCK = Path(tempfile.gettempdir()) / "aecore-spin.lock"
_held_lock: list[int] = []  # the lock's file descriptor, open for the life of the process
CLI_MODULES = ("aecore", "aecore.__main__")
CLI_SCRIPT = "aecore"  # [project.scripts] in pyproject.toml
_OPTIONS_WITH_VALUE = ("-W", "-X", "--check-hash-based-pycs")


def is_cli(orig_argv: Sequence[str]) -> bool:
    """Whether a process started as `orig_argv` (sys.orig_argv: the interpreter's own command
    line, options included) is aecore's command line. Known while aecore/__init__ runs, before
    aecore.cli is imported, which sys.argv is not (under -m it is ["-m"] then)."""
    args = list(orig_argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-m":
            return i + 1 < len(args) and args[i + 1] in CLI_MODULES
        if arg.startswith("-m"):  # -maecore
            return arg[2:] in CLI_MODULES
        if arg == "-c" or arg == "-":
            return False
        if not arg.startswith("-"):  # the script: the console script is named aecore
            return PurePath(arg).name == CLI_SCRIPT
        i += 2 if arg in _OPTIONS_WITH_VALUE else 1
    return False


def machine_is_idle(load: float | None = None, cores: int | None = None) -> bool:
    """Whether the 1-minute load average is under IDLE_LOAD_PER_CORE per core."""
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:  # no load average here: assume others may be running
            return False
    return load < IDLE_LOAD_PER_CORE * (cores or os.cpu_count() or 1)


def take_spin_lock(path: Path = SPIN_LOCK) -> bool:
    """Whether this process may spin: no other process holds the lock. Taken, it stays held
    (its descriptor open) until this process ends; the operating system releases it then."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _held_lock.append(fd)
    return True


def release_spin_lock() -> None:
    """Let another process spin (tests; a process that ends releases it anyway)."""
    while _held_lock:
        with contextlib.suppress(OSError):
            os.close(_held_lock.pop())


def owns_machine() -> bool:
    """Whether a command line may spin: the machine is idle and no other one spins."""
    return machine_is_idle() and take_spin_lock()


def wait_env(orig_argv: Sequence[str]) -> dict[str, str]:
    """The OpenMP variables a process started as orig_argv should get (the command line takes
    the spin lock when it may spin)."""
    return dict(SPIN_ENV if is_cli(orig_argv) and owns_machine() else SHARED_ENV)


def configure(
    environ: MutableMapping[str, str] | None = None, orig_argv: Sequence[str] | None = None
) -> dict[str, str]:
    """Set this process's OpenMP wait variables (in os.environ by default) unless the user set
    one of WAIT_VARIABLES; returns those set. Too late once torch is imported: call it first."""
    environ = os.environ if environ is None else environ
    if any(name in environ for name in WAIT_VARIABLES):
        return {}
    chosen = wait_env(sys.orig_argv if orig_argv is None else orig_argv)
    environ.update(chosen)
    return chosen


def wait_policy() -> str:
    """This process's OpenMP wait variables as one line ("OMP_WAIT_POLICY=ACTIVE"; "OpenMP's
    default" when none is set), for reports: how fast a run could be depends on it."""
    chosen = [f"{name}={os.environ[name]}" for name in WAIT_VARIABLES if name in os.environ]
    return ", ".join(chosen) or "OpenMP's default"
