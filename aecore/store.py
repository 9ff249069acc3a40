"""One artifact store that every app server and training worker shares (AECORE_STORE).

Without AECORE_STORE nothing here runs: each process keeps its runs in its own runs folder. With
it (an absolute folder, file:///shared/runs, s3://bucket/prefix: any URL fsspec opens), the local
runs folder stays the working copy every process reads, and the store holds every run:

- publish: a checkpoint saved in the runs folder (checkpoints.save_checkpoint), then its index
  entry (runindex.write_entry), are copied to the store under the same names;
- fetch: a lookup that misses here (checkpoints.find_checkpoint, load_for) copies the run from the
  store into the runs folder and loads it with the same checks as any local file, so a corrupt
  object is refused (and moved aside here) like a corrupt local file;
- pull: listing the runs folder (runindex.list_runs) first copies the runs whose index entry is
  in the store but whose checkpoint is not here, after checking the checkpoint's size and
  SHA-256 against that entry; a run trained by a worker on another machine is listed everywhere.

Publishing is atomic, so nothing under a final name is ever part of a file:
- a folder (a path, file://, a shared mount): artifacts.write_atomic, a temporary
  .<name>.<random>.tmp beside the target renamed over it (rename is atomic within a file
  system); the temporary file of a writer that died is swept by the next publish, and no lookup
  ever matches its name;
- an object store (s3://, gs://...): one PUT of the whole object (fsspec's pipe_file). S3 and the
  stores compatible with it make an object visible under its name only once its upload is
  complete (a single PUT, or a multipart upload at its completion): a reader gets the old object
  or the new one, never a part. S3 has no rename, and none is needed.
Names are config keys: two writers of one name publish runs of the same config, and whichever
PUT or rename comes last, the object under that name is whole.

This module sits above checkpoints and runindex; they import it only when a store is configured,
so without one nothing of it (nor fsspec) is even loaded.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

from aecore import artifacts, checkpoints, runcache, runindex, settings
from aecore.config import TrainConfig

log = logging.getLogger(__name__)

PULL_EVERY_S = 5.0  # a listing asks the store at most this often per runs folder (one LIST)
MAX_TRIED = 4096
_pull_lock = threading.Lock()
_last_pull: dict[tuple[str, str], float] = {}  # (store, runs folder) -> when
_tried: dict[tuple[str, str, str], None] = {}  # (runs folder, entry, its version) pulled once


class StoreError(OSError):
    """The store could not be written."""


def url() -> str | None:
    """The store's URL (settings.store_url), or None: no store."""
    return settings.current().store_url


@functools.lru_cache(maxsize=8)
def _open(store_url: str) -> tuple[Any, str, bool]:
    """(the fsspec file system, the root path in it, whether it is a local folder)."""
    import fsspec  # only a process with a store needs it (and s3fs for s3://)
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(store_url)
    return fs, root.rstrip("/"), isinstance(fs, LocalFileSystem)


# -- the store itself -----------------------------------------------------------------------------


def publish(name: str, data: bytes | memoryview) -> None:
    """Put data in the store under name, atomically (see above). Raises StoreError."""
    fs, root, local = _open(url())
    try:
        if local:
            folder = Path(root)
            folder.mkdir(parents=True, exist_ok=True)
            runcache.remove_stale_temps(folder)  # puts whose writer died before the rename
            artifacts.write_atomic(folder / name, data, hold=runcache.hold_temp)
        else:
            fs.pipe_file(f"{root}/{name}", bytes(data))  # one PUT: whole or not there at all
    except Exception as err:  # each fsspec backend has its own errors (botocore, aiohttp...)
        raise StoreError(f"could not publish {name} to the store: {err!r}"[:500]) from err


def read(name: str, max_bytes: int) -> bytes | None:
    """The object's bytes; None if the store has no such object, it is larger than max_bytes,
    or the store cannot be read now (logged). Never raises."""
    fs, root, _ = _open(url())
    path = f"{root}/{name}"
    try:
        fs.invalidate_cache(path)  # another server may have replaced it since
        with fs.open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        return None
    except Exception as err:  # each fsspec backend has its own errors
        log.warning("cannot read %s from the store: %r", name, err)
        return None
    if len(data) > max_bytes:
        log.warning("not reading %s from the store: larger than %d bytes", name, max_bytes)
        return None
    return data


def entries() -> dict[str, str]:
    """The runs' index entries in the store: object name -> a token that changes when the
    object does. {} if the store cannot be listed now (logged). Never raises."""
    fs, root, _ = _open(url())
    try:
        fs.invalidate_cache(root)  # fsspec caches listings; other servers publish meanwhile
        found = fs.ls(root, detail=True)
    except FileNotFoundError:
        return {}
    except Exception as err:  # each fsspec backend has its own errors
        log.warning("cannot list the store: %r", err)
        return {}
    out = {}
    for info in found:
        name = str(info.get("name", "")).rsplit("/", 1)[-1]
        if info.get("type") == "file" and _run_of(name):
            changed = [info.get(k) for k in ("mtime", "LastModified", "ETag", "created")]
            out[name] = f"{info.get('size')}:{changed}"
    return out


