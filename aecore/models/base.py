"""What every autoencoder shares: encode/decode, its own loss terms, and a Keras-style summary.

Loss scales are named, because sum-vs-mean confusion is the most asked question about the
PyTorch VAE example:
- plain autoencoders train on the reconstruction loss *averaged over pixels* (MSE or BCE per
  pixel), plus an optional regulariser on the code;
- VAEs train on the negative ELBO *per image in nats*: reconstruction summed over pixels plus the
  KL term (Kingma & Welling 2014, Appendix B).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aecore.models.regularizers import PENALTIES

# The regularisers' names, in the registry's order: what a page or the CLI offers as choices.
REGULARIZERS = tuple(PENALTIES.names())


class _BCEWithLogits(torch.autograd.Function):
    """Binary cross-entropy on logits per value: softplus(x) - x * y, with the gradient
    sigmoid(x) - y. The same numbers as F.binary_cross_entropy_with_logits (to ~1e-6 per value),
    in 5 vectorised passes rather than a composite whose log-sigmoid runs one value at a time on
    a CPU: 0.36 ms against 0.67 ms per 128 MNIST images, forward and backward (vae_mlp)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, target)
        # softplus(x) = max(x, 0) + log(1 + exp(-|x|)): exp and log are vectorised, log1p is not.
        softplus = torch.exp(-logits.abs()).add_(1).log_().add_(logits.clamp_min(0))
        return softplus.sub_(logits * target)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        logits, target = ctx.saved_tensors
        if torch.is_grad_enabled():  # a double backward: stay differentiable
            return (torch.sigmoid(logits) - target) * grad, None
        return torch.sigmoid(logits).sub_(target).mul_(grad), None


def reconstruction_sum(raw: torch.Tensor, clean: torch.Tensor, loss: str, output: str):
    """The reconstruction loss summed over every value of the batch (a scalar).

    `raw` is the decoder's output before its final activation. For a sigmoid output BCE is taken
    on the logits, which is exact and avoids log(0). One fused reduction rather than per-image
    sums: the same total, and a CPU step of JANet-50 spends ~0.05 ms less on it. Taken in float32
    whatever the decoder's precision: the loss and the figures reported from it keep float32's
    digits (bfloat16 keeps about three).
    """
    raw = raw.float()  # a no-op for float32
    if output == "sigmoid":
        if loss == "bce":
            return _BCEWithLogits.apply(raw, clean).sum()
        return F.mse_loss(torch.sigmoid(raw), clean, reduction="sum")
    # An unbounded output (JANet's leaky ReLU): BCE needs it clamped into (0, 1).
    x_hat = F.leaky_relu(raw)
    if loss == "bce":
        return F.binary_cross_entropy(x_hat.clamp(1e-6, 1 - 1e-6), clean, reduction="sum")
    return F.mse_loss(x_hat, clean, reduction="sum")


class Autoencoder(nn.Module):
    """Subclasses set `encoder` and `decoder` (nn.Sequential, decoder without final activation)."""

    variational = False  # a VAE's loss samples its code; MODELS copies this into meta
    output = "sigmoid"  # the decoder's final activation: "sigmoid" or "leaky_relu"

    def __init__(
        self,
        shape: tuple[int, int, int],
        latent: int,
        regularizer: str = "none",
        reg_weight: float = 0.0,
        **_unused: Any,  # options only other models take (deep_mlp's width)
    ) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.latent = latent
        self.regularizer = PENALTIES[regularizer].name  # an unknown name fails here, not in a loss
        self.reg_weight = float(reg_weight)
        # No random generator is kept here: noise inside the loss (VAE sampling, the contractive
        # estimate) draws from the generator each call is given, so threads sharing one cached
        # model each get their own seed's numbers.

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> code z."""
        return self.encoder(x)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """code z -> reconstruction (N, C, H, W)."""
        return self.activate(self.decode_raw(z))

    def activate(self, raw: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(raw) if self.output == "sigmoid" else F.leaky_relu(raw)

    def code_and_raw(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """(code, decoder output before its activation). A model may return None for the code
        when it can skip building it (only a regulariser reads it)."""
        z = self.encode(x)
        return z, self.decode_raw(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activate(self.code_and_raw(x)[1])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruction for display and metrics, clipped to [0, 1]; deterministic for a VAE."""
        return self.forward(x).clamp(0.0, 1.0)

    def loss_terms(
        self,
        noisy: torch.Tensor,
        clean: torch.Tensor,
        loss: str,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Batch-mean loss terms; "loss" is what the optimiser minimises. Noise inside the loss
        (the contractive estimate) draws from `generator` (None: torch's global generator)."""
        penalty = PENALTIES[self.regularizer]
        if penalty.meta["needs_input_grad"]:
            noisy = noisy.detach().requires_grad_(True)
        z, raw = self.code_and_raw(noisy)
        # Averaged over pixels and images.
        terms = {"recon": reconstruction_sum(raw, clean, loss, self.output) / clean.numel()}
        if penalty.meta["has_weight"]:
            terms["reg"] = self.reg_weight * penalty.fn(z.float(), noisy, generator).mean()
        terms["loss"] = terms["recon"] + terms.get("reg", 0.0)
        return terms


@dataclass(frozen=True)
class LayerRow:
    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int


def summary(model: Autoencoder) -> list[LayerRow]:
    """One row per leaf layer, in call order, as Keras' model.summary() prints them."""
    rows: list[LayerRow] = []
    hooks = []
    for name, module in model.named_modules():
        if name and not list(module.children()):

            def record(mod, _inputs, out, name=name):
                params = sum(p.numel() for p in mod.parameters())
                shape = (None, *out.shape[1:])
                rows.append(LayerRow(name, type(mod).__name__, shape, params))

            hooks.append(module.register_forward_hook(record))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            model(torch.zeros((1, *model.shape), device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    last = rows[-1].output_shape
    rows.append(
        LayerRow("output", "Sigmoid" if model.output == "sigmoid" else "LeakyReLU", last, 0)
    )
    return rows


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
