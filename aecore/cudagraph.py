"""Graph-captured training on CUDA: the whole step of a batch recorded once as a CUDA graph and
replayed for every batch.

An MNIST-sized step is a few dozen small kernels; launched one by one from Python, the GPU waits
for the CPU most of the time. Captured, a step is one launch: forward, backward, the optimizer
(Adam, fused and capturable: its step count lives on the device; over one flat buffer of the
parameters, see ADAM_SHARDS), the batch's corruption level
(when sampled), its augmentation and its noise (drawn on the device from the run's own generator,
registered with the graph so each replay draws fresh numbers), and the per-epoch loss sums (added
into device tensors). The host only copies the batch's indices into the graph's index buffer,
checks the cancel flag and reports progress: nothing per step waits for the GPU; the sums are
read once per epoch.

A graph may hold several consecutive steps (`steps_per_replay`, K): one replay then trains K
batches, so the host's work per replay (the index copy, the loss copy, the callbacks and the
replay's own launch) is paid once per K batches. `replay_plan` says which steps an epoch replays
with which graph: full chunks of K batches, the remaining full batches one at a time, and a smaller
last batch with a graph of its own. The steps inside a graph draw their noise in the same order as
K single replays, so a run's numbers do not depend on K.

`capture_reason(cfg, model, device)` says why a run cannot be captured (None: it can); those
runs train eagerly (aecore.train). A last batch smaller than the others gets a graph of its own.

Rules followed (PyTorch's CUDA graphs notes, "whole network capture"): warm-up steps on a side
stream before capturing (the library picks its kernels and the optimizer makes its state), then
model, optimizer and generator restored, so the warm-up leaves no trace in the results; the
gradients (views of one flat buffer) are zeroed in place inside the graph, so their memory stays
where the optimizer's captured step reads it; captures are one at a time per process, in
"thread_local" mode so that other threads' runs (the job manager) may allocate meanwhile.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

import torch

from aecore.config import TrainConfig
from aecore.corruptions import CORRUPTIONS, corrupt_for_training, training_sampler
from aecore.models import Autoencoder, needs_input_grad

log = logging.getLogger(__name__)

WARMUP_STEPS = 3
# Steps per replay by default. K > 1 only spreads the host's per-replay work over K batches (the
# results are the same), and the step is GPU-bound: on an H200 (bench/gpu_levers.py) K = 4 and 16
# gained 2-3% (JANet 0.089 -> 0.087 s per epoch), not worth skipping the watcher's first snapshots.
STEPS_PER_REPLAY = 1
# Adam's parameters as ADAM_SHARDS equal slices of one flat buffer (none shorter than
# ADAM_SHARD_MIN). Torch's fused Adam gives each 65,536-value chunk of a tensor one thread block:
# JANet-50's eight tensors (241,314 values) ran on ten blocks, 78 us per step on an H200, a third
# of the step's GPU time (bench/gpu_levers.py's profile). Its kernel takes up to 36 tensors per
# launch with four lists (PyTorch's MultiTensorApply.cuh), so 36 slices run as one launch of 36
# blocks, each a few thousand values long.
ADAM_SHARDS = 36
ADAM_SHARD_MIN = 1024
_capture_lock = threading.Lock()  # one capture at a time in a process (a CUDA graph rule)


def capture_reason(cfg: TrainConfig, model: Autoencoder, device: torch.device | str) -> str | None:
    """None when a run of cfg on device trains as a CUDA graph; else why it trains eagerly."""
    device = torch.device(device)
    if device.type != "cuda":
        return f"eager on {device.type}: CUDA graphs need a CUDA GPU"
    if cfg.optimizer != "adam":
        return f"eager: {cfg.optimizer} has no capturable fused step here (Adam has)"
    if needs_input_grad(model.regularizer):
        return "eager: the contractive penalty needs a second backward pass (create_graph)"
    if cfg.level_sampling != "fixed" and not level_in_graph(cfg.corruption):
        label = CORRUPTIONS[cfg.corruption].label
        return f"eager: {label} reads a sampled level on the host (a size, not a factor)"
    return None


@functools.cache
def level_in_graph(corruption: str) -> bool:
    """Whether the corruption takes its level as a device tensor without reading it on the host
    (a graph cannot): tried on the "meta" device, where any host read of a value fails."""
    images = torch.zeros((2, 1, 4, 4), device="meta")
    level = torch.zeros((), device="meta")
    try:
        out = training_sampler(corruption)(images, level, None)
    except (RuntimeError, NotImplementedError, TypeError):
        return False
    return isinstance(out, torch.Tensor) and out.shape == images.shape


def graph_step(
    cfg: TrainConfig,
    model: Autoencoder,
    train_x: torch.Tensor,
    noise: torch.Generator,
    steps_per_replay: int = STEPS_PER_REPLAY,
) -> tuple[GraphStep | None, str | None]:
    """(the captured step, None) when the run can be captured, else (None, why it trains
    eagerly). A capture that fails (an operation a graph cannot hold) is logged and reported as
    the reason; the model is left as it was, so the run goes on eagerly."""
    reason = capture_reason(cfg, model, train_x.device)
    if reason is not None:
        return None, reason
    try:
        return GraphStep(model, cfg, train_x, noise, steps_per_replay), None
    except RuntimeError as err:
        log.warning("CUDA graph capture of %s failed, training eagerly: %s", cfg.model, err)
        return None, f"eager: the capture failed ({str(err).splitlines()[0][:200]})"


def replay_plan(n: int, batch: int, k: int) -> list[tuple[int, int, int]]:
    """The replays of an epoch of n images in batches of `batch`, k steps per replay at most, as
    (first step, steps, batch size): the full chunks of k batches, then the remaining full batches
    one by one (a graph of k steps serves only whole chunks), then the smaller last batch."""
    if n < 0 or batch <= 0 or k <= 0:
        raise ValueError(f"replay_plan needs positive sizes, got n={n}, batch={batch}, k={k}")
    full, rest = divmod(n, batch)
    chunked = full - full % k
    plan = [(step, k, batch) for step in range(0, chunked, k)]
    plan += [(step, 1, batch) for step in range(chunked, full)]
    if rest:
        plan.append((full, 1, rest))
    return plan


def flat_parameters(model: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """Lay the model's parameters out in one flat buffer, in place: each parameter becomes a view
    of it (values, shape and memory layout kept) and its gradient a view of a second buffer of
    zeros, which backward then adds into. (parameters, gradients), both flat."""
    params = list(model.parameters())
    first = params[0]
    n = sum(p.numel() for p in params)
    flat = torch.empty(n, dtype=first.dtype, device=first.device)
    grad = torch.zeros_like(flat)
    offset = 0
    with torch.no_grad():
        for p in params:
            # A dense layout (contiguous or channels-last) fills exactly numel() slots; any other
            # (none of aecore's models has one) is made contiguous first.
            if not (p.is_contiguous() or p.is_contiguous(memory_format=torch.channels_last)):
                p.data = p.data.contiguous()
            view = flat.as_strided(p.shape, p.stride(), offset)
            view.copy_(p)
            p.data = view
            p.grad = grad.as_strided(p.shape, p.stride(), offset)
            offset += p.numel()
    return flat, grad


def adam_shards(flat: torch.Tensor, grad: torch.Tensor) -> list[torch.Tensor]:
    """Equal slices of the flat parameters, each with its gradient's slice, at most ADAM_SHARDS
    and at least ADAM_SHARD_MIN long: the tensors that graph_optimizer hands to Adam."""
    size = max(ADAM_SHARD_MIN, -(-len(flat) // ADAM_SHARDS))
    shards = []
    for start in range(0, len(flat), size):
        shard = flat[start : start + size].detach().requires_grad_()  # a leaf, sharing memory
        shard.grad = grad[start : start + size]
        shards.append(shard)
    return shards


def graph_optimizer(cfg: TrainConfig, shards: list[torch.Tensor]) -> torch.optim.Optimizer:
    """Adam with aecore.train's settings (fused), over the parameters' shards, its step count on
    the device (capturable) where the parameters are on a CUDA GPU."""
    capturable = shards[0].device.type == "cuda"
    return torch.optim.Adam(shards, lr=cfg.lr, fused=True, capturable=capturable)


_Captured = tuple[torch.cuda.CUDAGraph, torch.Tensor, torch.Tensor]


class GraphStep:
    """Training steps of (model, cfg) over train_x, captured as CUDA graphs: one per (steps per
    replay, batch size) that an epoch's replay_plan needs; `epoch` runs an epoch of them. The
    optimizer is `self.opt`."""

    def __init__(
        self,
        model: Autoencoder,
        cfg: TrainConfig,
        train_x: torch.Tensor,
        noise: torch.Generator,
        steps_per_replay: int = STEPS_PER_REPLAY,
    ) -> None:
        self.model, self.cfg, self.train_x, self.noise = model, cfg, train_x, noise
        self.steps_per_replay = steps_per_replay
        flat, self.grad = flat_parameters(model)
        self.opt = graph_optimizer(cfg, adam_shards(flat, self.grad))
        self.sums: dict[str, torch.Tensor] = {}
        # (steps, batch size): the graph, its index buffer (steps * size) and its steps' losses.
        self._graphs: dict[tuple[int, int], _Captured] = {}
        self._stream = torch.cuda.Stream(train_x.device)
        plan = replay_plan(len(train_x), cfg.batch_size, steps_per_replay)
        for steps, size in sorted({(steps, size) for _, steps, size in plan}, reverse=True):
            self._graphs[steps, size] = self._capture(steps, size)

    def _body(self, idx: torch.Tensor, generator: torch.Generator, loss: torch.Tensor) -> None:
        """The step itself, as eager training runs it (aecore.train._train_epoch); its loss is
        copied into `loss` (a device scalar)."""
        from aecore.train import augment, step_autocast  # here: aecore.train imports this module

        cfg = self.cfg
        self.grad.zero_()  # in place, one kernel: backward adds into it, Adam reads it
        clean = self.train_x[idx]
        if cfg.augment:
            clean = augment(clean, generator)
        noisy = _corrupt(cfg, clean, generator)
        with step_autocast(cfg, clean.device):
            terms = self.model.loss_terms(noisy, clean, cfg.loss, generator)
        terms["loss"].backward()
        self.opt.step()
        loss.copy_(terms["loss"].detach())
        for k, v in terms.items():
            if k not in self.sums:
                self.sums[k] = torch.zeros((), device=loss.device)
            self.sums[k].add_(v.detach() * len(idx))

    def _steps(self, idx: torch.Tensor, generator: torch.Generator, losses: torch.Tensor) -> None:
        """len(losses) consecutive steps, step j on the j-th slice of idx, its loss in losses[j]:
        the same operations, in the same order, as that many one-step replays."""
        size = len(idx) // len(losses)
        for j in range(len(losses)):
            self._body(idx[j * size : (j + 1) * size], generator, losses[j])

    def _capture(self, steps: int, size: int) -> _Captured:
        """(graph, index buffer, losses buffer) of `steps` steps of `size` images each."""
        device = self.train_x.device
        idx = torch.arange(steps * size, device=device)
        losses = torch.zeros(steps, device=device)
        with _capture_lock, _restored(self.model, self.opt):
            caller = torch.cuda.current_stream(device)
            self._stream.wait_stream(caller)
            scratch = torch.Generator(device).manual_seed(0)
            with torch.cuda.stream(self._stream):
                for _ in range(WARMUP_STEPS):  # one step warms up all: the same kernels
                    self._body(idx[:size], scratch, losses[0])
            caller.wait_stream(self._stream)
            graph = torch.cuda.CUDAGraph()
            graph.register_generator_state(self.noise)
            with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
                self._steps(idx, self.noise, losses)
        return graph, idx, losses

    def run(self, indices: torch.Tensor, steps: int = 1) -> torch.Tensor:
        """`steps` consecutive steps on the images train_x[indices] (steps batches of indices, on
        the device, in order); their losses, a device tensor that the next replay overwrites."""
        graph, idx, losses = self._graphs[steps, len(indices) // steps]
        idx.copy_(indices)
        graph.replay()
        return losses

    def epoch(
        self,
        order: torch.Tensor,
        should_stop: Callable[[], bool],
        progress: Callable[[float], None],
        losses: torch.Tensor,
        tick: Callable[[int], None] = lambda step: None,
    ) -> dict[str, float] | None:
        """One pass in `order` (a permutation on the device), as aecore.train._train_epoch: the
        mean loss terms (one sync), or None when should_stop() turned true. Checked, and tick(s)
        called, before each replay (s: the steps done), so with several steps per replay a
        snapshot falls on a replay's first step."""
        self.model.train()
        for v in self.sums.values():
            v.zero_()
        b, n = self.cfg.batch_size, len(order)
        total = -(-n // b)
        for start, steps, size in replay_plan(n, b, self.steps_per_replay):
            tick(start)
            if should_stop():
                return None
            first = start * b
            out = self.run(order[first : first + steps * size], steps)
            losses[start : start + steps].copy_(out)  # a device copy, no sync
            progress((start + steps) / total)
        return {k: float(v) / n for k, v in self.sums.items()}


def _corrupt(cfg: TrainConfig, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if cfg.level_sampling == "fixed":
        return corrupt_for_training(cfg.corruption, clean, cfg.level, generator)
    # Drawn on the device, inside the graph (level_in_graph said the corruption takes a tensor).
    level = torch.rand((), generator=generator, device=clean.device) * cfg.level
    return training_sampler(cfg.corruption)(clean, level, generator)


class _restored:
    """Puts the model's parameters and buffers and the optimizer's state back as they were on
    entry, in place (their memory is what the graph reads), so warm-up steps leave no trace."""

    def __init__(self, model: Autoencoder, opt: torch.optim.Optimizer) -> None:
        self.model, self.opt = model, opt

    def __enter__(self) -> None:
        state = self.model.state_dict(keep_vars=True)
        self.saved = {k: v.detach().clone() for k, v in state.items()}

    def __exit__(self, *exc) -> None:
        torch.cuda.synchronize()  # the warm-up's side stream is done before anything is reset
        with torch.no_grad():
            for k, v in self.model.state_dict(keep_vars=True).items():
                v.detach().copy_(self.saved[k])
            for state in self.opt.state.values():
                for v in state.values():
                    if isinstance(v, torch.Tensor):
                        v.zero_()
