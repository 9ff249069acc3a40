"""What training and evaluation share about a batch, without the training loop: a model's loss
terms computed without keeping a graph, whether a model is convolutional (which decides the
memory layout both use on a CPU), and how many images a pass takes when nothing trains."""

from __future__ import annotations

import torch

from aecore.models import Autoencoder
from aecore.models.regularizers import needs_input_grad

# Images per forward pass when testing or validating. On a CPU a conv model's feature maps for
# 1,000 images (50 MB for conv_same) overflow the caches and come as fresh pages from the
# operating system at each batch; at the training batch size they do not. On a 2-core CPU
# (python -m bench.evaluation, MNIST): testing conv_same took 1.03-1.08 s in batches of 128
# against 1.86-1.93 s in 1,000s, unet 1.83-1.94 against 2.64-3.08; validating 2,000 images
# 0.33-0.38 against 0.63-0.66 and 0.70-0.71 against 1.16-1.22. MLPs take the same time either
# way, vae_conv (two passes a batch) took up to 10% longer in 128s, and a GPU wants large batches.
# Since aecore keeps freed memory between batches (aecore.allocator) the gain is smaller and mixed
# (session 12: testing conv_same 0.76x and unet 0.67x, validating conv_same 1.05x, conv_pool
# 1.14-1.17x; README, "Performance").
BATCH = 1000
CPU_CONV_BATCH = 128


def batch_terms(
    model: Autoencoder,
    noisy: torch.Tensor,
    clean: torch.Tensor,
    loss: str,
    generator: torch.Generator | None = None,
) -> dict[str, torch.Tensor]:
    """Loss terms without building a graph (the contractive penalty needs one, briefly)."""
    with torch.set_grad_enabled(needs_input_grad(model.regularizer)):
        return {k: v.detach() for k, v in model.loss_terms(noisy, clean, loss, generator).items()}


def has_conv(model: torch.nn.Module) -> bool:
    """Whether the model has a convolution (oneDNN runs those faster on channels-last tensors)."""
    return any(isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d) for m in model.modules())


def inference_batch(model: Autoencoder, device: torch.device) -> int:
    """Images per forward pass for testing `model` on `device` (see CPU_CONV_BATCH)."""
    small = device.type == "cpu" and has_conv(model) and not model.variational
    return CPU_CONV_BATCH if small else BATCH
