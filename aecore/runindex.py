"""A small index of saved runs, so pages list runs (name, config, test metrics) without loading
every checkpoint.

Each run in a folder of runs has an entry beside it, `.<name>.pt.json` (runcache.index_path):
its config, test metrics, when it was trained, its epochs, the checkpoint's size, modification
time and SHA-256, in aecore.artifacts' envelope, written atomically when the run is saved
(aecore.runs). An entry that is missing, damaged or stale (the file's size or mtime changed) is
rebuilt from the checkpoint, once. runcache deletes a run's entry with the run. The bundled
folder's index is its manifest (aecore.pretrain): its records name each file and its size.

Listing checks no weights: a checkpoint damaged after its entry was written is still listed,
and loading it (load_checkpoint) refuses it with its plain message.
"""

from __future__ import annotations

import calendar
import contextlib
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aecore import artifacts, runcache, settings
from aecore.checkpoints import (
    CheckpointError,
    CheckpointMissing,
    CheckpointUnavailable,
    list_checkpoints,
    load_checkpoint,
    stat_checkpoint,
)
from aecore.config import TrainConfig

log = logging.getLogger(__name__)

FORMAT = "aecore-run-index"
VERSION = 1
MAX_ENTRY_BYTES = 1 << 20  # an entry is a few KB; a larger file is not ours
_UNREADABLE_MAX = 256
_unreadable: dict[tuple[str, int, int], None] = {}  # checkpoints that failed a rebuild
_unreadable_lock = threading.Lock()


@dataclass(frozen=True)
class RunEntry:
    """What a list of runs shows, with Checkpoint's `config` and `metrics` attributes."""

    path: Path
    config: TrainConfig
    metrics: dict[str, float] = field(default_factory=dict)
    trained_at: float = 0.0  # seconds since the epoch
    epochs: int = 0
    size: int = 0
    mtime_ns: int = 0
    sha256: str = ""
    bundled: bool = False

    @property
    def name(self) -> str:
        return self.path.name


def list_runs(folder: Path | str) -> list[RunEntry]:
    """The runs in folder, newest first, from the index (rebuilding an entry where needed). A
    checkpoint that vanishes meanwhile, or cannot be read to rebuild its entry, is left out.
    Never raises for a file."""
    folder = Path(folder)
    if settings.current().store_url:  # runs published by other servers and workers
        from aecore import store  # a layer above this module: loaded only when configured

        store.pull(folder)
    manifest = _manifest_records(folder)
    if not manifest:
        prune(folder)  # entries of runs deleted or moved aside outside runcache
    out = []
    for path in list_checkpoints(folder):
        st = stat_checkpoint(path)
        if st is None:
            continue
        entry = _from_manifest(path, st, manifest.get(path.name)) if manifest else None
        entry = entry or read_entry(path, st) or _rebuild(path, st, write=not manifest)
        if entry is not None:
            out.append(entry)
    return out


def write_entry(
    path: Path,
    cfg: TrainConfig,
    metrics: dict[str, Any],
    info: dict[str, Any],
    epochs: int,
    publish: bool = True,
) -> RunEntry | None:
    """Index the checkpoint just saved at path. None (logged) if it cannot be written: the
    listing then rebuilds the entry from the checkpoint. With a shared store, the entry is
    published there too (publish=False: it came from there, aecore.store)."""
    try:
        st = os.stat(path)
        record = artifacts.envelope(
            FORMAT,
            VERSION,
            cfg.key(),
            file=path.name,
            config=cfg.to_dict(),
            metrics=dict(metrics),
            trained_at=float(info.get("created") or st.st_mtime),
            epochs=int(epochs),
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            sha256=_file_sha256(path),
        )
        text = (json.dumps(artifacts.seal(record), indent=1) + "\n").encode()
        artifacts.write_atomic(runcache.index_path(path), text, hold=runcache.hold_temp)
        if publish and settings.current().store_url:  # after the checkpoint, never before
            from aecore import store

            store.publish_entry(path, text)
    except (OSError, TypeError, ValueError) as err:
        log.warning("could not index run %s: %s", path, err)
        return None
    return _entry(path, record)


