"""Session-wide test setup: a sandboxed, offline environment and a data folder that always exists.

For the whole session (set before the first test, restored after the last):

- `AECORE_RUNS_DIR` points at a session temp dir, so no test writes runs into the user's home.
- `AECORE_OFFLINE=1`, so no test reaches the network by accident. A test of a download path uses
  the `allow_download` fixture and a `loopback_server` instead.
- `AECORE_DATA_DIR` is, in order of preference:
  1. the caller's `AECORE_DATA_DIR`, if it holds MNIST and Fashion-MNIST in torchvision's layout
     (CI runs with `AECORE_DATA_DIR=../shared/data`);
  2. `<repo>/../shared/data`, if it holds them;
  3. a session temp dir with small synthetic IDX MNIST and Fashion-MNIST (2,000 train / 500 test
     each) written by `tests/datafiles.py`: the suite passes on a machine without `../shared`.
  Set `AECORE_TEST_NO_SHARED=1` to skip 1 and 2 and always use the synthetic data (what a fresh
  machine sees). The pytest header says which data is in use.

Fixtures:
- `real_data` (bool): whether real MNIST / Fashion-MNIST are in use (1 or 2 above). Slow tests
  may use it to pick their scale; never to skip a feature's test entirely.
- `data_root` (Path): the session's `AECORE_DATA_DIR`.
- `fresh_data_cache`: empties `aecore.data._cache` before and after the test.
- `use_data_dir(path)`: points `AECORE_DATA_DIR` at `path` for one test, with a fresh cache.
- `allow_download`: turns `AECORE_OFFLINE` off for one test, bypasses proxies, and fails the test
  (`NonLoopbackConnection`) if anything connects to a host other than 127.0.0.1.
- `loopback_server(path)`: serves a folder on 127.0.0.1 for one test; returns `Served` with the
  base URL and the request paths; shut down at teardown.

Slow tests: tests marked `slow` are skipped unless pytest runs with `--runslow`. Nothing else is
skipped by this file (browser tests included).

Device: `AECORE_TEST_DEVICE` (cpu, cuda, cuda:1, mps; unset or empty: cpu) is the device every
model that aecore places itself (`aecore.train.pick_device`: runs, jobs, sweeps, pages) trains and
runs on, for the whole session; the pytest header names it. A device that is unknown or not
available on this machine stops pytest before collection with one clear error (exit code 4),
rather than hundreds of failures. The `aecore_device` fixture gives it to tests that pass a device
themselves. Unset, the suite runs on the CPU even on a machine with a GPU (the numbers that CI
checks); `AECORE_TEST_DEVICE=cuda python -m pytest tests/unit tests/app` runs it on the GPU
(bench/gpu_check.sh does that and the GPU benchmark in one command).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.datafiles import IDX_FILES, Served, serve_directory, write_idx_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SYNTHETIC_SIZES = {"n_train": 2000, "n_test": 500}
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", default=False, help="run slow tests")


# --- AECORE_TEST_DEVICE -----------------------------------------------------------------------

TEST_DEVICE_VAR = "AECORE_TEST_DEVICE"
_test_device: list = []  # set once by pytest_configure: [torch.device]


def parse_test_device(value: str | None):
    """The torch.device that AECORE_TEST_DEVICE names (unset or empty: the CPU); pytest.UsageError
    naming the problem if it is not a device this machine has."""
    import torch

    value = (value or "").strip() or "cpu"
    try:
        device = torch.device(value)
    except (RuntimeError, ValueError) as err:
        raise pytest.UsageError(
            f"{TEST_DEVICE_VAR}={value!r} is not a device name (cpu, cuda, cuda:1, mps): {err}"
        ) from None
    problem = _unavailable(device)
    if problem:
        raise pytest.UsageError(f"{TEST_DEVICE_VAR}={value}: {problem}")
    return device


def _unavailable(device) -> str | None:
    import torch

    if device.type == "cpu":
        return None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            return "this machine has no CUDA GPU that PyTorch can use (torch.cuda.is_available())"
        if device.index is not None and device.index >= count:
            return f"this machine has {count} CUDA GPU(s): cuda:0 .. cuda:{count - 1}"
        return None
    if device.type == "mps":
        return None if torch.backends.mps.is_available() else "Apple's MPS is not available here"
    return f"the suite runs on cpu, cuda or mps, not {device.type}"


def pytest_configure(config: pytest.Config) -> None:
    _test_device[:] = [parse_test_device(os.environ.get(TEST_DEVICE_VAR))]


@pytest.fixture(scope="session", autouse=True)
def aecore_device():
    """The session's device (AECORE_TEST_DEVICE); aecore.train.pick_device answers it for the
    whole session, so every model aecore places itself lands there."""
    from aecore import train

    device = _test_device[0]
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(train, "pick_device", lambda: device)
        yield device
    finally:
        mp.undo()


# --- --runslow ------------------------------------------------------------------------------


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip_slow = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        # The marker itself, not `"slow" in item.keywords`: keywords also hold test and module
        # names, so a test merely named "..._slow_..." would be skipped too.
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip_slow)


# --- which data -----------------------------------------------------------------------------


def _holds_mnist_family(root: Path) -> bool:
    return all(
        (root / f / "raw" / name).is_file() for f in ("MNIST", "FashionMNIST") for name in IDX_FILES
    )


def _real_data_dir() -> Path | None:
    """The folder with real MNIST / Fashion-MNIST to test against, or None for synthetic data."""
    if os.environ.get("AECORE_TEST_NO_SHARED", "") not in ("", "0"):
        return None
    candidates = [os.environ.get("AECORE_DATA_DIR"), SHARED_DATA]
    for candidate in candidates:
        if candidate and _holds_mnist_family(Path(candidate)):
            return Path(candidate).resolve()
    return None


def pytest_report_header(config: pytest.Config) -> list[str]:
    real = _real_data_dir()
    data = f"real, {real}" if real else "synthetic IDX MNIST + Fashion-MNIST in a session temp dir"
    slow = "run" if config.getoption("--runslow") else "skipped (use --runslow)"
    device = f"{_test_device[0]} ({TEST_DEVICE_VAR}={os.environ.get(TEST_DEVICE_VAR) or 'unset'})"
    return [
        f"aecore data: {data}",
        f"aecore slow tests: {slow}; nothing else is skipped",
        f"aecore test device: {device}",
    ]


# --- session environment --------------------------------------------------------------------


@dataclass(frozen=True)
class SessionData:
    root: Path
    real: bool


@pytest.fixture(scope="session", autouse=True)
def aecore_session_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionData]:
    """Sandboxed runs dir, offline mode and a data dir, for every test of the session."""
    mp = pytest.MonkeyPatch()
    try:
        mp.setenv("AECORE_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
        mp.setenv("AECORE_OFFLINE", "1")
        root = _real_data_dir()
        session = (
            SessionData(root, True)
            if root
            else SessionData(_write_synthetic(tmp_path_factory), False)
        )
        mp.setenv("AECORE_DATA_DIR", str(session.root))
        yield session
    finally:
        mp.undo()


def _write_synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for folder in ("MNIST", "FashionMNIST"):
        write_idx_dataset(root, folder, **SYNTHETIC_SIZES)
    return root


@pytest.fixture(scope="session")
def real_data(aecore_session_env: SessionData) -> bool:
    return aecore_session_env.real


@pytest.fixture(scope="session")
def data_root(aecore_session_env: SessionData) -> Path:
    return aecore_session_env.root


# --- per-test helpers -----------------------------------------------------------------------


@pytest.fixture
def fresh_data_cache() -> Iterator[None]:
    """An empty dataset cache before the test, and the test's datasets dropped after it."""
    from aecore import data

    data._cache.clear()
    yield
    data._cache.clear()


