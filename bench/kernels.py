"""The CPU kernels behind the training steps that miss their CPU targets (issue #13).

1. BatchNorm + ReLU by channels, memory layout and dtype: why conv_same's CPU step is slow.
conv_same's hidden layers have 16 and 8 channels of 28x28 pixels, batch 128. On this project's
2-core CPU its BatchNorms take a third of a bf16 training step, and the 8-channel ones most of
that. This script times, for a (128, C, 28, 28) tensor, one training-mode BatchNorm + ReLU forward
and backward, with the input and its gradient made once and reused (so the figures are the
kernels', not the allocator's):
- channels-last (aecore's layout for conv models) against NCHW (contiguous);
- channels-last converted to NCHW around the BatchNorm and back (what using NCHW's kernel
  would cost inside a channels-last model);
in float32 and bfloat16, the median of --repeats timings of --steps steps each.

2. Matrix products: vae_mlp's largest (a batch of 128 through its 784x400 layer: the forward
product and the two of backward) in float32 and bfloat16, against a 2048x2048 float32 product
(about the most this CPU's arithmetic gives), in GFLOP/s: how near its float32 step is to the
machine's limit.

    python -m bench.kernels                      # about 25 s
    python -m bench.kernels --steps 2 --repeats 1 --batch 8   # smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

# isort: off
import aecore  # noqa: F401  first, as in the app and the command line: its OpenMP policy
import torch

# isort: on

CHANNELS = (8, 16)
DTYPES = {"float32": torch.float32, "bf16": torch.bfloat16}
LAYOUTS = ("channels-last", "NCHW", "channels-last via NCHW")


def bn_relu_ms(
    channels: int, dtype: torch.dtype, layout: str, batch: int, steps: int, repeats: int
) -> float:
    """Milliseconds per BatchNorm + ReLU forward and backward (median of `repeats`)."""
    torch.manual_seed(0)
    x = torch.randn(batch, channels, 28, 28).to(dtype)
    if layout != "NCHW":
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    grad = torch.randn_like(x)
    bn = torch.nn.BatchNorm2d(channels)

    def step() -> None:
        inner = x.contiguous() if layout == "channels-last via NCHW" else x
        out = torch.relu(bn(inner))
        if layout == "channels-last via NCHW":
            out = out.contiguous(memory_format=torch.channels_last)
        out.backward(grad)

    return seconds_per_call(step, steps, repeats) * 1e3


def matmul_gflops(a: torch.Tensor, b: torch.Tensor, steps: int, repeats: int) -> float:
    """GFLOP/s of a @ b (median of `repeats` timings of `steps` products)."""
    seconds = seconds_per_call(lambda: a @ b, steps, repeats)
    return 2 * a.shape[0] * a.shape[1] * b.shape[1] / seconds / 1e9


def seconds_per_call(fn: Callable[[], object], steps: int, repeats: int) -> float:
    """Seconds per call of fn: one call first (first-call setup), then the median of `repeats`
    timings of `steps` calls each."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            fn()
        times.append((time.perf_counter() - t0) / steps)
    return statistics.median(times)


def print_matmuls(batch: int, steps: int, repeats: int) -> None:
    torch.manual_seed(0)
    x, w, g = torch.rand(batch, 784), torch.rand(400, 784), torch.rand(batch, 400)
    products = {  # vae_mlp's 784 -> 400 layer: forward, weight gradient, input gradient
        f"forward x @ W.T ({batch}x784 by 784x400)": (x, w.t()),
        f"weight gradient g.T @ x (400x{batch} by {batch}x784)": (g.t(), x),
        f"input gradient g @ W ({batch}x400 by 400x784)": (g, w),
    }
    print(f"\n{'matrix product':<48}{'float32 GFLOP/s':>17}{'bf16 GFLOP/s':>14}")
    for name, (a, b) in products.items():
        fp32 = matmul_gflops(a, b, steps, repeats)
        bf16 = matmul_gflops(a.bfloat16(), b.bfloat16(), steps, repeats)
        print(f"{name:<48}{fp32:>17.0f}{bf16:>14.0f}")
    big = torch.rand(2048, 2048)
    large = matmul_gflops(big, big, max(1, steps // 8), repeats)
    print(f"{'2048x2048 by 2048x2048':<48}{large:>17.0f}{'':>14}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=40, help="steps per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per cell (median)")
    args = parser.parse_args(argv)
    print(
        f"BatchNorm2d + ReLU, forward and backward, ({args.batch}, C, 28, 28), "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}: ms per step"
    )
    print(f"{'dtype':<9}{'C':>3}" + "".join(f"{layout:>24}" for layout in LAYOUTS))
    for name, dtype in DTYPES.items():
        for c in CHANNELS:
            cells = [
                bn_relu_ms(c, dtype, layout, args.batch, args.steps, args.repeats)
                for layout in LAYOUTS
            ]
            print(f"{name:<9}{c:>3}" + "".join(f"{ms:>24.2f}" for ms in cells))
    print_matmuls(args.batch, args.steps, args.repeats)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