def read_entry(path: Path, st: os.stat_result) -> RunEntry | None:
    """The run's index entry, or None if it is missing, damaged or stale."""
    try:
        with open(runcache.index_path(path), "rb") as f:
            data = json.loads(f.read(MAX_ENTRY_BYTES + 1)[:MAX_ENTRY_BYTES])
        if not (
            isinstance(data, dict)
            and data.get("format") == FORMAT
            and data.get("version") == VERSION
            and data.get("file") == path.name
            and (data.get("size"), data.get("mtime_ns")) == (st.st_size, st.st_mtime_ns)
            and artifacts.verify(data)
        ):
            return None
        entry = _entry(path, data)
    except (OSError, ValueError, TypeError, KeyError):  # NotPlain is a ValueError
        return None
    return entry if entry.config.key() == data["key"] else None


def prune(folder: Path | str) -> list[Path]:
    """Delete index entries whose run is gone (deleted or moved aside by another process)."""
    removed = []
    with contextlib.suppress(OSError):
        for sidecar in Path(folder).glob(f".*.pt{runcache.INDEX_SUFFIX}"):
            run = sidecar.with_name(sidecar.name[1 : -len(runcache.INDEX_SUFFIX)])
            if not run.exists():
                sidecar.unlink(missing_ok=True)
                removed.append(sidecar)
    return removed


def _entry(path: Path, data: dict[str, Any], bundled: bool = False) -> RunEntry:
    return RunEntry(
        path=path,
        config=TrainConfig.from_dict(data["config"]),
        metrics=_numbers(data.get("metrics") or {}),
        trained_at=float(data.get("trained_at") or 0.0),
        epochs=int(data.get("epochs") or 0),
        size=int(data.get("size") or 0),
        mtime_ns=int(data.get("mtime_ns") or 0),
        sha256=str(data.get("sha256") or ""),
        bundled=bundled,
    )


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        str(k): float(v)
        for k, v in dict(metrics).items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def _rebuild(path: Path, st: os.stat_result, write: bool) -> RunEntry | None:
    """Load the checkpoint once to index it; None if it cannot be read (remembered, so a
    damaged file is not loaded again on every listing until it changes)."""
    seen = (str(path), st.st_size, st.st_mtime_ns)
    with _unreadable_lock:
        if seen in _unreadable:
            return None
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as err:
        log.info("not listing %s: %s", path, err)
        if not isinstance(err, CheckpointMissing | CheckpointUnavailable):  # the file is bad
            _remember(seen)
        return None
    now = stat_checkpoint(path)
    if now is None or now.st_mtime_ns != st.st_mtime_ns:
        return None  # replaced or evicted while it was read: the next listing indexes it
    made = None
    if write:
        # Not published again: a run is published when it is saved, or came from the store.
        made = write_entry(path, ckpt.config, ckpt.metrics, ckpt.info, len(ckpt.history), False)
    return made or RunEntry(
        path,
        ckpt.config,
        _numbers(ckpt.metrics),
        float(ckpt.info.get("created") or st.st_mtime),
        len(ckpt.history),
        st.st_size,
        st.st_mtime_ns,
        bundled=not write,
    )


def _remember(seen: tuple[str, int, int]) -> None:
    with _unreadable_lock:
        if len(_unreadable) >= _UNREADABLE_MAX:
            _unreadable.pop(next(iter(_unreadable)))
        _unreadable[seen] = None


def _manifest_records(folder: Path) -> dict[str, dict[str, Any]]:
    """file name -> record, from the folder's manifest if it has one (the bundled folder)."""
    path = folder / settings.MANIFEST_NAME
    if not path.is_file():
        return {}
    try:
        data, _ = artifacts.read_json(path)
        records = {}
        for item in data["models"]:
            cfg = TrainConfig.from_dict(item["config"])  # validated: a bad entry is refused
            if item.get("file") and item.get("key") == cfg.key():
                records[str(item["file"])] = {**item, "config": cfg.to_dict()}
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("cannot read %s: %s", path, err)
        return {}
    return records


def _from_manifest(
    path: Path, st: os.stat_result, record: dict[str, Any] | None
) -> RunEntry | None:
    if record is None or record.get("bytes") != st.st_size:
        return None  # not listed, or another file than the one recorded: load it instead
    data = {**record, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    data["trained_at"] = _date(record.get("trained")) or st.st_mtime
    try:
        return _entry(path, data, bundled=True)
    except (ValueError, TypeError):
        return None


def _date(text: Any) -> float | None:
    try:
        return float(calendar.timegm(time.strptime(str(text), "%Y-%m-%d")))
    except ValueError:
        return None


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(artifacts.CHUNK):
            h.update(chunk)
    return h.hexdigest()