@pytest.fixture
def use_data_dir(monkeypatch: pytest.MonkeyPatch, fresh_data_cache: None) -> Callable[[Path], Path]:
    """`use_data_dir(path)` points AECORE_DATA_DIR at path for this test only."""

    def use(path: Path) -> Path:
        from aecore import data

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv("AECORE_DATA_DIR", str(path))
        data._cache.clear()  # nothing loaded from the previous dir answers for the new one
        return path

    return use


class NonLoopbackConnection(AssertionError):
    """A test tried to connect beyond 127.0.0.1. Not an OSError, so no loader turns it into a
    "dataset unavailable" answer that a test would take for the outcome it expected."""


@pytest.fixture
def allow_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """Downloads allowed for this test, to 127.0.0.1 only, and without proxies in between."""
    monkeypatch.setenv("AECORE_OFFLINE", "0")
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")

    connect = socket.create_connection  # what urllib's HTTP connections open sockets with

    def loopback_only(address: tuple[str, int], *args: object, **kwargs: object) -> socket.socket:
        if address[0] not in ("127.0.0.1", "localhost"):
            raise NonLoopbackConnection(f"test tried to reach {address[0]}:{address[1]}")
        return connect(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", loopback_only)


@pytest.fixture
def loopback_server() -> Iterator[Callable[[Path], Served]]:
    """`loopback_server(folder)` serves folder on 127.0.0.1; every server stops at teardown."""
    with ExitStack() as stack:
        yield lambda folder: stack.enter_context(serve_directory(folder))
