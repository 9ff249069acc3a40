"""Freed memory kept for the next training step, and handed back once a run is over (glibc only).

A training step frees its activations and allocates the same sizes again at the next step.
glibc's malloc serves a block above its mmap threshold (128 KB at first, raised to the largest
block freed, up to 32 MB) with fresh pages from the kernel, and returns the free top of its heap
past its trim threshold (twice that): then every step faults its pages in again, each one zeroed
by the kernel. With both thresholds fixed high, freed blocks stay in the heap for the next step.
`python -m bench.allocator` (3 epochs of 20,000 MNIST images through the command line, two
pairs, 2-core CPU): per steady epoch conv_same 4.65 -> 3.44 s and unet 6.93 -> 5.14 s (JANet's
0.32 s unchanged), page faults per process 3.7 and 5.3 million -> 0.22 million, peak memory a
little lower (README, "Why the trainer is faster").

The price is free memory the process keeps. `release()` hands it back whenever no training runs
in the process (a trim in the middle of a run would fault its next step's pages in again): the
job manager calls it after each run, the app after each page run. Elsewhere (macOS, Windows,
musl) nothing changes. Malloc settings the user gave (MALLOC_*_ environment variables,
glibc.malloc tunables) win: then aecore sets none.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import os
import platform
import threading
from collections.abc import Iterator, Mapping

MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit: blocks below it come from the heap
# Above the memory one step frees. glibc's own highest, 64 MB, kept unet's faults down in one
# run of two (0.29 against 2.5 million; bench/allocator.py, 3 epochs), 256 MB in every run.
TRIM_THRESHOLD = 256 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


def user_set(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the user chose malloc's settings (environment variables or glibc tunables)."""
    return any(k in environ for k in _USER_SETTINGS) or "glibc.malloc." in environ.get(
        "GLIBC_TUNABLES", ""
    )


def keep_freed_blocks() -> bool:
    """Fix malloc's thresholds high for this process; True when they were set."""
    libc = _libc()
    if libc is None or user_set():
        return False
    # mallopt returns 1 on success; a fixed threshold also stops glibc adapting it.
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )


_training = 0  # training runs in progress in this process
_training_lock = threading.Lock()


@contextlib.contextmanager
def training() -> Iterator[None]:
    """Mark a training run in progress: release() leaves the heap alone meanwhile."""
    global _training
    with _training_lock:
        _training += 1
    try:
        yield
    finally:
        with _training_lock:
            _training -= 1


def release() -> bool:
    """Hand the heap's free memory back to the kernel, unless a training run is in progress;
    True when it did (never off glibc)."""
    libc = _libc()
    with _training_lock:
        if libc is None or _training:
            return False
        libc.malloc_trim(0)
        return True
