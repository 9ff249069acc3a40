"""Checkpoints: a state_dict plus plain data (config, history, metrics, info), never a pickle of
code.

Saving: the record is serialized in memory first, then room is made in the runs folder for its
exact size (aecore.runcache), then it is written to a temporary file that the writer holds locked
(so a sweep can tell a live save from a dead one) and renamed over the target (os.replace): a
crash mid-write never leaves a file that loads. A failed write raises CheckpointSaveError (an
OSError too) whose message is plain words; a full disk first frees room by evicting the least
recently used runs and tries once more, then raises DiskFullError. Paths and errno go to the log.

Loading checks, in this order, before anything is trusted: a regular file of sane size; a ZIP
whose entries declare no more bytes than the largest model of this app needs, and not much more
than the file itself (checked before anything is inflated); every entry's CRC-32 (torch.load
does not check them), counting the bytes actually read; torch.load(weights_only=True), so a
crafted file cannot run code; the record's key against the caller's key (a renamed file) and
against its own config (an edited one); the weights against the model and their SHA-256; and, in
format version 2, a SHA-256 over the whole record (weights, metrics, history, config, info), so a
flipped byte anywhere is refused. Version 1 files (no record checksum) still load.

Failures are all CheckpointError, of three kinds: CheckpointMissing (no file there, or evicted
meanwhile), CheckpointCorrupt (the file itself is wrong: load_for moves it aside to <name>.bad),
and CheckpointUnavailable (out of memory, out of file handles, an I/O error: retried once, then
reported; the file is left where it is). str(err) is a sentence for a visitor; err.technical
and the log hold the technical cause.

Files in the runs folder vanish when another session's save evicts them: stat_checkpoint,
checkpoint_mtime, read_checkpoint_bytes and list_checkpoints return None (or leave the file out)
instead of raising, and download_bytes serves a loaded run's bytes from memory if its file is gone.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import io
import logging
import math
import os
import platform
import re
import stat
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from aecore import artifacts, runcache, settings
from aecore.artifacts import NotPlain as _NotPlain
from aecore.artifacts import weights_digest
from aecore.config import RANGES, TrainConfig
from aecore.history import EpochStats
from aecore.models import Autoencoder, build_model
from aecore.watch import Watch, attach, attached, from_record, to_record

log = logging.getLogger(__name__)

FORMAT = "aecore-checkpoint"
VERSION = 2  # 2: record_sha256 covers the whole record; 1: only the weights had a checksum
READABLE_VERSIONS = (1, 2)
# The shipped checkpoints (aecore.settings knows where). Looked up here at call time, so a test
# can point the lookups of this module elsewhere.
BUNDLED_DIR = settings.BUNDLED_DIR

ZIP_HEADROOM = 16 << 20  # beyond the largest model's weights: history, pickle, ZIP headers
INFLATION_RATIO = 2  # torch.save stores entries uncompressed: contents ~ the file's own size
MAX_ENTRIES = 4096  # a model's tensors are a few dozen entries
CHUNK = artifacts.CHUNK


class CheckpointError(RuntimeError):
    """A checkpoint could not be used. str(err) is plain words for a visitor; `technical` holds
    the cause (errno, library messages) for the server log. (Not named `detail`: the CLI prints
    an error's `detail` instead of its message, and that is for operator advice.)"""

    def __init__(self, message: str, technical: str = "") -> None:
        super().__init__(message)
        self.technical = technical


class CheckpointMissing(CheckpointError):
    """No checkpoint file there: never saved, or evicted by another save just now."""


class CheckpointCorrupt(CheckpointError):
    """The file itself is wrong: damaged, truncated, edited, renamed, oversized or unsafe."""


class CheckpointUnavailable(CheckpointError):
    """Loading failed for a temporary reason (memory, open files, I/O); the file may be fine."""


class CheckpointSaveError(CheckpointError, OSError):
    """A checkpoint could not be written; `errno` is the operating system's code."""

    def __init__(self, message: str, technical: str = "", code: int | None = None) -> None:
        super().__init__(message, technical)
        self.errno = code


class DiskFullError(CheckpointSaveError):
    """No space left (ENOSPC or a quota), even after evicting old runs."""


@dataclass
class Checkpoint:
    config: TrainConfig
    model: Autoencoder
    history: list[EpochStats] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # device, seconds, versions, created

    @property
    def watch(self) -> Watch | None:
        """The snapshots taken while it trained (aecore.watch); None for files saved before
        snapshots were recorded. They travel with the model (watch.attach)."""
        return attached(self.model)


def runs_dir() -> Path:
    """Where trained runs are saved: AECORE_RUNS_DIR, else ~/.cache/aecore/runs."""
    return settings.current().runs_dir


# Registry names are snake_case and keys are hex, so a name can never hold a path separator or
# "..": checked anyway, because this string is joined to a folder.
_NAME = re.compile(r"[a-z0-9_]+-[a-z0-9_]+-[0-9a-f]{16}\.pt")


def checkpoint_name(cfg: TrainConfig) -> str:
    """<model>-<dataset>-<key>.pt: a plain file name, never a path."""
    name = f"{cfg.model}-{cfg.dataset}-{cfg.key()}.pt"
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a safe checkpoint file name: {name[:80]!r}")
    return name


def hardware() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{_cpu_name()} CPU, {os.cpu_count()} cores"


def _cpu_name() -> str:
    # platform.processor() is empty on most Linux systems; /proc/cpuinfo names the chip.
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@functools.cache
def max_record_bytes() -> int:
    """The most bytes a genuine checkpoint can hold: the largest model this app can build (every
    model at the largest width and code size allowed, on every dataset, as float32; built on
    PyTorch's meta device, so nothing is allocated), plus ZIP_HEADROOM."""
    from aecore.data import DATASETS
    from aecore.models import MODELS

    largest = 0
    for model in MODELS.names():
        for dataset in DATASETS.names():
            shape = tuple(DATASETS[dataset].meta["shape"])
            latent = int(min(RANGES["latent"][1], math.prod(shape)))
            try:
                with torch.device("meta"):
                    widest = TrainConfig(
                        dataset, model=model, latent=latent, width=RANGES["width"][1]
                    )
                    net = build_model(widest, shape)
            except ValueError:  # a model that cannot take this dataset's images
                continue
            size = sum(t.numel() * 4 for t in net.state_dict().values())
            largest = max(largest, size)
    return largest + ZIP_HEADROOM


# -- saving --------------------------------------------------------------------------------------


def save_checkpoint(
    path: Path | str,
    cfg: TrainConfig,
    model: Autoencoder,
    history: list[EpochStats],
    metrics: dict[str, float],
    info: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write the checkpoint atomically. half=True stores floating weights as float16 (half the
    bytes, for the bundled folder); load_checkpoint turns them back into float32.

    In the runs folder, room is made first (runcache.make_room) for the file's exact size. Raises
    CheckpointSaveError (DiskFullError when the disk stays full) with a plain message."""
    path = Path(path)
    data = _serialize(cfg, model, history, metrics, info, half)  # the size is known before
    _store(path, data)  # the disk is touched
    if settings.current().store_url:  # shared with every server and worker
        from aecore import store  # a layer above this module: loaded only when configured

        store.publish_run(path, data)
    return path


def _serialize(
    cfg: TrainConfig,
    model: Autoencoder,
    history: list[EpochStats],
    metrics: dict[str, float],
    info: dict[str, Any] | None,
    half: bool,
) -> memoryview:
    """The checkpoint file's bytes."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = artifacts.half_state(state)
    dtype = "float16" if half else "float32"
    watch = attached(model)
    extra = {} if watch is None else {"watch": to_record(watch)}  # covered by record_sha256
    record = artifacts.envelope(
        FORMAT,
        VERSION,
        cfg.key(),
        config=cfg.to_dict(),
        weights_sha256=weights_digest(state),
        history=[asdict(h) for h in history],
        metrics=dict(metrics),
        info={
            "torch": str(torch.__version__),
            "created": time.time(),
            **(info or {}),
            "dtype": dtype,
        },
        **extra,
    )
    payload = artifacts.seal(record, state)
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getbuffer()


def download_bytes(ckpt: Checkpoint) -> bytes | None:
    """The bytes of a loaded run's checkpoint file, for a download. If the file was evicted (or
    replaced by an unreadable one) since the run was loaded, the same record is serialized again
    from memory: it loads with load_checkpoint like the file did, with the same weights (float16
    where the file was), config, history, metrics and info. None only if neither works (logged);
    never raises."""
    path = ckpt.info.get("path")
    data = read_checkpoint_bytes(path) if path else None
    if data is not None:
        return data
    info = {k: v for k, v in ckpt.info.items() if k != "path"}
    try:
        half = info.get("dtype") == "float16"
        out = _serialize(ckpt.config, ckpt.model, ckpt.history, ckpt.metrics, info, half)
        return bytes(out)
    except Exception as err:  # e.g. info holding something that is not plain data
        log.warning("cannot serialize run %s for download: %s", ckpt.config.key(), err)
        return None


def _store(path: Path, data: memoryview) -> None:
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _save_error(err, path) from err
    managed = _is_runs_folder(folder)
    if managed:
        runcache.make_room(folder, runcache.max_bytes(), len(data), keep={path})

    def free_room() -> bool:  # a full disk: evict least recently used runs, then once more
        if not managed:
            return False
        log.warning("disk full while saving %s: evicting old runs and trying once more", path)
        return bool(runcache.free_space(folder, len(data), keep={path}))

    try:
        artifacts.write_atomic(path, data, hold=runcache.hold_temp, on_full=free_room)
    except OSError as err:
        raise _save_error(err, path) from err


def _save_error(err: OSError, path: Path) -> CheckpointSaveError:
    code = err.errno
    log.error("could not save checkpoint %s: %s: %s", path, type(err).__name__, err)
    detail = f"{type(err).__name__}: {err}"
    if code in (errno.ENOSPC, errno.EDQUOT):
        return DiskFullError(
            "This run could not be saved because the server's disk is full, even after removing "
            "old runs. Please tell whoever runs this server; once there is room, train it again.",
            detail,
            code,
        )
    if code == errno.EROFS:
        why = "the server's storage for trained runs is read-only"
    elif code in (errno.EACCES, errno.EPERM):
        why = "the server is not allowed to write to its storage for trained runs"
    else:
        why = "the server could not write the file"
    return CheckpointSaveError(
        f"This run could not be saved: {why}. Please tell whoever runs this server.", detail, code
    )


def _is_runs_folder(folder: Path) -> bool:
    try:
        return folder.resolve() == runs_dir().resolve()
    except OSError:
        return False


# -- loading ---------------------------------------------------------------------------------------

# Errors of the path itself: nothing to load there (not a corrupt file).
_MISSING = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.ENXIO}
_OOM = re.compile(
    r"out of memory|can't allocate memory|cannot allocate memory|not enough memory|bad_alloc",
    re.IGNORECASE,
)


def _transient(err: BaseException) -> bool:
    """Whether a failure says nothing about the file: memory, file handles, I/O."""
    for _ in range(4):  # the error and the ones it was raised from
        if isinstance(err, MemoryError):
            return True
        if (
            isinstance(err, OSError)
            and not isinstance(err, CheckpointError)
            and err.errno is not None
            and err.errno not in _MISSING
        ):
            return True
        if isinstance(err, RuntimeError) and _OOM.search(str(err)[:4000]):
            return True
        if err.__cause__ is None:
            return False
        err = err.__cause__
    return False


def load_checkpoint(
    path: Path | str, device: torch.device | str = "cpu", key: str | None = None
) -> Checkpoint:
    """Load and check a checkpoint; with `key`, it must be the run of that config key.

    Raises CheckpointMissing (no file), CheckpointCorrupt (anything that is not exactly what
    save_checkpoint wrote) or CheckpointUnavailable (short of memory or file handles twice: the
    first failure is retried once after a garbage collection)."""
    path = Path(path)
    name = _display_name(path)
    for attempt in (1, 2):
        try:
            ckpt = _load(path, name, device, key)
        except CheckpointCorrupt as err:
            log.warning("checkpoint %s refused: %s [%s]", path, err, err.technical)
            raise
        except CheckpointError:
            raise
        except Exception as err:
            if not _transient(err):
                raise
            detail = f"{type(err).__name__}: {str(err)[:300]}"
            if attempt == 1:
                log.warning("loading %s failed (%s); trying once more", path, detail)
                _release_memory()
                continue
            log.warning("loading %s failed again (%s); the file is left as it is", path, detail)
            raise CheckpointUnavailable(
                f"{name} could not be loaded just now: {_why_unavailable(err)}. The file was "
                "left as it is; please try again in a minute.",
                detail,
            ) from err
        runcache.touch(path)  # recently used: the runs folder evicts least recently used first
        return ckpt
    raise AssertionError("unreachable")


def _why_unavailable(err: BaseException) -> str:
    code = getattr(err, "errno", None)
    if code in (errno.EMFILE, errno.ENFILE):
        return "the server has too many files open"
    if code in (errno.EACCES, errno.EPERM):
        return "the server is not allowed to read it (please tell whoever runs this server)"
    if isinstance(err, OSError) and code != errno.ENOMEM:
        return "the disk did not answer"
    return "the server is short of memory"


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _display_name(path: Path) -> str:
    """The file's name only (never its folder), shortened: what a message may show."""
    return repr(path.name[:80]) if path.name else "that path"


def _corrupt(message: str, technical: str = "") -> CheckpointCorrupt:
    return CheckpointCorrupt(message, technical)


def _reraise_transient(err: BaseException) -> None:
    if _transient(err):
        raise err


def _load(path: Path, name: str, device: torch.device | str, key: str | None) -> Checkpoint:
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO put there does not hang the open
    except (OSError, ValueError) as err:
        if isinstance(err, ValueError) or err.errno in _MISSING or err.errno is None:
            raise CheckpointMissing(
                f"no checkpoint at {name}: there is no such file, or it was just removed",
                f"{type(err).__name__}: {err}",
            ) from None
        raise  # EMFILE, ENOMEM, EIO, EACCES...: the file may be fine
    try:
        st = os.fstat(fd)
    except OSError:
        os.close(fd)
        raise
    if not stat.S_ISREG(st.st_mode):  # a folder, a device, a FIFO: checked before os.fdopen,
        os.close(fd)  # which would refuse a folder with an error of its own
        raise CheckpointMissing(f"no checkpoint at {name}: it is not a file", "not regular")
    with os.fdopen(fd, "rb") as f:
        _check_archive(f, st.st_size, name)
        f.seek(0)
        try:
            payload = torch.load(f, map_location=device, weights_only=True)
        except Exception as err:
            _reraise_transient(err)
            detail = f"{type(err).__name__}: {str(err)[:500]}"
            if "Weights only load failed" in str(err):  # more than tensors and plain data
                raise _corrupt(
                    f"{name} is not a readable checkpoint: it holds objects other than tensors "
                    "and plain data; loading it could run code",
                    detail,
                ) from err
            raise _corrupt(
                f"{name} is not a readable checkpoint: the file is damaged or incomplete", detail
            ) from err
    return _check_payload(payload, name, device, key)


def _check_archive(f: io.BufferedReader, size: int, name: str) -> None:
    """The ZIP's table of contents, then every entry's bytes and CRC-32, without trusting it:
    the sizes it declares are checked before anything is inflated, and the bytes read counted."""
    damaged = f"{name} is not a readable checkpoint: the file is damaged or incomplete"
    if size == 0:
        raise _corrupt(f"{name} is not a readable checkpoint: the file is empty", "0 bytes")
    limit = max_record_bytes()
    if size > limit:
        raise _corrupt(
            f"{name} is not a readable checkpoint: at {size / 2**20:,.0f} MB it is larger than "
            "any model of this app",
            f"{size} bytes > {limit}",
        )
    try:
        archive = zipfile.ZipFile(f)
    except Exception as err:
        _reraise_transient(err)
        raise _corrupt(damaged, f"{type(err).__name__}: {err}") from err
    with archive:
        entries = archive.infolist()
        names = [e.filename for e in entries]
        if not entries or len(entries) > MAX_ENTRIES or len(set(names)) != len(names):
            raise _corrupt(damaged, f"{len(entries)} entries, {len(set(names))} distinct")
        for e in entries:
            if e.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED) or e.flag_bits & 1:
                raise _corrupt(damaged, f"{e.filename!r}: compression {e.compress_type}, encrypted")
        declared = sum(e.file_size for e in entries)
        bound = min(limit, INFLATION_RATIO * size + (1 << 20))
        if declared > bound:
            raise _corrupt(
                f"{name} is not a readable checkpoint: it would unpack to "
                f"{declared / 2**20:,.0f} MB, far more than a checkpoint of this size holds. "
                "It was not unpacked.",
                f"entries declare {declared} bytes; the bound for a {size}-byte file is {bound}",
            )
        for e in entries:
            got = 0
            try:
                with archive.open(e) as member:
                    while chunk := member.read(CHUNK):
                        got += len(chunk)
                        if got > e.file_size:
                            raise _corrupt(damaged, f"{e.filename!r} is longer than declared")
            except CheckpointError:
                raise
            except Exception as err:
                _reraise_transient(err)
                detail = f"{e.filename!r}: {type(err).__name__}: {err}"
                if "CRC" in str(err):
                    raise _corrupt(
                        f"{name} is damaged: its contents do not match their checksum", detail
                    ) from err
                raise _corrupt(damaged, detail) from err
            if got != e.file_size:
                raise _corrupt(damaged, f"{e.filename!r}: {got} of {e.file_size} bytes")


