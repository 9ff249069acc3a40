"""Watch a run learn: snapshots of what the model makes of 8 fixed test images while it trains.

A Watcher lives inside aecore.train.train. It takes a Snapshot (the 8 reconstructions as uint8,
and for a 2-unit code the codes of CODE_POINTS fixed test images as float16; a VAE gives its
mean) at the start, after the batches 1, 2, 4, ..., 256 (reconstructions form fastest early on),
about every INTERVAL_S seconds of wall time, at each epoch end, and whenever the run is paused.
Every snapshot is published live (Hooks.publish); at most MAX_KEPT of the others are kept for
the finished run, thinned evenly by training step, so a checkpoint stays small.

A snapshot never changes training: it draws from none of the run's generators, runs in eval
mode without gradients (BatchNorm's running statistics stay as they are) and puts the model
back in train mode. The per-batch losses stay on the device in a preallocated tensor that the
loop writes without a host sync; they are read only when a snapshot is taken.

The job runner talks to a running train() through Hooks, set for the current thread with
`hooked(...)`: the training function's signature (and every runner between) stays as it is.
"""

from __future__ import annotations

import base64
import math
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from aecore.config import TrainConfig
from aecore.corruptions import corrupt
from aecore.data import ImageDataset, to_float
from aecore.models import Autoencoder
from aecore.models.base import count_params

WATCH_IMAGES = 8  # the first test image of each of 8 classes
CODE_POINTS = 300  # test images whose 2-D codes are drawn (the first ones of the test set)
INTERVAL_S = 2.0  # a live snapshot about this often
LANDMARK_MAX = 256  # batches 1, 2, 4, ..., 256 are always kept: the first shapes appear there
MAX_KEPT = 24  # other snapshots kept for a finished run (thinned evenly by step)
MAX_LOSS_POINTS = 2000  # the per-batch loss curve is stored as means of blocks of batches
WATCH_SEED = 20242  # corrupts the 8 images, once, the same way for every run of a task
# Single step (one batch, while paused) is offered for models of at most this many parameters:
# one batch of such a model takes milliseconds on a CPU, so a click shows its effect at once;
# dense and small conv models on MNIST are under it, deep MLPs and U-Nets are not.
STEP_MAX_PARAMS = 250_000
RECORD_VERSION = 1


@dataclass(frozen=True)
class Snapshot:
    """The model at one moment of training."""

    step: int  # batches done (0: before the first)
    epoch: float  # epochs done, fractional
    seconds: float  # wall time since training began (pauses included)
    recon: np.ndarray  # uint8 (WATCH_IMAGES, C, H, W): reconstructions of Watch.noisy
    codes: np.ndarray | None  # float16 (n, 2): codes of the code images (2-unit codes only)


