"""What every experiment shares: where figures go, how a config is trained or loaded, tables.

An experiment is a plain function `(ctx: Context) -> Section`. It trains (or loads) through
ctx.fit, so a config that matches a bundled checkpoint or an earlier run is loaded, not trained
again, and regenerating the document is cheap.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aecore.best_classical import BestClassical, best_classical
from aecore.checkpoints import Checkpoint
from aecore.config import TrainConfig
from aecore.data import ImageDataset
from aecore.history import EpochStats
from aecore.pretrain import read_manifest
from aecore.runs import load_or_train

QUICK_TRAIN = 2000  # --quick: training images per run
QUICK_TEST = 500  # --quick: test images per evaluation


@dataclass
class Section:
    number: int
    title: str
    body: str  # markdown, figures linked as figures/<name>.png
    headline: str = ""  # one line for the summary at the top of the document
    seconds: float = 0.0
    # the day it was run (UTC): --only keeps the other sections, so the header names each day
    date: str = field(default_factory=lambda: time.strftime("%Y-%m-%d", time.gmtime()))


@dataclass
class Context:
    out: Path  # the folder that receives RESULTS.md and figures/
    quick: bool = False
    on_epoch: Callable[[EpochStats], None] = lambda stats: None
    device: str = "cpu"
    used: list[tuple[str, str]] = field(default_factory=list)  # (checkpoint, where it came from)

    def __post_init__(self) -> None:
        (self.out / "figures").mkdir(parents=True, exist_ok=True)
        _, entries = read_manifest()
        self.bundled_configs = {e.name: e.config for e in entries}

    @property
    def test_limit(self) -> int | None:
        """Test images per evaluation: all of them, or QUICK_TEST in a quick run."""
        return QUICK_TEST if self.quick else None

    def bundled(self, name: str) -> TrainConfig:
        """The config of a bundled checkpoint, by its manifest name."""
        return self.bundled_configs[name]

    def fit(self, cfg: TrainConfig) -> Checkpoint:
        """Load cfg's checkpoint (runs folder, then bundled) or train and save it. A quick run
        trains on QUICK_TRAIN images for one epoch instead."""
        if self.quick:
            cfg = dataclasses.replace(cfg, epochs=1, limit_train=QUICK_TRAIN)
        ckpt, cached = load_or_train(cfg, device=self.device, on_epoch=self.on_epoch)
        path = Path(ckpt.info["path"])
        self.used.append((path.name, "trained" if not cached else path.parent.name))
        return ckpt

    def figure(self, name: str) -> Path:
        return self.out / "figures" / name

    def best(self, ds: ImageDataset, corruption: str, level: float) -> BestClassical:
        """The best tuned classical method for a task, scored on the same test images as the
        models (aecore.best_classical; cached in the runs folder, so a rerun reads it back)."""
        found = best_classical(ds, corruption, level, limit=self.test_limit)
        if found is None:
            raise ValueError(f"{corruption} has no level, so no classical method to compare")
        return found


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(header: list[str], rows: list[list[object]]) -> str:
    """A markdown table; numbers are expected to be formatted already."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def winners(levels: Sequence[float], best: Sequence[BestClassical], name: str = "p") -> str:
    """Which tuned classical method won at which level, each label once:
    "Adaptive median (max_size 5) at p = 0.01, 0.05; Median filter (size 7) at p = 0.9"."""
    groups: dict[str, list[str]] = {}
    for level, b in zip(levels, best, strict=True):
        groups.setdefault(b.label, []).append(f"{level:g}")
    return "; ".join(f"{label} at {name} = {', '.join(ls)}" for label, ls in groups.items())


def image(name: str, alt: str) -> str:
    return f"![{alt}](figures/{name})"


def minutes(ckpt: Checkpoint) -> str:
    """Training time recorded in a checkpoint, e.g. "3.2 min"."""
    return f"{ckpt.info.get('train_seconds', 0.0) / 60:.1f} min"