def _check_payload(
    payload: Any, name: str, device: torch.device | str, key: str | None
) -> Checkpoint:
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise _corrupt(f"{name} is not an aecore checkpoint", "no format marker")
    version = payload.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise _corrupt(
            f"{name} has format version {str(version)[:20]!r}, which this app cannot read",
            f"version {str(version)[:20]!r}",
        )
    if key is not None and payload.get("key") != key:
        raise _corrupt(
            f"{name} holds the run {str(payload.get('key'))[:16]!r}, not {key!r} "
            "(renamed or copied over?)",
            "key mismatch",
        )
    try:
        artifacts.canonical(artifacts.record_fields(payload))  # plain data of a sane size
        cfg = TrainConfig.from_dict(payload["config"])
        if cfg.key() != payload["key"]:
            raise _corrupt(f"{name}: its config does not match its key", "edited config")
        model = build_model(cfg, _shape(payload, cfg))
        state = payload["state_dict"]
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise ValueError("the weights are not a mapping of tensors")
        # float16 weights (bundled files) compute in float32 like every other model.
        model.load_state_dict(artifacts.float_state(state))
        # Shapes are checked above; the checksum catches changed values.
        digest = payload.get("weights_sha256")
        if version >= 2 and not isinstance(digest, str):
            raise _corrupt(f"{name} is damaged: its checksum is missing", "no weights_sha256")
        if digest is not None and digest != weights_digest(state):
            raise _corrupt(f"{name}: its weights do not match their checksum", "weights_sha256")
        if version >= 2 and not artifacts.verify(payload):
            raise _corrupt(
                f"{name} is damaged: its contents do not match their checksum", "record_sha256"
            )
        history = [EpochStats(**h) for h in payload["history"]]
        metrics, info = dict(payload["metrics"]), dict(payload["info"])
        watch = from_record(payload["watch"]) if payload.get("watch") is not None else None
    except CheckpointError:
        raise
    except _NotPlain as err:
        raise _corrupt(
            f"{name} is not a readable checkpoint: it holds data of an unexpected kind or size",
            str(err),
        ) from err
    except Exception as err:  # a wrong shape, a missing field, a bad config: all mean "corrupt"
        _reraise_transient(err)  # unless it is memory: then the file may be fine
        raise _corrupt(
            f"{name} does not match its config", f"{type(err).__name__}: {str(err)[:500]}"
        ) from err
    model.to(device).eval()
    attach(model, watch)
    return Checkpoint(cfg, model, history, metrics, info)


