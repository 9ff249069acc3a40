"""The training loop: one function, one progress callback, one stop flag.

The whole dataset sits on the device as one float tensor; each batch is an index into it, and its
corruption is drawn fresh, on the device, every time (denoising: corrupted in, clean as target).
A fixed tenth of the training images is held out for validation.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from aecore import allocator, cudagraph
from aecore.config import TrainConfig
from aecore.corruptions import CORRUPTIONS, corrupt, corrupt_for_training
from aecore.data import ImageDataset, load_dataset, select_classes, to_float
from aecore.history import EpochStats
from aecore.losses import batch_terms, has_conv, inference_batch
from aecore.metrics import psnr
from aecore.models import Autoencoder, build_model
from aecore.watch import Watch, Watcher, attach

VAL_FRACTION = 0.1
# Validation images at most: 2,000 give a steady curve, and every image held out is one fewer to
# learn from (5,000 of MNIST's 60,000 cost the VAE ~0.3 nats of test loss after 10 epochs).
VAL_MAX = 2000
SPLIT_SEED = 20240  # the train/validation split is the same for every config, so curves compare
# Batches gathered from the shuffled images at once: one large index copy runs faster than one per
# batch on a CPU (about 8% of a JANet epoch), and 32 batches of MNIST are only 13 MB.
GATHER_BATCHES = 32


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the message says what to change."""


@dataclass
class RunResult:
    config: TrainConfig
    model: Autoencoder
    history: list[EpochStats] = field(default_factory=list)
    cancelled: bool = False
    device: str = "cpu"
    eager_reason: str | None = None  # why the step was not graph-captured (None: it was)
    watch: Watch | None = None  # the snapshots (aecore.watch), also attached to the model

    @property
    def sec_per_epoch(self) -> float:
        return sum(h.seconds for h in self.history) / max(1, len(self.history))


def pick_device() -> torch.device:
    """CUDA, else Apple's MPS, else the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bf16(device: torch.device | str) -> bool:
    """Whether bfloat16 matrix products run in hardware on `device` (precision "bf16" is faster
    there): a CUDA GPU that has them, or a CPU with AVX-512 BF16 or AMX as Linux lists its
    flags. Elsewhere they are emulated and bf16 trains slower than fp32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def split_indices(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(train, validation) index tensors over the training set; the same for every config."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_val = min(VAL_MAX, max(1, int(n * VAL_FRACTION)))
    return order[n_val:], order[:n_val]


# torch.manual_seed + module construction must not interleave between threads: the job runner
# builds models in parallel, and construction draws from the global generator.
_init_lock = threading.Lock()


def init_model(cfg: TrainConfig, shape: tuple[int, int, int], device: torch.device):
    with _init_lock:
        torch.manual_seed(cfg.seed)
        model = build_model(cfg, shape)
    return model.to(device)


def make_optimizer(cfg: TrainConfig, model: Autoencoder) -> torch.optim.Optimizer:
    if cfg.optimizer == "adadelta":
        return torch.optim.Adadelta(model.parameters(), lr=cfg.lr)
    # The fused kernel updates all parameters in one pass: the same algorithm, and on a CPU
    # it cuts the optimizer step of vae_mlp from ~4 ms to ~1.5 ms per batch.
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=fused)


def step_autocast(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """The arithmetic of one training step's forward pass (backward follows it): for precision
    "bf16", matrix products and convolutions in bfloat16; the losses cast their inputs back to
    float32. Entered once per step and without autocast's weight cache: a cache kept open
    across steps would hand every step the first step's bfloat16 weights (and a CUDA graph
    needs it off)."""
    if cfg.precision != "bf16":
        return contextlib.nullcontext()  # float32: not even a disabled autocast (4 us a step)
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def augment(images: torch.Tensor, generator: torch.Generator, max_degrees: float = 15.0):
    """Random horizontal flips and rotations of up to +-max_degrees, per image, batched."""
    n = images.shape[0]
    dev = images.device
    flip = torch.rand(n, generator=generator, device=dev) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    angle = (torch.rand(n, generator=generator, device=dev) * 2 - 1) * math.radians(max_degrees)
    cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, padding_mode="border", align_corners=False)


def batch_level(cfg: TrainConfig, generator: torch.Generator) -> float:
    """The corruption level of one training batch: cfg.level, or a draw from U(0, cfg.level)."""
    if cfg.level_sampling == "fixed":
        return cfg.level
    level = float(torch.rand((), generator=generator)) * cfg.level
    # Integer levels (rows, block side) are rounded, so 0 and the top level get half weight.
    return float(round(level)) if CORRUPTIONS[cfg.corruption].meta.get("integer") else level


