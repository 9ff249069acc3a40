"""The runs folder as a bounded cache: when it would grow past its size limit, the checkpoints used
least recently are deleted first.

"Used" means saved or loaded. A load sets the file's access time only (os.utime), never its
modification time: pages key their caches on the mtime, and the Compare page sorts by it, so a
load must not look like a new save. Explicit utime calls work on relatime/noatime mounts too.

Only files directly in the runs folder are managed; subfolders and the bundled checkpoints/ folder
are never touched. Every file there counts against the limit:

- ``*.pt``: the runs. Evicted least recently used first; never the run being saved (``keep``).
- ``.<name>.pt.<random>.tmp``: a checkpoint save in progress. Its writer holds an exclusive
  lock on it (flock) until the rename, so a temporary file that nobody holds belongs to a writer
  that died (a SIGKILL mid-save) and is deleted at once, whatever its age; one a live save holds
  is never deleted but still counts. Where locks are not available, a temporary file untouched
  for STALE_TEMP_SECONDS is taken as dead. Other temporary files are not ours and are left be.
- ``.<name>.pt.json``: a run's index entry (aecore.runindex). Tiny and not counted; deleted
  with its run.
- ``*.pt.bad``: a checkpoint that failed its checks (real corruption only: checkpoints.load_for),
  kept for the operator to inspect. It is not a run: never listed or loaded. It counts against
  the limit but is deleted before any run when room is needed, so it never pushes a good run out,
  and only the MAX_BAD_FILES newest are kept at all.

Room is made *before* a save, for the size the save will take (checkpoints.save_checkpoint calls
make_room); when the disk is full anyway, free_space deletes least recently used runs until the
size of the save is freed, so a full disk cannot stop every save for good.

    make_room(runs_dir(), max_bytes(), incoming=len(data), keep={target})
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import time
from collections.abc import Iterable
from pathlib import Path

from aecore import artifacts, settings

try:
    import fcntl
except ImportError:  # Windows: no flock; the age rule decides which temporary files are dead
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DEFAULT_MAX_MB = settings.DEFAULT_RUNS_MAX_MB
STALE_TEMP_SECONDS = 600.0  # where locks are unavailable: an untouched temp file this old is dead
TEMP_SUFFIX = artifacts.TEMP_SUFFIX  # save_checkpoint writes .<name>.pt.<random>.tmp
TEMP_GLOB = f".*.pt.*{TEMP_SUFFIX}"  # only checkpoints' and their index entries' (not the queue's)
INDEX_SUFFIX = ".json"  # a run's index entry: .<name>.pt.json beside it (aecore.runindex)
BAD_SUFFIX = ".bad"  # a checkpoint that failed its checks, moved aside for inspection
MAX_BAD_FILES = 4  # quarantined files kept for inspection; older ones are deleted
FREE_MARGIN = 64 << 10  # on a full disk, free this much more than the save needs


def max_bytes() -> int | None:
    """The size limit of the runs folder: AECORE_RUNS_MAX_MB (MB, may be fractional), else
    DEFAULT_MAX_MB; 0 means no limit. A value that is not a number is logged and ignored."""
    return settings.current().runs_max_bytes


def index_path(run: Path) -> Path:
    """Where a run's index entry lives: a hidden file beside it, so it never counts as a run."""
    return run.with_name(f".{run.name}{INDEX_SUFFIX}")


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


# -- temporary files of saves in progress -------------------------------------------------------


def hold_temp(fd: int) -> bool:
    """Called by a writer on its new temporary file: take the lock that marks it as owned by a
    live save. False if a sweep deleted the file before the lock was taken (then make another).
    The lock goes with the process: a writer killed with SIGKILL leaves an unlocked file."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # waits only while a sweep looks at this very file
        except OSError:  # a file system without locks: the age rule applies to this file
            return True
    return os.fstat(fd).st_nlink > 0


def remove_stale_temps(folder: Path, older_than: float = STALE_TEMP_SECONDS) -> list[Path]:
    """Delete temporary files of saves that will never finish: those no live save holds (their
    writer died), at once; where that cannot be told (no locks), those untouched `older_than`
    seconds. A live save's file is never deleted, however old."""
    removed = []
    cutoff = time.time() - older_than
    for path in _temps(folder):
        with contextlib.suppress(OSError):
            if _remove_if_dead(path, cutoff):
                removed.append(path)
    if removed:
        log.info("removed %d unfinished checkpoint write(s) from %s", len(removed), folder)
    return removed


def _temps(folder: Path) -> list[Path]:
    try:
        return sorted(folder.glob(TEMP_GLOB)) if folder.is_dir() else []
    except OSError:
        return []


