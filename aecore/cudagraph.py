"""Graph-captured training on CUDA: the whole step of a batch recorded once as a CUDA graph and
replayed for every batch.

An MNIST-sized step is a few dozen small kernels; launched one by one from Python, the GPU waits
for the CPU most of the time. Captured, a step is one launch: forward, backward, the optimizer
(Adam, fused and capturable: its step count lives on the device), the batch's corruption level
(when sampled), its augmentation and its noise (drawn on the device from the run's own generator,
registered with the graph so each replay draws fresh numbers), and the per-epoch loss sums (added
into device tensors). The host only copies the batch's indices into the graph's index buffer,
checks the cancel flag and reports progress: nothing per step waits for the GPU; the sums are
read once per epoch.

`capture_reason(cfg, model, device)` says why a run cannot be captured (None: it can); those
runs train eagerly (aecore.train). A last batch smaller than the others gets a graph of its own.

Rules followed (PyTorch's CUDA graphs notes, "whole network capture"): warm-up steps on a side
stream before capturing (the library picks its kernels and the optimizer makes its state), then
model, optimizer and generator restored, so the warm-up leaves no trace in the results; the
gradients are zeroed in place inside the graph, so their memory stays where the optimizer's
captured step reads it; captures are one at a time per process, in "thread_local" mode so that
other threads' runs (the job manager) may allocate meanwhile.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable

import torch

from aecore.config import TrainConfig
from aecore.corruptions import CORRUPTIONS, corrupt
from aecore.models import Autoencoder, needs_input_grad

log = logging.getLogger(__name__)

WARMUP_STEPS = 3
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
        out = CORRUPTIONS[corruption].fn(images, level, None)
    except (RuntimeError, NotImplementedError, TypeError):
        return False
    return isinstance(out, torch.Tensor) and out.shape == images.shape


def graph_step(
    cfg: TrainConfig, model: Autoencoder, train_x: torch.Tensor, noise: torch.Generator
) -> tuple[GraphStep | None, str | None]:
    """(the captured step, None) when the run can be captured, else (None, why it trains
    eagerly). A capture that fails (an operation a graph cannot hold) is logged and reported as
    the reason; the model is left as it was, so the run goes on eagerly."""
    reason = capture_reason(cfg, model, train_x.device)
    if reason is not None:
        return None, reason
    try:
        return GraphStep(model, cfg, train_x, noise), None
    except RuntimeError as err:
        log.warning("CUDA graph capture of %s failed, training eagerly: %s", cfg.model, err)
        return None, f"eager: the capture failed ({str(err).splitlines()[0][:200]})"


def graph_optimizer(cfg: TrainConfig, model: Autoencoder) -> torch.optim.Optimizer:
    """Adam as aecore.train makes it, with its step count on the device (capturable)."""
    return torch.optim.Adam(model.parameters(), lr=cfg.lr, fused=True, capturable=True)


class GraphStep:
    """One training step of (model, cfg) over train_x, captured as CUDA graphs (one per batch
    size); `epoch` runs an epoch of them. The optimizer is `self.opt`."""

    def __init__(
        self, model: Autoencoder, cfg: TrainConfig, train_x: torch.Tensor, noise: torch.Generator
    ) -> None:
        self.model, self.cfg, self.train_x, self.noise = model, cfg, train_x, noise
        self.opt = graph_optimizer(cfg, model)
        self.sums: dict[str, torch.Tensor] = {}
        self.loss = torch.zeros((), device=train_x.device)  # the last replayed batch's loss
        self._graphs: dict[int, tuple[torch.cuda.CUDAGraph, torch.Tensor]] = {}
        self._stream = torch.cuda.Stream(train_x.device)
        n, b = len(train_x), cfg.batch_size
        for size in sorted({min(b, n), n % b} - {0}, reverse=True):
            self._graphs[size] = self._capture(size)

    def _body(self, idx: torch.Tensor, generator: torch.Generator) -> None:
        """The step itself, as eager training runs it (aecore.train._train_epoch)."""
        from aecore.train import augment  # here: aecore.train imports this module

        cfg = self.cfg
        self.opt.zero_grad(set_to_none=False)  # in place: the captured step reads these grads
        clean = self.train_x[idx]
        if cfg.augment:
            clean = augment(clean, generator)
        noisy = _corrupt(cfg, clean, generator)
        terms = self.model.loss_terms(noisy, clean, cfg.loss, generator)
        terms["loss"].backward()
        self.opt.step()
        self.loss.copy_(terms["loss"].detach())
        for k, v in terms.items():
            if k not in self.sums:
                self.sums[k] = torch.zeros((), device=self.loss.device)
            self.sums[k].add_(v.detach() * len(idx))

    def _capture(self, size: int) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
        idx = torch.arange(size, device=self.train_x.device)
        with _capture_lock, _restored(self.model, self.opt):
            caller = torch.cuda.current_stream(self.train_x.device)
            self._stream.wait_stream(caller)
            scratch = torch.Generator(self.train_x.device).manual_seed(0)
            with torch.cuda.stream(self._stream):
                for _ in range(WARMUP_STEPS):
                    self._body(idx, scratch)
            caller.wait_stream(self._stream)
            graph = torch.cuda.CUDAGraph()
            graph.register_generator_state(self.noise)
            with torch.cuda.graph(graph, stream=self._stream, capture_error_mode="thread_local"):
                self._body(idx, self.noise)
        return graph, idx

    def run(self, indices: torch.Tensor) -> None:
        """One step on the images train_x[indices] (indices on the device)."""
        graph, idx = self._graphs[len(indices)]
        idx.copy_(indices)
        graph.replay()

    def epoch(
        self,
        order: torch.Tensor,
        should_stop: Callable[[], bool],
        progress: Callable[[float], None],
        losses: torch.Tensor,
        tick: Callable[[int], None] = lambda step: None,
    ) -> dict[str, float] | None:
        """One pass in `order` (a permutation on the device), as aecore.train._train_epoch: the
        mean loss terms (one sync), or None when should_stop() turned true."""
        self.model.train()
        for v in self.sums.values():
            v.zero_()
        b, n = self.cfg.batch_size, len(order)
        steps = -(-n // b)
        for step in range(steps):
            tick(step)
            if should_stop():
                return None
            self.run(order[step * b : (step + 1) * b])
            losses[step] = self.loss  # a device copy, no sync
            progress((step + 1) / steps)
        return {k: float(v) / n for k, v in self.sums.items()}


def _corrupt(cfg: TrainConfig, clean: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    if cfg.level_sampling == "fixed":
        return corrupt(cfg.corruption, clean, cfg.level, generator)
    # Drawn on the device, inside the graph (level_in_graph said the corruption takes a tensor).
    level = torch.rand((), generator=generator, device=clean.device) * cfg.level
    return CORRUPTIONS[cfg.corruption].fn(clean, level, generator)


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
