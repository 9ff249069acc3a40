"""The runs folder as a bounded cache: when it grows past its size limit, the checkpoints used
least recently are deleted first.

"Used" means saved or loaded. A load sets the file's access time only (os.utime), never its
modification time: pages key their caches on the mtime, and the Compare page sorts by it, so a
load must not look like a new save. Explicit utime calls work on relatime/noatime mounts too.

Only *.pt files directly in the runs folder are managed (plus leftovers from interrupted writes
and quarantined files); subfolders and the bundled checkpoints/ folder are never touched.

    evict(runs_dir(), max_bytes(), keep={just_saved})
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_MAX_MB = 500.0  # a few hundred MNIST-sized runs; one CIFAR deep_mlp is ~100 MB at most
STALE_TEMP_SECONDS = 3600.0  # a temporary file untouched this long belongs to a dead writer
TEMP_SUFFIX = ".tmp"  # save_checkpoint writes .<name>.<random>.tmp, then renames it
BAD_SUFFIX = ".bad"  # a checkpoint that failed to load, moved aside for inspection


def max_bytes() -> int | None:
    """The size limit of the runs folder: AECORE_RUNS_MAX_MB (MB, may be fractional), else
    DEFAULT_MAX_MB; 0 means no limit. A value that is not a number is logged and ignored."""
    text = os.environ.get("AECORE_RUNS_MAX_MB", "").strip()
    mb = DEFAULT_MAX_MB
    if text:
        try:
            mb = float(text)
        except ValueError:
            log.warning("AECORE_RUNS_MAX_MB=%r is not a number; using %g MB", text, mb)
        if not math.isfinite(mb) or mb < 0:
            log.warning("AECORE_RUNS_MAX_MB=%r is out of range; using %g MB", text, DEFAULT_MAX_MB)
            mb = DEFAULT_MAX_MB
    return None if mb == 0 else int(mb * 1024 * 1024)


def touch(path: Path | str) -> None:
    """Mark a checkpoint as used now (its access time), keeping its modification time."""
    try:
        st = os.stat(path)
        os.utime(path, ns=(time.time_ns(), st.st_mtime_ns))
    except OSError:  # a read-only folder (the bundled one on a host) or a file just evicted
        pass


def last_used(path: Path) -> float:
    st = path.stat()
    return max(st.st_atime, st.st_mtime)


def remove_stale_temps(folder: Path, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temporary files of writes that never finished (a killed process leaves them)."""
    removed = []
    cutoff = time.time() - older_than
    for path in folder.glob(f".*{TEMP_SUFFIX}") if folder.is_dir() else []:
        try:
            if path.is_file() and path.stat().st_mtime <= cutoff:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    if removed:
        log.info("removed %d unfinished checkpoint write(s) from %s", len(removed), folder)
    return removed


def evict(folder: Path, limit: int | None, keep: Iterable[Path] = ()) -> list[Path]:
    """Delete the least recently used checkpoints in folder until its files take at most `limit`
    bytes; files in `keep` stay even if they alone exceed it. Returns the deleted paths."""
    remove_stale_temps(folder)
    if limit is None or not folder.is_dir() or _is_bundled(folder):
        return []
    keep = {Path(p).resolve() for p in keep}
    files = []
    for path in [*folder.glob("*.pt"), *folder.glob(f"*{BAD_SUFFIX}")]:
        try:
            # Quarantined files go first: they are of no use to anyone.
            files.append((not path.name.endswith(BAD_SUFFIX), last_used(path), path))
        except OSError:
            continue
    sizes = {p: _size(p) for _, _, p in files}
    total = sum(sizes.values())
    removed = []
    for _, _, path in sorted(files):
        if total <= limit:
            break
        if path.resolve() in keep:
            continue
        try:
            path.unlink()
        except OSError:
            continue
        total -= sizes[path]
        removed.append(path)
        log.info("evicted %s (runs folder over %.0f MB)", path.name, limit / 2**20)
    return removed


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _is_bundled(folder: Path) -> bool:
    from aecore.checkpoints import BUNDLED_DIR  # the shipped checkpoints are never evicted

    try:
        return folder.resolve() == BUNDLED_DIR.resolve()
    except OSError:
        return False