def _shape(payload: dict[str, Any], cfg: TrainConfig) -> tuple[int, int, int]:
    """The dataset's image shape; a stored shape must be that one (a crafted shape could ask for
    a model far larger than any this app trains)."""
    from aecore.data import DATASETS

    expected = tuple(DATASETS[cfg.dataset].meta["shape"])
    stored = payload["info"].get("shape")
    if stored is not None and tuple(stored) != expected:
        raise ValueError(f"image shape {str(stored)[:40]} is not {cfg.dataset}'s {expected}")
    return expected


# -- finding, listing and reading files that may vanish ------------------------------------------


def stat_checkpoint(path: Path | str) -> os.stat_result | None:
    """The file's stat, or None if no regular file is there: never saved, or evicted by another
    session's save between being listed and being looked at. Never raises."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st if stat.S_ISREG(st.st_mode) else None


def checkpoint_mtime(path: Path | str) -> float | None:
    """The file's modification time, or None if it is gone (see stat_checkpoint)."""
    st = stat_checkpoint(path)
    return None if st is None else st.st_mtime


def read_checkpoint_bytes(path: Path | str) -> bytes | None:
    """The file's bytes (for a download), or None if it is gone, not a regular file, larger than
    any checkpoint can be, or cannot be read now (logged). Never raises."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as err:
        if not isinstance(err, FileNotFoundError):
            log.warning("cannot read checkpoint %s: %s", path, err)
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size > max_record_bytes():
            os.close(fd)
            return None
    except OSError as err:
        os.close(fd)
        log.warning("cannot read checkpoint %s: %s", path, err)
        return None
    try:
        with os.fdopen(fd, "rb") as f:
            return f.read()
    except (OSError, MemoryError) as err:
        log.warning("cannot read checkpoint %s: %s", path, err)
        return None


def list_checkpoints(folder: Path | str) -> list[Path]:
    """The *.pt files directly in folder, newest (modification time) first; a file removed
    while the folder is listed is left out. Never raises."""
    found = []
    try:
        paths = list(Path(folder).glob("*.pt"))
    except OSError:
        return []
    for path in paths:
        mtime = checkpoint_mtime(path)
        if mtime is not None:
            found.append((mtime, path.name, path))
    return [p for _, _, p in sorted(found, key=lambda t: (-t[0], t[1]))]


def find_checkpoint(cfg: TrainConfig, dirs: list[Path] | None = None) -> Path | None:
    """The first existing checkpoint for cfg: the runs folder, then the bundled one, then the
    shared store (aecore.store: copied into the runs folder; loading it checks it)."""
    for folder in dirs if dirs is not None else [runs_dir(), BUNDLED_DIR]:
        path = folder / checkpoint_name(cfg)
        if stat_checkpoint(path) is not None:
            return path
    if dirs is None and settings.current().store_url:  # saved by another server or worker
        from aecore import store

        return store.fetch(checkpoint_name(cfg))
    return None


def load_for(cfg: TrainConfig, device: torch.device | str = "cpu") -> Checkpoint | None:
    """The saved run of cfg (runs folder, then bundled, then the shared store if there is one:
    copied into the runs folder first, aecore.store), or None if none loads.

    A corrupt file (CheckpointCorrupt) is never returned: it is logged, and in the runs folder
    moved aside to <name>.bad (kept for inspection, never loaded, deleted before any run when
    room is needed), so the run counts as not trained and is trained again. Bundled files are
    only skipped: they ship with the code. A file that vanishes meanwhile is skipped. A
    temporary failure (CheckpointUnavailable: memory, file handles) is raised, and the file is
    left where it is: it is most likely fine, and training it again would not help.
    """
    for folder in [runs_dir(), BUNDLED_DIR]:
        ckpt = _load_in(folder, cfg, device)
        if ckpt is not None:
            return ckpt
    if settings.current().store_url:  # saved by another server or worker: copied here first
        from aecore import store

        if store.fetch(checkpoint_name(cfg)) is not None:
            return _load_in(runs_dir(), cfg, device)
    return None


def _load_in(folder: Path, cfg: TrainConfig, device: torch.device | str) -> Checkpoint | None:
    path = folder / checkpoint_name(cfg)
    before = stat_checkpoint(path)
    if before is None:
        return None
    try:
        ckpt = load_checkpoint(path, device, key=cfg.key())
    except CheckpointUnavailable:
        raise
    except CheckpointMissing:
        return None  # evicted between the stat and the load
    except CheckpointError as err:
        bundled = folder == BUNDLED_DIR
        log.warning(
            "ignoring checkpoint %s: %s%s", path, err, "" if bundled else "; moving it aside"
        )
        if not bundled:
            quarantine(path, before)
        return None
    ckpt.info["path"] = str(path)
    return ckpt


def quarantine(path: Path, seen: os.stat_result) -> None:
    """Rename a corrupt file to <name>.bad, unless it was replaced since it was read (a run that
    finished meanwhile wrote a good one over it)."""
    with contextlib.suppress(OSError):  # gone already, or a read-only folder: skipped anyway
        now = path.stat()
        if (now.st_ino, now.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns):
            os.replace(path, path.with_name(path.name + runcache.BAD_SUFFIX))
