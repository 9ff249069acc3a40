"""One file format for what aecore writes: checkpoints, classifiers and the bundled manifest.

Writing: `write_atomic` puts the bytes in a temporary file beside the target (reserving the
space first, so a full disk fails before a byte is written), syncs it, renames it over the
target and syncs the folder; the temporary file is removed on any failure, so a crash never
leaves a half-written file that loads.

The record envelope: every file is a mapping with `format`, `version` and `key` (the config or
spec it belongs to), plain data (dicts, lists, str, int, float, bool, None) and, for weights,
a `state_dict` of tensors whose SHA-256 is one of the fields (`weights_sha256`). `seal` adds
`record_sha256`, a SHA-256 over a canonical encoding of every field but the tensors, so a
flipped byte anywhere is refused by `verify`. Floating weights may be stored as float16
(`half_state`); `round_half_` makes a model hold exactly what such a file holds.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

CHUNK = 1 << 20
RECORD_NODES = 200_000  # values in a record (200 epochs of history: ~3,000)
RECORD_DEPTH = 16
TEMP_SUFFIX = ".tmp"  # .<name>.<random>.tmp beside the target (aecore.runcache sweeps them)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
TENSORS, SEAL = "state_dict", "record_sha256"


class NotPlain(ValueError):
    """A record holds something other than plain data, or too much of it."""


# -- writing ------------------------------------------------------------------------------------


def write_atomic(
    path: Path,
    data: bytes | memoryview,
    hold: Callable[[int], bool] | None = None,
    on_full: Callable[[], bool] | None = None,
) -> None:
    """Write data to path atomically. `hold(fd)` is called on each new temporary file (False:
    it was swept away meanwhile, make another). When the disk is full (ENOSPC, a quota) and
    `on_full()` frees room (returns True), the write is tried once more. Raises OSError."""
    try:
        _write_once(path, data, hold)
    except OSError as err:
        if err.errno not in DISK_FULL or on_full is None or not on_full():
            raise
        _write_once(path, data, hold)


def _write_once(path: Path, data: bytes | memoryview, hold: Callable[[int], bool] | None) -> None:
    for _ in range(3):
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
        if hold is None or hold(fd):  # held: from now on no sweep deletes it
            break
        os.close(fd)  # a sweep deleted it before it was held: make another
    else:
        raise OSError(errno.EAGAIN, "temporary files kept being removed", str(path.parent))
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
            os.replace(tmp, path)
        finally:
            os.close(fd)  # a lock taken by `hold` is released only now, after the rename
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # the rename itself survives a power cut too
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _write_all(fd: int, data: bytes | memoryview) -> None:
    """Reserve the space first (a full disk fails here, before a byte is written), then write."""
    view = memoryview(data).cast("B")
    if view.nbytes and hasattr(os, "posix_fallocate"):
        try:
            os.posix_fallocate(fd, 0, view.nbytes)
        except OSError as err:
            if err.errno in (*DISK_FULL, errno.EFBIG):
                raise
            # EOPNOTSUPP, EINVAL: a file system that cannot reserve; the writes will tell
    while view.nbytes:
        written = os.write(fd, view[:CHUNK])
        view = view[written:]


def write_json(path: Path, fmt: str, version: int, key: str, fields: dict[str, Any]) -> None:
    """A JSON file in the record envelope (format, version, key, the fields, record_sha256),
    written atomically."""
    record = envelope(fmt, version, key, **fields)
    write_atomic(Path(path), (json.dumps(seal(record), indent=1) + "\n").encode())


def read_json(path: Path, max_bytes: int = 64 << 20) -> tuple[dict[str, Any], bool | None]:
    """(the fields of a JSON record, whether its checksum matches: None when it has none, as
    files written before the envelope). Raises OSError or ValueError for an unreadable file."""
    with open(path, "rb") as f:
        data = json.loads(f.read(max_bytes))
    if not isinstance(data, dict):
        raise ValueError(f"{Path(path).name} does not hold a JSON object")
    intact = None
    if SEAL in data:
        try:
            intact = verify(data)
        except NotPlain:
            intact = False
    return {k: v for k, v in data.items() if k != SEAL}, intact


# -- the record envelope ------------------------------------------------------------------------


def envelope(fmt: str, version: int, key: str, **fields: Any) -> dict[str, Any]:
    """A record's plain part: format, version, key, then the fields (made plain data)."""
    return plain({"format": fmt, "version": version, "key": key, **fields})


