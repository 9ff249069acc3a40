"""Checkpoints: a state_dict plus plain data (config, history, metrics), never a pickle of code.

Written atomically (a temporary file in the same folder, then os.replace), so a crash mid-write
never leaves a file that loads; read with torch.load(weights_only=True), so a crafted file cannot
run code; and checked against its own config key, so a renamed or edited file is refused.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from aecore.config import TrainConfig
from aecore.models import Autoencoder, build_model
from aecore.train import EpochStats

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


def checkpoint_name(cfg: TrainConfig) -> str:
    return f"{cfg.model}-{cfg.dataset}-{cfg.key()}.pt"


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


def load_checkpoint(path: Path | str, device: torch.device | str = "cpu") -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
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
        history = [EpochStats(**h) for h in payload["history"]]
    except CheckpointError:
        raise
    except Exception as err:  # a wrong shape, a missing key, a bad config: all mean "corrupt"
        raise CheckpointError(f"{path.name} does not match its config ({err})") from err
    model.to(device).eval()
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