def _mean_terms(sums: dict[str, torch.Tensor], count: int) -> dict[str, float]:
    return {k: float(v) / count for k, v in sums.items()}


def validate(model: Autoencoder, clean: torch.Tensor, cfg: TrainConfig, batch: int | None = None):
    """Loss terms and PSNR on corrupted validation images, drawn with a fixed seed; `batch`
    images per pass (None: inference_batch's choice)."""
    batch = batch or inference_batch(model, clean.device)
    model.eval()
    gen = torch.Generator(clean.device).manual_seed(cfg.seed + 1)
    noise = torch.Generator(clean.device).manual_seed(cfg.seed + 2)  # inside the loss (VAE)
    sums: dict[str, torch.Tensor] = {}
    psnr_sum = torch.zeros((), device=clean.device)
    for i in range(0, len(clean), batch):
        target = clean[i : i + batch]
        noisy = corrupt(cfg.corruption, target, cfg.level, gen)
        for k, v in batch_terms(model, noisy, target, cfg.loss, noise).items():
            sums[k] = sums.get(k, 0) + v * len(target)
        with torch.no_grad():
            psnr_sum += psnr(model.reconstruct(noisy), target).sum()
    model.train()
    terms = _mean_terms(sums, len(clean))
    terms["psnr_db"] = float(psnr_sum) / len(clean)
    return terms


@allocator.training()  # the heap keeps freed memory for the next step meanwhile
def train(
    cfg: TrainConfig,
    on_epoch: Callable[[EpochStats], None] = lambda stats: None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[float], None] = lambda fraction: None,
    device: torch.device | str | None = None,
    dataset: ImageDataset | None = None,
    snapshots: bool = True,
) -> RunResult:
    """Train `cfg` and return the model with its per-epoch history.

    on_batch gets the fraction of the whole run done; should_stop is checked every batch and a
    stopped run comes back with cancelled=True. Same seed on the same device, same numbers.
    snapshots=True records what the model makes of fixed test images as it learns
    (aecore.watch; published live to the hooks set on this thread); it never changes the result.
    """
    device = torch.device(device) if device is not None else pick_device()
    ds = select_classes(dataset if dataset is not None else load_dataset(cfg.dataset), cfg.classes)
    model, train_x, val_x = _prepare(cfg, ds, device)
    gens = _Generators(cfg, device)
    # On CUDA the whole step replays as one captured graph where it can (aecore.cudagraph).
    graph, eager_reason = cudagraph.graph_step(cfg, model, train_x, gens.noise)
    opt = graph.opt if graph else make_optimizer(cfg, model)
    result = RunResult(cfg, model, device=str(device), eager_reason=eager_reason)
    steps = math.ceil(len(train_x) / cfg.batch_size)
    watcher = Watcher(cfg, ds, model, steps) if snapshots else None
    # Per-batch losses stay on the device: written every batch, read only by a snapshot.
    losses = watcher.losses if watcher else torch.empty(steps * cfg.epochs, device=device)
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        progress = lambda done, e=epoch: on_batch((e - 1 + done) / cfg.epochs)  # noqa: E731
        base = (epoch - 1) * steps
        tick = (lambda s, b=base: watcher.tick(b + s)) if watcher else (lambda s: None)
        batch_losses = losses[base : base + steps]
        if graph:
            order = torch.randperm(len(train_x), generator=gens.shuffle).to(device)
            train_terms = graph.epoch(order, should_stop, progress, batch_losses, tick)
        else:
            train_terms = _train_epoch(
                model, opt, train_x, cfg, gens, should_stop, progress, batch_losses, tick
            )
        if train_terms is None:
            result.cancelled = True
            return result
        if not math.isfinite(train_terms["loss"]):
            raise TrainingDiverged(
                f"the loss became {train_terms['loss']} in epoch {epoch}: lower the learning rate "
                f"(now {cfg.lr:g}) or the regulariser weight"
            )
        seconds = time.perf_counter() - t0
        if watcher:  # not timed: the epoch's seconds are the training's own
            watcher.take(base + steps, keep=True if epoch == cfg.epochs else None)
        stats = _epoch_stats(epoch, cfg, train_terms, validate(model, val_x, cfg), seconds)
        result.history.append(stats)
        on_epoch(stats)
    model.eval()
    result.model = model.to(memory_format=torch.contiguous_format)
    result.watch = watcher.watch if watcher else None
    attach(result.model, result.watch)
    return result


