"""aecore.threads: the app keeps OpenMP's threads passive, the command line may let them spin."""

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
def test_the_command_line_is_recognised(argv):
    assert threads.is_cli(argv)
    assert threads.wait_env(argv) == threads.CLI_ENV


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
    monkeypatch.setattr(threads, "CLI_ENV", {"GOMP_SPINCOUNT": "10000"})
    env: dict[str, str] = {}
    threads.configure(env, [PY, "-m", "aecore", "train"])
    assert env == {"GOMP_SPINCOUNT": "10000"}


@pytest.mark.parametrize("name", threads.WAIT_VARIABLES)
def test_a_variable_the_user_set_wins(name):
    env = {name: "ACTIVE" if name == "OMP_WAIT_POLICY" else "0"}
    before = dict(env)
    assert threads.configure(env, [PY, "-m", "streamlit"]) == {}
    assert env == before


def test_a_real_module_run_is_read_from_its_orig_argv():
    # A real `python -X utf8 -m aecore.threads ...`: is_cli sees the interpreter's options and
    # the module name (a module of aecore, not its command line), as it would for `-m aecore`.
    out = subprocess.run(
        [sys.executable, "-X", "utf8", "-m", "aecore.threads", "train"],
        capture_output=True,
        text=True,
        check=True,
    )
    seen = json.loads(out.stdout)
    assert seen["orig_argv"][1:] == ["-X", "utf8", "-m", "aecore.threads", "train"]
    assert seen["cli"] is False
    assert threads.is_cli([*seen["orig_argv"][:4], "aecore", "train"])
