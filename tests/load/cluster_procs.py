"""Real processes for tests/load/test_cluster_servers.py, all on loopback: one `dask scheduler`,
`dask worker`s and `streamlit run streamlit_app.py` servers, each with a log file of its own.

Every process is started in a session (process group) of its own, so that stopping one (a
SIGKILL of a worker: the nanny and the worker process under it, as when a machine dies) and the
final cleanup reach exactly the processes started here, by their group id.

    with Deployment(tmp_path) as d:
        d.start_scheduler()
        d.start_worker("w1"); d.start_worker("w2"); d.wait_workers(2)
        url = d.start_server("s1")
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.browser.conftest import free_port, wait_healthy
from tests.load.test_load import ROOT, SERVER

STOP_ORDER = ("server", "worker", "scheduler")  # servers hold the clients: they go first


@dataclass
class Proc:
    """One started command: its process (the group leader) and its log file."""

    name: str
    kind: str  # "server", "worker" or "scheduler"
    popen: subprocess.Popen
    log: Path

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill_group(self) -> None:
        """SIGKILL to the whole group: no handler runs, no goodbye reaches the scheduler."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to the group, then SIGKILL to what is left after `grace` seconds."""
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(grace)
        self.kill_group()  # also the group's children if the leader is already gone


class Deployment:
    """A scheduler, workers and app servers sharing one runs folder, under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.runs = root / "runs"  # the one artifact folder of every server and worker
        self.runs.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, Proc] = {}
        self.scheduler_port = free_port()
        self.scheduler = f"tcp://127.0.0.1:{self.scheduler_port}"

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc) -> None:
        # Servers first (they hold the clients), then workers, then the scheduler.
        for proc in sorted(self.procs.values(), key=lambda p: STOP_ORDER.index(p.kind)):
            proc.stop()

    def env(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "AECORE_RUNS_DIR": str(self.runs),
            "AECORE_OFFLINE": "1",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def _start(self, name: str, kind: str, cmd: list[str], env: dict, cwd: Path) -> Proc:
        log = self.root / f"{name}.log"
        for n in range(2, 100):  # a restart writes a log of its own: scheduler-2.log, ...
            if not log.exists():
                break
            log = self.root / f"{name}-{n}.log"
        with log.open("w") as out:
            popen = subprocess.Popen(
                cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        proc = Proc(name, kind, popen, log)
        self.procs[name] = proc
        return proc

    def start_scheduler(self, timeout: float = 60.0) -> Proc:
        """`dask scheduler` on the fixed port (a restart comes back at the same address)."""
        cmd = [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1"]
        cmd += ["--port", str(self.scheduler_port), "--no-dashboard"]
        proc = self._start("scheduler", "scheduler", cmd, self.env(), self.root)
        wait_port(self.scheduler_port, proc, timeout)
        return proc

    def start_worker(self, name: str, **env: str) -> Proc:
        """`dask worker` with one thread, its own folder, aecore's INFO lines in its log (the
        "training run ... started" lines this test counts), run from outside the repository:
        it finds aecore through PYTHONPATH, as a worker on another machine would."""
        folder = self.root / name
        folder.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "dask", "worker", self.scheduler, "--nthreads", "1"]
        cmd += ["--name", name, "--local-directory", str(folder), "--no-dashboard"]
        env = self.env(DASK_LOGGING__AECORE="info", **env)
        return self._start(name, "worker", cmd, env, folder)

    def wait_workers(self, count: int, timeout: float = 90.0) -> None:
        """Until the scheduler's log has registered `count` workers not yet removed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.procs["scheduler"].text()
            if text.count("Register worker") - text.count("Remove worker") >= count:
                return
            if not self.procs["scheduler"].alive():
                raise RuntimeError(f"the scheduler exited:\n{text[-3000:]}")
            time.sleep(0.3)
        raise TimeoutError(f"{count} workers not registered:\n{self.procs['scheduler'].text()}")

    def start_server(self, name: str, **env: str) -> str:
        """`streamlit run streamlit_app.py` using the cluster; returns its URL once healthy."""
        port = free_port()
        cmd = [sys.executable, "-c", SERVER, "run", "streamlit_app.py"]
        cmd += ["--server.headless", "true", "--server.port", str(port)]
        cmd += ["--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
        env = self.env(AECORE_CLUSTER=self.scheduler, **env)
        proc = self._start(name, "server", cmd, env, ROOT)
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, proc.popen)
        return url

    def logs(self, kind: str) -> str:
        """The logs of every process of one kind, one after another."""
        return "\n".join(p.text() for p in self.procs.values() if p.kind == kind)


def wait_port(port: int, proc: Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{proc.name}: nothing listens on port {port} after {timeout} s")
