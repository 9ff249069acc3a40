"""aecore.threads: the app keeps OpenMP's threads passive; the command line spins only when it
owns the machine (idle, and no other command line spins)."""

import json
import subprocess
import sys

import pytest

from aecore import threads

PY = "/usr/bin/python3"


@pytest.mark.parametrize(
    "argv",
    [
        [PY, "-m", "aecore", "train", "--epochs", "1"],
        [PY, "-maecore", "list"],
        [PY, "-X", "importtime", "-W", "ignore", "-m", "aecore", "list"],
        [PY, "-u", "-m", "aecore.__main__"],
        [PY, "/home/me/.venv/bin/aecore", "train"],
    ],
)
def test_the_command_line_is_recognised(argv, monkeypatch):
    assert threads.is_cli(argv)
    monkeypatch.setattr(threads, "owns_machine", lambda: True)
    assert threads.wait_env(argv) == threads.SPIN_ENV
    monkeypatch.setattr(threads, "owns_machine", lambda: False)
    assert threads.wait_env(argv) == threads.SHARED_ENV


@pytest.mark.parametrize(
    "argv",
    [
        [PY, "-m", "streamlit", "run", "streamlit_app.py"],
        [PY, "-m", "pytest", "-m", "aecore"],  # a second -m belongs to pytest
        [PY, "-m", "aecore_extras"],
        [PY, "-c", "import aecore", "aecore"],
        [PY, "bench/threads.py", "aecore"],
        [PY, "-X", "aecore"],  # -X's value, not a script
        [PY],
    ],
)
def test_everything_else_waits_passively(argv):
    assert not threads.is_cli(argv)
    assert threads.wait_env(argv) == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_configure_sets_the_shared_policy_for_the_app():
    env = {"PATH": "/bin"}
    assert threads.configure(env, [PY, "-m", "streamlit", "run", "x.py"]) == {
        "OMP_WAIT_POLICY": "PASSIVE"
    }
    assert env == {"PATH": "/bin", "OMP_WAIT_POLICY": "PASSIVE"}


def test_configure_gives_the_command_line_its_own_policy(monkeypatch):
    monkeypatch.setattr(threads, "SPIN_ENV", {"GOMP_SPINCOUNT": "10000"})
    monkeypatch.setattr(threads, "owns_machine", lambda: True)
    env: dict[str, str] = {}
    threads.configure(env, [PY, "-m", "aecore", "train"])
    assert env == {"GOMP_SPINCOUNT": "10000"}


def test_the_machine_is_idle_under_half_a_core_of_load():
    assert threads.machine_is_idle(load=0.9, cores=2)
    assert not threads.machine_is_idle(load=1.0, cores=2)
    assert not threads.machine_is_idle(load=0.6, cores=1)


def test_only_one_process_holds_the_spin_lock(tmp_path):
    lock = tmp_path / "spin.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(lock)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "True"  # the other process spins
        assert not threads.take_spin_lock(lock)  # so this one may not
    finally:
        holder.kill()
        holder.wait()
    assert threads.take_spin_lock(lock)  # its end released the lock
    threads.release_spin_lock()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from aecore import threads
print(threads.take_spin_lock(Path(sys.argv[1])), flush=True)
time.sleep(60)
"""


@pytest.mark.parametrize("name", threads.WAIT_VARIABLES)
def test_a_variable_the_user_set_wins(name):
    env = {name: "ACTIVE" if name == "OMP_WAIT_POLICY" else "0"}
    before = dict(env)
    assert threads.configure(env, [PY, "-m", "streamlit"]) == {}
    assert env == before


def test_a_real_interpreter_command_line_is_read_from_its_orig_argv():
    # A real `python -X utf8 -c ... train`: sys.orig_argv holds the interpreter's options, which
    # is_cli skips, as it would before `-m aecore`.
    out = subprocess.run(
        [sys.executable, "-X", "utf8", "-c", "import sys, json; print(json.dumps(sys.orig_argv))"]
        + ["train"],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(out.stdout)
    assert seen[1:3] == ["-X", "utf8"] and seen[-1] == "train"
    assert not threads.is_cli(seen)
    assert threads.is_cli([*seen[:3], "-m", "aecore", "train"])