def _remove_if_dead(path: Path, cutoff: float) -> bool:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return False
        known = False  # whether a lock told us the writer's fate
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held until we close fd
                known = True
            except BlockingIOError:
                return False  # a live save holds it
            except OSError:
                pass  # no locks on this file system: fall back to its age
        if not known and st.st_mtime > cutoff:
            return False
        if os.stat(path).st_ino != st.st_ino:  # renamed or replaced meanwhile: not ours to judge
            return False
        os.unlink(path)
        return True
    finally:
        os.close(fd)


# -- the size bound -----------------------------------------------------------------------------


def evict(
    folder: Path, limit: int | None, keep: Iterable[Path] = (), incoming: int = 0
) -> list[Path]:
    """Delete quarantined files, then the least recently used checkpoints in folder, until its
    files (temporary files of live saves included) plus `incoming` bytes take at most `limit`
    bytes. Files in `keep` stay even if they alone exceed it. Returns the deleted paths."""
    remove_stale_temps(folder)
    if not folder.is_dir() or _is_bundled(folder):
        return []
    keep = {_resolve(p) for p in keep}
    bad, runs = _candidates(folder)
    removed = []
    for _, path in bad[: max(0, len(bad) - MAX_BAD_FILES)]:  # the oldest beyond the cap
        if _unlink(path):
            removed.append(path)
            log.info("deleted %s (only %d damaged files are kept)", path.name, MAX_BAD_FILES)
    if limit is None:
        return removed
    total = sum(_size(p) for p in _managed(folder)) + max(0, incoming)
    for _, path in [*bad, *runs]:  # damaged files before any run, oldest first in each
        if total <= limit:
            break
        if path in removed or _resolve(path) in keep:
            continue
        size = _size(path)
        if not _unlink(path):
            continue
        total -= size
        removed.append(path)
        log.info("evicted %s (runs folder over %.0f MB)", path.name, limit / 2**20)
    return removed


def make_room(folder: Path, limit: int | None, incoming: int, keep: Iterable[Path] = ()) -> list:
    """Before a save of `incoming` bytes: evict so that the folder stays within `limit` after it."""
    return evict(folder, limit, keep=keep, incoming=incoming)


def free_space(folder: Path, needed: int, keep: Iterable[Path] = ()) -> list[Path]:
    """The disk is full (a save of `needed` bytes failed with ENOSPC or a quota): delete dead
    temporary files, damaged files, then the least recently used runs, until `needed` bytes plus
    FREE_MARGIN are freed, whatever the size limit says (the free space the disk reports is not
    trusted: quotas and reserved blocks make it wrong). Returns the deleted paths."""
    remove_stale_temps(folder)
    if not folder.is_dir() or _is_bundled(folder):
        return []
    deficit = needed + FREE_MARGIN
    keep = {_resolve(p) for p in keep}
    bad, runs = _candidates(folder)
    removed, freed = [], 0
    for _, path in [*bad, *runs]:
        if freed >= deficit:
            break
        if _resolve(path) in keep:
            continue
        size = _size(path)
        if _unlink(path):
            freed += size
            removed.append(path)
            log.warning("evicted %s to make room on a full disk", path.name)
    return removed


def _candidates(folder: Path) -> tuple[list[tuple[float, Path]], list[tuple[float, Path]]]:
    """(quarantined files, runs), each least recently used first."""
    bad, runs = [], []
    for path in _listing(folder):
        try:
            if path.name.endswith(BAD_SUFFIX):
                bad.append((last_used(path), path))
            elif path.suffix == ".pt":
                runs.append((last_used(path), path))
        except OSError:  # deleted meanwhile
            continue
    return sorted(bad), sorted(runs)


def _managed(folder: Path) -> list[Path]:
    """Every file that counts against the limit: runs, quarantined files, live temp files."""
    listed = [p for p in _listing(folder) if p.suffix == ".pt" or p.name.endswith(BAD_SUFFIX)]
    return listed + _temps(folder)


def _listing(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if not p.name.startswith(".")]
    except OSError:
        return []


def _unlink(path: Path) -> bool:
    """Delete a file; a run's index entry goes with it."""
    try:
        if not path.is_file():
            return False
        path.unlink()
    except OSError:
        return False
    if path.suffix == ".pt":
        with contextlib.suppress(OSError):
            index_path(path).unlink(missing_ok=True)
    return True


def _size(path: Path) -> int:
    try:
        st = path.stat()
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    except OSError:
        return 0


def _resolve(path: Path | str) -> Path:
    try:
        return Path(path).resolve()
    except OSError:
        return Path(path)


def _is_bundled(folder: Path) -> bool:
    try:  # the shipped checkpoints are never evicted
        return folder.resolve() == settings.current().bundled_dir.resolve()
    except OSError:
        return False