def _run_of(entry: str) -> str | None:
    """The checkpoint an index entry's name belongs to: .<run>.pt.json -> <run>.pt."""
    suffix = runcache.INDEX_SUFFIX
    run = entry[1 : -len(suffix)] if entry.startswith(".") and entry.endswith(suffix) else ""
    return run if checkpoints._NAME.fullmatch(run) else None


# -- hooks of checkpoints and runindex ------------------------------------------------------------


def publish_run(path: Path, data: bytes | memoryview) -> None:
    """A checkpoint just saved at path: published if path is in the runs folder. Raises
    CheckpointSaveError: a run other servers cannot see is a failed save, not a silent one."""
    if not _is_runs_folder(path.parent):
        return
    try:
        publish(path.name, data)
    except StoreError as err:
        log.error("%s", err)
        raise checkpoints.CheckpointSaveError(
            "This run was saved on this server but could not be copied to the shared store, so "
            "the other servers cannot see it. Please tell whoever runs this server.",
            str(err),
            err.errno,
        ) from err


def publish_entry(path: Path, data: bytes) -> None:
    """The index entry of the checkpoint at path: published after the checkpoint itself, so an
    entry in the store always names a checkpoint that is there. A failure is logged: the run is
    still fetched by its config, only other servers' lists miss it."""
    if not _is_runs_folder(path.parent):
        return
    try:
        publish(runcache.index_path(path).name, data)
    except StoreError as err:
        log.warning("%s; other servers will not list this run", err)


def fetch(name: str) -> Path | None:
    """Copy checkpoint `name` from the store into the runs folder (written atomically, room made
    first); None if the store does not hold it or it cannot be copied now (logged). Nothing is
    checked here: the caller loads it with checkpoints.load_checkpoint's checks."""
    data = read(name, checkpoints.max_record_bytes())
    if data is None:
        return None
    path = checkpoints.runs_dir() / name
    try:
        _write_local(path, data)
    except OSError as err:
        log.warning("cannot copy %s from the store into %s: %s", name, path.parent, err)
        return None
    return path


def pull(folder: Path) -> list[Path]:
    """Copy into the runs folder the runs whose index entry is in the store and whose checkpoint
    is not here; the checkpoints copied. Asks the store at most every PULL_EVERY_S seconds, and
    tries each version of an entry once, so a run evicted here to keep the folder under its limit
    is not copied back by every listing (load_for still fetches it when it is asked for)."""
    if not _is_runs_folder(folder) or not _pull_lock.acquire(blocking=False):
        return []  # another thread is pulling: this listing shows what is here now
    try:
        when = (str(url()), str(folder))
        if time.monotonic() - _last_pull.get(when, -math.inf) < PULL_EVERY_S:
            return []
        _last_pull[when] = time.monotonic()
        copied = []
        for name, version in entries().items():
            run = folder / str(_run_of(name))
            tried = (str(folder), name, version)
            if tried in _tried or checkpoints.stat_checkpoint(run) is not None:
                continue
            _remember(tried)
            if _pull_one(run, name):
                copied.append(run)
        return copied
    finally:
        _pull_lock.release()


def _pull_one(run: Path, entry_name: str) -> bool:
    """Copy one run and write its index entry here; False (logged) if the entry or the
    checkpoint in the store is damaged, or they do not match."""
    data = _entry(read(entry_name, runindex.MAX_ENTRY_BYTES), run.name)
    if data is None:
        log.warning("not copying %s from the store: its index entry is damaged", run.name)
        return False
    blob = read(run.name, checkpoints.max_record_bytes())
    if blob is None:
        return False
    if len(blob) != data["size"] or hashlib.sha256(blob).hexdigest() != data["sha256"]:
        log.warning("refusing %s from the store: not the file its index entry describes", run.name)
        return False
    try:
        _write_local(run, blob)
    except OSError as err:
        log.warning("cannot copy %s from the store into %s: %s", run.name, run.parent, err)
        return False
    info = {"created": data.get("trained_at")}
    cfg = TrainConfig.from_dict(data["config"])
    runindex.write_entry(run, cfg, data.get("metrics") or {}, info, data["epochs"], publish=False)
    return True


def _entry(raw: bytes | None, run_name: str) -> dict[str, Any] | None:
    """A store index entry's fields if it is intact and describes run_name, else None."""
    try:
        data = json.loads(raw or b"null")
        intact = (
            isinstance(data, dict)
            and (data.get("format"), data.get("version")) == (runindex.FORMAT, runindex.VERSION)
            and data.get("file") == run_name
            and artifacts.verify(data)
            and TrainConfig.from_dict(data["config"]).key() == data["key"]
        )
        data["size"], data["epochs"] = int(data["size"]), int(data.get("epochs") or 0)
        return data if intact and isinstance(data.get("sha256"), str) else None
    except (ValueError, TypeError, KeyError):  # NotPlain is a ValueError
        return None


def _write_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    runcache.make_room(path.parent, runcache.max_bytes(), len(data), keep={path})
    artifacts.write_atomic(path, data, hold=runcache.hold_temp)


def _is_runs_folder(folder: Path) -> bool:
    try:
        return folder.resolve() == checkpoints.runs_dir().resolve()
    except OSError:
        return False


def _remember(tried: tuple[str, str, str]) -> None:
    if len(_tried) >= MAX_TRIED:
        _tried.pop(next(iter(_tried)))
    _tried[tried] = None
