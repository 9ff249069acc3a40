"""Where a model and its tensors meet, and how many runs a device takes at once.

Every function that feeds a model (reconstructions, classifier predictions, codes) moves its
input to the model's device with `to_model` and brings results back to where the caller's
tensors live: a model trained on the GPU and a grid of CPU images then meet on one device.

The job runner's worker policy per device (`job_workers`): on a CPU one run at a time, since
PyTorch's intra-op threads already use every core; on a GPU several small runs at once, each on
a CUDA stream of its own (`worker_stream`), since one small run leaves most of the GPU idle
(kernel launches, not arithmetic, bound an MNIST-sized step).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

# Small runs at once on one GPU. bench/gpu_check.sh measures the throughput of 1 against this
# many (bench/speed.py --device cuda, "concurrent runs"); 4 keeps each run's CPU thread (launches,
# callbacks) on a core of its own on a 16-core machine with room for the app.
CUDA_WORKERS = 4


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's parameters (of its buffers if it has none; else the CPU)."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def to_model(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """x on the model's device (x itself when it is there already: no copy)."""
    return x.to(model_device(model))


def job_workers(device: torch.device | str) -> int:
    """Runs a job manager should compute at once on `device`: 1 on a CPU or MPS, CUDA_WORKERS on
    a CUDA GPU."""
    return CUDA_WORKERS if torch.device(device).type == "cuda" else 1


@contextlib.contextmanager
def worker_stream(device: torch.device | str) -> Iterator[None]:
    """Run the body on a CUDA stream of its own (nothing changes on other devices), so that runs
    of several worker threads overlap on the GPU instead of queuing on the default stream. The
    body's results are ready on the caller's stream when the block ends."""
    device = torch.device(device)
    if device.type != "cuda":
        yield
        return
    caller = torch.cuda.current_stream(device)
    stream = torch.cuda.Stream(device)
    stream.wait_stream(caller)  # what the caller queued before (data copies) comes first
    with torch.cuda.stream(stream):
        yield
    caller.wait_stream(stream)
