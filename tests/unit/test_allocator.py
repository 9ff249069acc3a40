"""aecore.allocator: importing aecore keeps a step's freed blocks in malloc's heap (glibc), unless
the user chose malloc's settings; the memory goes back after each run, never during one."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time

import pytest

from aecore import allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# In a fresh process: malloc and free a 16 MB block, and say whether glibc served it with pages
# of its own mapping (mallinfo2's hblkhd grows) or from the heap. Before anything large has been
# freed, glibc's adaptive mmap threshold is 128 KB: 16 MB is mapped unless aecore fixed it higher.
PROBE = """
import ctypes, sys
import aecore
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena ordblks smblks hblks hblkhd usmblks "
                                                "fsmblks uordblks fordblks keepcost").split()]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = libc.mallinfo2().hblkhd
block = libc.malloc(16 << 20)
mapped = libc.mallinfo2().hblkhd - before >= 16 << 20
libc.free(block)
print("mapped" if mapped else "heap")
"""


def probe(env_extra: dict[str, str]) -> str:
    mine = {"GLIBC_TUNABLES", *allocator._USER_SETTINGS}
    env = {k: v for k, v in os.environ.items() if k not in mine} | env_extra
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="malloc's thresholds are glibc's (Linux)")
def test_importing_aecore_serves_a_large_block_from_the_heap():
    assert probe({}) == "heap"


@pytest.mark.skipif(not GLIBC, reason="malloc's thresholds are glibc's (Linux)")
@pytest.mark.parametrize(
    "user",
    [{"GLIBC_TUNABLES": "glibc.malloc.check=0"}, {"MALLOC_TRIM_THRESHOLD_": str(1 << 30)}],
)
def test_malloc_settings_the_user_gave_win(user):
    assert probe(user) == "mapped"  # aecore set nothing: glibc's own thresholds


@pytest.mark.parametrize(
    ("environ", "chosen"),
    [
        ({}, False),
        ({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX512F"}, False),  # not malloc's
        ({"GLIBC_TUNABLES": "glibc.cpu.x86_rep_movsb_threshold=1:glibc.malloc.arena_max=2"}, True),
        ({"MALLOC_MMAP_THRESHOLD_": "65536"}, True),
        ({"MALLOC_TOP_PAD_": "0"}, True),
    ],
)
def test_what_counts_as_the_users_choice(environ, chosen):
    assert allocator.user_set(environ) is chosen


def test_release_waits_while_a_run_trains():
    assert allocator.release() is GLIBC  # malloc_trim on glibc; nothing elsewhere
    with allocator.training():
        with allocator.training():  # two runs at once, one of them ends
            pass
        assert allocator.release() is False  # the run's next step would fault its pages in
    assert allocator.release() is GLIBC


def test_training_is_marked_for_its_whole_run(monkeypatch):
    from aecore import train
    from aecore.config import TrainConfig

    seen = []
    monkeypatch.setattr(train, "_prepare", lambda *a: seen.append(allocator._training) or 1 / 0)
    with pytest.raises(ZeroDivisionError):
        train.train(TrainConfig(dataset="digits", model="dense", latent=2, epochs=1))
    assert seen == [1] and allocator._training == 0  # marked, and unmarked after a failure


def test_the_job_manager_releases_memory_after_each_run(monkeypatch, tmp_path):
    from aecore.config import TrainConfig
    from aecore.jobs import JobManager

    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AECORE_OFFLINE", "1")
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")
    released = []
    monkeypatch.setattr(allocator, "release", lambda: released.append(True))
    manager = JobManager(runner=lambda cfg, *args, **kw: None)  # a run that saves nothing
    try:
        cfg = TrainConfig(dataset="digits", model="dense", latent=2, epochs=1)
        job = manager.submit(cfg, session="a")
        job.wait(timeout=15)
        assert job.snapshot().status in ("cancelled", "failed", "done")
        deadline = time.monotonic() + 15  # released just after the job ends, on its worker
        while not released and time.monotonic() < deadline:
            time.sleep(0.01)
        assert released == [True]
    finally:
        manager.shutdown()
