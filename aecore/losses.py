"""What training and evaluation share about a batch, without the training loop: a model's loss
terms computed without keeping a graph, and whether a model is convolutional (which decides the
memory layout both use on a CPU)."""

from __future__ import annotations

import torch

from aecore.models import Autoencoder
from aecore.models.regularizers import needs_input_grad


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
