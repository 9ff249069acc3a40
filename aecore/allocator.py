"""Freed memory kept for the next training step, and handed back once a run is over (glibc only).

A training step frees its activations and allocates the same sizes again at the next step.
glibc's malloc serves a block above its mmap threshold (128 KB at first, raised to the largest
block freed, up to 32 MB) with fresh pages from the kernel, and returns the free top of its heap
past its trim threshold (twice that): then every step faults its pages in again, each one zeroed
by the kernel. With both thresholds fixed high, freed blocks stay in the heap for the next step.
`python -m bench.allocator` (3 epochs of 20,000 MNIST images through the command
line, two pairs, 2-core CPU): per steady epoch conv_same 4.65 -> 3.44 s and unet 6.93 -> 5.14 s
(JANet's 0.32 s unchanged), page faults per process 3.7 and 5.3 million -> 0.22 million, peak
memory a little lower (README, "Why the trainer is faster").

The price is memory the process keeps after a run; `release()` hands it back (the job manager
calls it after each run). Elsewhere (macOS, Windows, musl) nothing changes. Malloc settings the
user gave (MALLOC_*_ environment variables, glibc.malloc tunables) win: then aecore sets none.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import platform

MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit: blocks below it come from the heap
TRIM_THRESHOLD = 256 << 20  # above the memory one step frees (unet's, the largest measured)
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


def user_set(environ: os._Environ | dict[str, str] = os.environ) -> bool:
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


def release() -> None:
    """Hand the heap's free memory back to the kernel (after a run; a no-op off glibc)."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