class _Generators:
    """The random streams of one run: shuffling, noise (on the device) and levels."""

    def __init__(self, cfg: TrainConfig, device: torch.device) -> None:
        self.shuffle = torch.Generator().manual_seed(cfg.seed)
        self.noise = torch.Generator(device).manual_seed(cfg.seed)
        # Its own CPU generator: drawing levels must not shift the noise of "fixed" runs.
        self.level = torch.Generator().manual_seed(cfg.seed + 3)


def _prepare(cfg: TrainConfig, ds: ImageDataset, device: torch.device):
    """(model, training images, validation images) on the device, in the fastest layout."""
    train_idx, val_idx = split_indices(len(ds.train_images))
    if cfg.limit_train:
        train_idx = train_idx[: cfg.limit_train]
    train_x = to_float(ds.train_images[train_idx]).to(device)
    val_x = to_float(ds.train_images[val_idx]).to(device)
    model = init_model(cfg, ds.shape, device)
    if device.type in ("cpu", "cuda") and has_conv(model):
        # Channels-last: oneDNN's convolutions run up to 2x faster on a CPU; on a GPU cuDNN then
        # needs no layout conversions and BatchNorm runs PyTorch's channels-last kernels, not
        # cuDNN's slow ones for few channels: conv_same 0.52 -> 0.37 s per MNIST epoch on an
        # H200 (bench/gpu_levers.py).
        model = model.to(memory_format=torch.channels_last)
        train_x = train_x.contiguous(memory_format=torch.channels_last)
    return model, train_x, val_x


def _gather_block(
    train_x: torch.Tensor, order: torch.Tensor, step: int, batch_size: int, out: torch.Tensor
) -> torch.Tensor:
    """The images of GATHER_BATCHES batches from `step` on, in shuffled order, written into
    `out` (GATHER_BATCHES batches long, reused all epoch, in train_x's memory format: without
    `out`, index_select returns channels-last images as NCHW). index_select copies whole images
    where indexing copies value by value, and a reused block spares the fresh pages of a new one:
    JANet's gathers took 16-22 ms an epoch against 36-75 on a 2-core CPU, a block of 4,096
    channels-last 3x32x32 images 3 ms against 27."""
    rows = order[step * batch_size : (step + GATHER_BATCHES) * batch_size]
    return torch.index_select(train_x, 0, rows, out=out[: len(rows)])


def _train_epoch(
    model: Autoencoder,
    opt: torch.optim.Optimizer,
    train_x: torch.Tensor,
    cfg: TrainConfig,
    gens: _Generators,
    should_stop: Callable[[], bool],
    progress: Callable[[float], None],
    losses: torch.Tensor,
    tick: Callable[[int], None] = lambda step: None,
) -> dict[str, float] | None:
    """One pass over the training images; the mean loss terms, or None when stopped.
    losses[step] gets each batch's loss (on the device); tick(step) runs before each batch."""
    model.train()
    n = len(train_x)
    steps = math.ceil(n / cfg.batch_size)
    sums: dict[str, torch.Tensor] = {}
    order = torch.randperm(n, generator=gens.shuffle).to(train_x.device)
    buffer = torch.empty_like(train_x[: GATHER_BATCHES * cfg.batch_size])  # channels-last too
    for step in range(steps):
        tick(step)  # a snapshot, when one is due (aecore.watch)
        if should_stop():
            return None
        if step % GATHER_BATCHES == 0:
            block = _gather_block(train_x, order, step, cfg.batch_size, buffer)
        start = (step % GATHER_BATCHES) * cfg.batch_size
        clean = block[start : start + cfg.batch_size]
        if cfg.augment:
            clean = augment(clean, gens.noise)
        noisy = corrupt_for_training(
            cfg.corruption, clean, batch_level(cfg, gens.level), gens.noise
        )
        with step_autocast(cfg, train_x.device):
            terms = model.loss_terms(noisy, clean, cfg.loss, gens.noise)
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        losses[step] = terms["loss"].detach()  # a device copy, no host sync
        # Sums stay on the device: a float() per batch would sync the GPU every step.
        for k, v in terms.items():
            sums[k] = sums.get(k, 0) + v.detach() * len(clean)
        progress((step + 1) / steps)
    return _mean_terms(sums, n)


def _epoch_stats(
    epoch: int, cfg: TrainConfig, train: dict[str, float], val: dict[str, float], seconds: float
) -> EpochStats:
    return EpochStats(
        epoch=epoch,
        epochs=cfg.epochs,
        train_loss=train["loss"],
        train_recon=train["recon"],
        val_loss=val["loss"],
        val_recon=val["recon"],
        val_psnr_db=val["psnr_db"],
        seconds=seconds,
        train_kl=train.get("kl"),
        val_kl=val.get("kl"),
        train_reg=train.get("reg"),
        val_reg=val.get("reg"),
    )