def seal(record: dict[str, Any], state: dict[str, torch.Tensor] | None = None) -> dict[str, Any]:
    """The payload to store: the record (with `weights_sha256` already among its fields when
    there are weights), the tensors, and `record_sha256` over the record."""
    payload = {**record, SEAL: record_digest(record)}
    if state is not None:
        payload[TENSORS] = state
    return payload


def verify(payload: dict[str, Any]) -> bool:
    """Whether a sealed payload's record_sha256 matches its record. Raises NotPlain for a
    record that is not plain data of a sane size."""
    return payload.get(SEAL) == digest_of(canonical(record_fields(payload)))


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state_dict's tensors, as stored."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def record_digest(record: dict[str, Any]) -> str:
    """SHA-256 over a canonical encoding of every field but the tensors and this checksum (the
    weights are covered through weights_sha256, which is one of the fields)."""
    return digest_of(canonical(record_fields(record)))


def record_fields(payload: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k not in (TENSORS, SEAL)}


def digest_of(canonical_bytes: bytes) -> str:
    return hashlib.sha256(b"aecore-record\n" + canonical_bytes).hexdigest()


def half_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors as float16; ValueError if one is beyond float16's range."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    if not all(v.isfinite().all() for v in state.values() if v.is_floating_point()):
        raise ValueError("a weight is beyond float16's range (65504); save with half=False")
    return state


def float_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Stored float16 weights back as float32: every model computes in float32."""
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def round_half_(model: torch.nn.Module) -> torch.nn.Module:
    """Round a model's parameters to float16 and back, in place: measure what a float16 file
    holds, not the float32 weights before saving."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())
    return model


def plain(value: Any) -> Any:
    """value with every float, int and str subclass (numpy scalars) as the built-in type, and
    tuples as lists: what is stored is then exactly what record_digest saw."""
    if value is None or type(value) in (bool, int, float, str):
        return value
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    raise TypeError(f"a record holds plain data only, not {type(value).__name__}")


def canonical(value: Any) -> bytes:
    """A deterministic encoding of plain data (dict with str keys, list, tuple, str, int, float,
    bool, None), refusing anything else and anything over RECORD_NODES values or RECORD_DEPTH
    levels: a pickle can share one list many times over, which would otherwise unfold into
    billions of values here."""
    out: list[bytes] = []
    budget = [RECORD_NODES]
    try:
        _walk(value, 0, out, budget)
    except (RecursionError, ValueError) as err:
        raise NotPlain(str(err)) from None
    return b"".join(out)


def _walk(v: Any, depth: int, out: list[bytes], budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0 or depth > RECORD_DEPTH:
        raise NotPlain("too many values, or nested too deeply")
    if v is None:
        out.append(b"n")
    elif isinstance(v, bool):
        out.append(b"T" if v else b"F")
    elif isinstance(v, int):
        out.append(b"i%s;" % str(v).encode())  # ValueError beyond 4,300 digits
    elif isinstance(v, float):
        out.append(b"f%s;" % repr(float(v)).encode())
    elif isinstance(v, str):
        data = v.encode("utf-8", "surrogatepass")
        out.append(b"s%d:%s" % (len(data), data))
    elif isinstance(v, list | tuple):
        out.append(b"l%d[" % len(v))
        for item in v:
            _walk(item, depth + 1, out, budget)
        out.append(b"]")
    elif isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise NotPlain("a mapping with keys that are not strings")
        out.append(b"d%d{" % len(v))
        for k in sorted(v):
            _walk(k, depth + 1, out, budget)
            _walk(v[k], depth + 1, out, budget)
        out.append(b"}")
    else:
        raise NotPlain(f"a value of type {type(v).__name__}")