@dataclass(frozen=True)
class Watch:
    """Everything needed to draw a run's snapshots; immutable (arrays are read-only)."""

    clean: np.ndarray  # uint8 (WATCH_IMAGES, C, H, W)
    noisy: np.ndarray  # uint8, the same corrupted once with WATCH_SEED
    labels: tuple[int, ...]  # of the WATCH_IMAGES images
    code_labels: np.ndarray | None  # uint8 (n,): classes of the code images, for colours
    classes: tuple[str, ...]
    steps_per_epoch: int
    total_steps: int
    loss_every: int  # each point of `losses` is the mean loss of this many batches
    losses: np.ndarray  # float32 block means up to latest.step (the last block may be partial)
    snapshots: tuple[Snapshot, ...]  # kept for scrubbing, by step
    latest: Snapshot  # the newest snapshot (kept or not)
    params: int  # the model's trainable parameters (single step is for small models)

    @property
    def can_step(self) -> bool:
        return self.params <= STEP_MAX_PARAMS

    def losses_until(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """(x in epochs, mean loss) of the loss blocks that began before `step`."""
        n = min(len(self.losses), math.ceil(step / self.loss_every))
        ends = np.minimum((np.arange(n) + 1) * self.loss_every, step)
        return ends / self.steps_per_epoch, self.losses[:n]


# -- which images ------------------------------------------------------------------------------


def watch_indices(labels: torch.Tensor, n: int = WATCH_IMAGES) -> list[int]:
    """n test images, deterministic and varied: the first of each class (lowest classes first),
    then the second of each, and so on."""
    rank: dict[int, int] = {}
    keyed = []
    for i, label in enumerate(labels.tolist()):
        r = rank.get(label, 0)
        rank[label] = r + 1
        if r < n:
            keyed.append((r, label, i))
    return [i for *_, i in sorted(keyed)[:n]]


def _to_uint8(images: torch.Tensor) -> np.ndarray:
    array = (images.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
    array.flags.writeable = False
    return array


# -- recording ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Hooks:
    """How a job runner watches and steers a run on its thread (see hooked)."""

    publish: Callable[[Watch], None] = lambda watch: None
    paused: Callable[[], bool] = lambda: False


_local = threading.local()


@contextmanager
def hooked(hooks: Hooks) -> Iterator[None]:
    """Runs trained on this thread inside the block publish to `hooks`."""
    before = getattr(_local, "hooks", None)
    _local.hooks = hooks
    try:
        yield
    finally:
        _local.hooks = before


def current_hooks() -> Hooks:
    return getattr(_local, "hooks", None) or Hooks()


class Watcher:
    """Takes and keeps one run's snapshots. `losses` is the run's per-batch loss buffer on the
    device (total_steps long), written by the training loop."""

    def __init__(
        self,
        cfg: TrainConfig,
        ds: ImageDataset,
        model: Autoencoder,
        steps_per_epoch: int,
        hooks: Hooks | None = None,
    ) -> None:
        device = next(model.parameters()).device
        idx = watch_indices(ds.test_labels)
        clean = to_float(ds.test_images[idx])
        noisy = corrupt(cfg.corruption, clean, cfg.level, torch.Generator().manual_seed(WATCH_SEED))
        self.model, self.hooks = model, hooks or current_hooks()
        self.noisy = noisy.to(device)
        self.code_images = None
        code_labels = None
        if cfg.latent == 2:
            self.code_images = to_float(ds.test_images[:CODE_POINTS]).to(device)
            code_labels = ds.test_labels[:CODE_POINTS].to(torch.uint8).numpy()
        total = steps_per_epoch * cfg.epochs
        self.losses = torch.full((total,), float("nan"), device=device)
        self._host = np.full(total, np.nan, dtype=np.float32)
        self._read = 0  # losses copied to _host so far
        self.base = Watch(
            clean=_to_uint8(clean),
            noisy=_to_uint8(noisy),
            labels=tuple(int(v) for v in ds.test_labels[idx]),
            code_labels=code_labels,
            classes=tuple(ds.classes),
            steps_per_epoch=steps_per_epoch,
            total_steps=total,
            loss_every=max(1, math.ceil(total / MAX_LOSS_POINTS)),
            losses=np.zeros(0, np.float32),
            snapshots=(),
            latest=None,  # type: ignore[arg-type]  # set by the first take()
            params=count_params(model),
        )
        self.kept: list[Snapshot] = []
        self.gap = 1  # kept snapshots (beyond landmarks) are at least this many steps apart
        self._t0 = time.monotonic()
        self._last_time = -math.inf
        self._last_step = -1
        self.watch: Watch | None = None
        self.take(0, keep=True)

    def tick(self, step: int) -> None:
        """Called before each batch with the number of batches done; takes a snapshot when one
        is due: a landmark, INTERVAL_S since the last, or the run is paused."""
        if step == self._last_step:
            return
        landmark = step <= LANDMARK_MAX and step & (step - 1) == 0
        if landmark or time.monotonic() - self._last_time >= INTERVAL_S or self.hooks.paused():
            self.take(step, keep=landmark or None)

    def take(self, step: int, keep: bool | None = None) -> Watch:
        """Snapshot the model after `step` batches and publish it. keep=True always keeps it,
        None keeps it if it is far enough from the last kept one, False never."""
        snap = self._snapshot(step)
        self._last_time, self._last_step = time.monotonic(), step
        if keep or (keep is None and self._far_enough(step)):
            self._keep(snap, protected=bool(keep) and step <= LANDMARK_MAX)
        self.watch = replace(
            self.base,
            losses=self._loss_points(step),
            snapshots=tuple(s for s, _ in self.kept),
            latest=snap,
        )
        self.hooks.publish(self.watch)
        return self.watch

    def _far_enough(self, step: int) -> bool:
        thinnable = [s.step for s, protected in self.kept if not protected]
        return not thinnable or step - thinnable[-1] >= self.gap

    def _keep(self, snap: Snapshot, protected: bool) -> None:
        self.kept = [(s, p) for s, p in self.kept if s.step != snap.step] + [(snap, protected)]
        others = [(s, p) for s, p in self.kept if not p]
        if len(others) > MAX_KEPT:
            # Every other one goes (the newest stays), and later ones must be twice as far apart.
            drop = {id(s) for s, _ in others[-2::-2]}
            self.kept = [(s, p) for s, p in self.kept if id(s) not in drop]
            self.gap *= 2

    def _snapshot(self, step: int) -> Snapshot:
        model = self.model
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                recon = model.reconstruct(self.noisy)
                codes = None
                if self.code_images is not None:
                    z = model.encode(self.code_images).flatten(1)
                    codes = z.half().cpu().numpy() if z.shape[1] == 2 else None
        finally:
            model.train(was_training)
        if codes is not None:
            codes.flags.writeable = False
        seconds = time.monotonic() - self._t0
        epoch = step / self.base.steps_per_epoch
        return Snapshot(step, epoch, seconds, _to_uint8(recon), codes)

    def _loss_points(self, step: int) -> np.ndarray:
        """Block means of the per-batch losses of batches 0..step-1; reads only the new ones."""
        if step > self._read:
            self._host[self._read : step] = self.losses[self._read : step].cpu().numpy()
            self._read = step
        every, done = self.base.loss_every, self._host[:step]
        whole = step // every * every
        points = done[:whole].reshape(-1, every).mean(axis=1)
        if whole < step:  # the block under way
            points = np.append(points, done[whole:].mean()).astype(np.float32)
        points.flags.writeable = False
        return points


# -- the model carries its snapshots -----------------------------------------------------------

_ATTRIBUTE = "_aecore_watch"


def attach(model: torch.nn.Module, watch: Watch | None) -> None:
    """Keep `watch` with the model, so every path that saves or serves the model (runs,
    pretrain, downloads, the job runner) carries the snapshots without a new argument."""
    object.__setattr__(model, _ATTRIBUTE, watch)


def attached(model: torch.nn.Module) -> Watch | None:
    return getattr(model, _ATTRIBUTE, None)


def finished(watch: Watch) -> Watch:
    """The stored form: the kept snapshots and the newest one, by step."""
    kept = {s.step: s for s in watch.snapshots} | {watch.latest.step: watch.latest}
    return replace(watch, snapshots=tuple(kept[k] for k in sorted(kept)))


# -- plain-data record (inside the checkpoint's checksummed envelope) --------------------------

MAX_SIDE = 64  # of a stored image
MAX_RECORD_SNAPSHOTS = 2 * (MAX_KEPT + 12)


def _pack(array: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.ascontiguousarray(array).tobytes(), 6)).decode()


def _unpack(text: Any, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    """A packed array of exactly `shape`; ValueError for anything else (no zip bombs: inflating
    stops past the expected size)."""
    if not isinstance(text, str):
        raise ValueError("a packed array must be a string")
    size = math.prod(shape) * np.dtype(dtype).itemsize
    inflater = zlib.decompressobj()
    data = inflater.decompress(base64.b64decode(text, validate=True), size + 1)
    if len(data) != size or inflater.unconsumed_tail or not inflater.eof:
        raise ValueError(f"a packed array of {len(data)} bytes, not {size}")
    array = np.frombuffer(data, dtype=dtype).reshape(shape)
    array.flags.writeable = False
    return array


def to_record(watch: Watch) -> dict[str, Any]:
    """Plain data (strings, numbers, lists) for a checkpoint record."""
    watch = finished(watch)
    return {
        "version": RECORD_VERSION,
        "shape": list(watch.clean.shape),
        "clean": _pack(watch.clean),
        "noisy": _pack(watch.noisy),
        "labels": list(watch.labels),
        "code_labels": None if watch.code_labels is None else _pack(watch.code_labels),
        "code_points": 0 if watch.code_labels is None else len(watch.code_labels),
        "classes": list(watch.classes),
        "steps_per_epoch": watch.steps_per_epoch,
        "total_steps": watch.total_steps,
        "loss_every": watch.loss_every,
        "loss_points": len(watch.losses),
        "losses": _pack(watch.losses.astype(np.float32)),
        "params": watch.params,
        "snapshots": [_snapshot_record(s) for s in watch.snapshots],
    }


def _snapshot_record(snap: Snapshot) -> dict[str, Any]:
    return {
        "step": snap.step,
        "epoch": snap.epoch,
        "seconds": snap.seconds,
        "recon": _pack(snap.recon),
        "codes": None if snap.codes is None else _pack(snap.codes),
    }


def _count(record: dict[str, Any], name: str, high: int) -> int:
    value = record[name]
    if type(value) is not int or not 0 <= value <= high:
        raise ValueError(f"{name} = {str(value)[:20]} is out of range")
    return value


def from_record(record: Any) -> Watch:
    """The Watch a record holds; ValueError (or KeyError, TypeError) if it is malformed."""
    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        raise ValueError("not a watch record of a version this app reads")
    shape = tuple(record["shape"])
    if len(shape) != 4 or shape[0] != WATCH_IMAGES or not all(type(v) is int for v in shape):
        raise ValueError(f"watch images of shape {str(shape)[:40]}")
    if not (shape[1] in (1, 3) and 0 < shape[2] <= MAX_SIDE and 0 < shape[3] <= MAX_SIDE):
        raise ValueError(f"watch images of shape {shape}")
    n_codes = _count(record, "code_points", CODE_POINTS)
    n_loss = _count(record, "loss_points", MAX_LOSS_POINTS + 1)
    snaps = record["snapshots"]
    if not isinstance(snaps, list) or not 0 < len(snaps) <= MAX_RECORD_SNAPSHOTS:
        raise ValueError("a watch record without snapshots, or with too many")
    kept = tuple(_snapshot_from(s, shape, n_codes) for s in snaps)
    return Watch(
        clean=_unpack(record["clean"], np.uint8, shape),
        noisy=_unpack(record["noisy"], np.uint8, shape),
        labels=tuple(int(v) for v in record["labels"]),
        code_labels=_unpack(record["code_labels"], np.uint8, (n_codes,)) if n_codes else None,
        classes=tuple(str(c) for c in record["classes"]),
        steps_per_epoch=_count(record, "steps_per_epoch", 1 << 40) or 1,
        total_steps=_count(record, "total_steps", 1 << 40),
        loss_every=_count(record, "loss_every", 1 << 40) or 1,
        losses=_unpack(record["losses"], np.float32, (n_loss,)),
        snapshots=kept,
        latest=kept[-1],
        params=_count(record, "params", 1 << 40),
    )


def _snapshot_from(item: Any, shape: tuple[int, ...], n_codes: int) -> Snapshot:
    if not isinstance(item, dict):
        raise ValueError("a snapshot must be a mapping")
    codes = item["codes"]
    return Snapshot(
        step=_count(item, "step", 1 << 40),
        epoch=float(item["epoch"]),
        seconds=float(item["seconds"]),
        recon=_unpack(item["recon"], np.uint8, shape),
        codes=None if codes is None else _unpack(codes, np.float16, (n_codes, 2)),
    )
