"""How OpenMP's threads wait, chosen per process before torch starts them.

Between parallel regions, OpenMP's threads spin for a while before they sleep (GNU libgomp, the
runtime torch's Linux wheels ship: `GOMP_SPINCOUNT` spins, fewer once the threads outnumber the
cores). Spinning costs a shared machine dearly (an app serving a class, CI, two runs at once),
while on a machine the process owns it is what makes a small model's epoch fast
(bench/threads.py measures both). So the policy depends on who runs aecore:

- the app, tests and any program importing aecore: `OMP_WAIT_POLICY=PASSIVE` (never spin);
- aecore's command line (`python -m aecore ...` or the `aecore` script), which a user starts to
  have the machine train: CLI_ENV, OpenMP's own default unless set otherwise.

`configure()` must run before torch is imported (OpenMP reads its variables once, when torch
loads it): aecore/__init__.py is the place. A variable the user set always wins.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping, Sequence
from pathlib import PurePath

# OpenMP's variables that decide how threads wait: if the user set any, aecore sets none.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")
SHARED_ENV: dict[str, str] = {"OMP_WAIT_POLICY": "PASSIVE"}
CLI_ENV: dict[str, str] = {}  # OpenMP's default: spin, then sleep
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


def wait_env(orig_argv: Sequence[str]) -> dict[str, str]:
    """The OpenMP variables a process started as orig_argv should get."""
    return dict(CLI_ENV if is_cli(orig_argv) else SHARED_ENV)


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


if __name__ == "__main__":  # `python -m aecore.threads`: how this interpreter's argv is read
    import json

    print(json.dumps({"orig_argv": sys.orig_argv, "cli": is_cli(sys.orig_argv)}))
