"""Checkpoints: a state_dict plus plain data (config, history, metrics), never a pickle of code.

Written atomically (a temporary file in the same folder, then os.replace), so a crash mid-write
never leaves a file that loads; read with torch.load(weights_only=True), so a crafted file cannot
run code; checked against its own config key, so an edited file is refused, and against the key
the caller asked for, so a renamed one is too. The weights carry a SHA-256: torch.load does not
check the zip's CRCs, so a flipped bit in a tensor would otherwise load as a silently wrong model.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import re
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from aecore import runcache
from aecore.config import TrainConfig
from aecore.models import Autoencoder, build_model
from aecore.train import EpochStats

log = logging.getLogger(__name__)

FORMAT = "aecore-checkpoint"
VERSION = 1
BUNDLED_DIR = Path(__file__).resolve().parent.parent / "checkpoints"


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, or does not match its config."""


@dataclass
class Checkpoint:
    config: TrainConfig
    model: Autoencoder
    history: list[EpochStats] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # device, seconds, versions, created


def runs_dir() -> Path:
    """Where trained runs are saved: AECORE_RUNS_DIR, else ~/.cache/aecore/runs."""
    return Path(os.environ.get("AECORE_RUNS_DIR") or Path.home() / ".cache" / "aecore" / "runs")


# Registry names are snake_case and keys are hex, so a name can never hold a path separator or
# "..": checked anyway, because this string is joined to a folder.
_NAME = re.compile(r"[a-z0-9_]+-[a-z0-9_]+-[0-9a-f]{16}\.pt")


def checkpoint_name(cfg: TrainConfig) -> str:
    """<model>-<dataset>-<key>.pt: a plain file name, never a path."""
    name = f"{cfg.model}-{cfg.dataset}-{cfg.key()}.pt"
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a safe checkpoint file name: {name[:80]!r}")
    return name


def weights_digest(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of a state_dict's tensors, as stored."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


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
    bytes, for the bundled folder); load_checkpoint turns them back into float32."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
        if not all(v.isfinite().all() for v in state.values() if v.is_floating_point()):
            raise ValueError("a weight is beyond float16's range (65504); save with half=False")
    dtype = "float16" if half else "float32"
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "key": cfg.key(),
        "config": cfg.to_dict(),
        "state_dict": state,
        "weights_sha256": weights_digest(state),
        "history": [asdict(h) for h in history],
        "metrics": dict(metrics),
        "info": {
            "torch": str(torch.__version__),
            "created": time.time(),
            **(info or {}),
            "dtype": dtype,
        },
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(
    path: Path | str, device: torch.device | str = "cpu", key: str | None = None
) -> Checkpoint:
    """Load and check a checkpoint; with `key`, it must be the run of that config key. Any file
    that is not exactly what save_checkpoint wrote raises CheckpointError."""
    path = Path(path)
    try:
        is_file = path.is_file()
    except OSError as err:  # a name too long, a path through a file: nothing to load either way
        raise CheckpointError(f"no checkpoint at {str(path)[:200]} ({err.strerror})") from None
    if not is_file:
        raise CheckpointError(f"no checkpoint at {str(path)[:200]}")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:
        if "Weights only load failed" in str(err):  # the file holds more than tensors and data
            why = "it holds objects other than tensors and plain data; loading it could run code"
        else:
            why = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path.name} is not a readable checkpoint: {why}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path.name} is not an aecore checkpoint")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path.name} has format version {payload.get('version')!r}")
    if key is not None and payload.get("key") != key:
        raise CheckpointError(
            f"{path.name} holds the run {str(payload.get('key'))[:16]!r}, not {key!r} "
            "(renamed or copied over?)"
        )
    try:
        cfg = TrainConfig.from_dict(payload["config"])
        if cfg.key() != payload["key"]:
            raise CheckpointError(f"{path.name}: its config does not match its key")
        model = build_model(
            cfg.model, _shape(payload), cfg.latent, cfg.width, cfg.regularizer, cfg.reg_weight
        )
        # float16 weights (bundled files) compute in float32 like every other model.
        state = payload["state_dict"]
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
        )
        # Shapes are checked above; the checksum catches changed values (absent in older files).
        digest = payload.get("weights_sha256")
        if digest is not None and digest != weights_digest(state):
            raise CheckpointError(f"{path.name}: its weights do not match their checksum")
        history = [EpochStats(**h) for h in payload["history"]]
    except CheckpointError:
        raise
    except Exception as err:  # a wrong shape, a missing key, a bad config: all mean "corrupt"
        raise CheckpointError(f"{path.name} does not match its config ({err})") from err
    model.to(device).eval()
    runcache.touch(path)  # recently used: the runs folder evicts least recently used first
    return Checkpoint(cfg, model, history, dict(payload["metrics"]), dict(payload["info"]))


def _shape(payload: dict[str, Any]) -> tuple[int, int, int]:
    from aecore.data import DATASETS

    return tuple(
        payload["info"].get("shape") or DATASETS[payload["config"]["dataset"]].meta["shape"]
    )


def find_checkpoint(cfg: TrainConfig, dirs: list[Path] | None = None) -> Path | None:
    """The first existing checkpoint for cfg: the runs folder, then the bundled one."""
    for folder in dirs if dirs is not None else [runs_dir(), BUNDLED_DIR]:
        path = folder / checkpoint_name(cfg)
        if path.is_file():
            return path
    return None


def load_for(cfg: TrainConfig, device: torch.device | str = "cpu") -> Checkpoint | None:
    """The saved run of cfg (runs folder, then bundled), or None if none loads.

    A file that fails its checks is never returned: it is logged, and in the runs folder moved
    aside to <name>.bad (kept for inspection, not read again, evicted first), so the run counts
    as not trained and is trained again. Bundled files are only skipped: they ship with the code.
    """
    for folder in [runs_dir(), BUNDLED_DIR]:
        path = folder / checkpoint_name(cfg)
        try:
            before = path.stat()
        except OSError:
            continue
        try:
            ckpt = load_checkpoint(path, device, key=cfg.key())
        except CheckpointError as err:
            bundled = folder == BUNDLED_DIR
            log.warning(
                "ignoring checkpoint %s: %s%s", path, err, "" if bundled else "; moving it aside"
            )
            if not bundled:
                quarantine(path, before)
            continue
        ckpt.info["path"] = str(path)
        return ckpt
    return None


def quarantine(path: Path, seen: os.stat_result) -> None:
    """Rename a bad file to <name>.bad, unless it was replaced since it was read (a run that
    finished meanwhile wrote a good one over it)."""
    with contextlib.suppress(OSError):  # gone already, or a read-only folder: skipped anyway
        now = path.stat()
        if (now.st_ino, now.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns):
            os.replace(path, path.with_name(path.name + runcache.BAD_SUFFIX))
