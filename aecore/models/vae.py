"""Variational autoencoders (Kingma & Welling 2014): an MLP one as in pytorch/examples, a conv one.

encode() returns the posterior mean, so the latent views treat a VAE like any autoencoder;
loss_terms() samples with the reparameterisation trick and reports reconstruction and KL apart.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aecore.models.base import Autoencoder, reconstruction_sum
from aecore.models.registry import MODELS
from aecore.models.regularizers import noise_like


class VAE(Autoencoder):
    """Subclasses set `encoder` (-> hidden features), `to_mu`, `to_logvar` and `decoder`."""

    variational = True  # MODELS copies it into each entry's meta (aecore.models.is_variational)

    def __init__(self, shape, latent: int, beta: float = 1.0, **options) -> None:
        super().__init__(shape, latent, **options)
        self.beta = float(beta)  # the KL term's weight: 1 is the ELBO, more pulls codes to N(0, I)

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def loss_terms(
        self,
        noisy: torch.Tensor,
        clean: torch.Tensor,
        loss: str,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Negative ELBO per image in nats: summed reconstruction + beta * KL(q(z|x) || N(0, I))
        (beta = 1: the ELBO itself). The code is sampled with `generator` (None: torch's global
        generator)."""
        mu, logvar = (t.float() for t in self.posterior(noisy))  # float32 in bf16 training too
        z = mu + noise_like(mu, generator) * torch.exp(0.5 * logvar)  # reparameterisation
        recon = reconstruction_sum(self.decode_raw(z), clean, loss, self.output) / len(clean)
        # Appendix B: -KL = 1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2)
        kl = (-0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1)).mean()
        return {"recon": recon, "kl": kl, "loss": recon + self.beta * kl}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n draws from the prior N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn((n, self.latent), generator=generator, device=device)
        return self.decode(z)


@MODELS.register("vae_mlp", label="VAE, MLP (784-400-N)", family="vae", convolutional=False)
class VAEMLP(VAE):
    def __init__(self, shape, latent: int, **options):
        super().__init__(shape, latent, **options)
        d = math.prod(shape)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, 400), nn.ReLU())
        self.to_mu = nn.Linear(400, latent)
        self.to_logvar = nn.Linear(400, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, 400), nn.ReLU(), nn.Linear(400, d), nn.Unflatten(1, shape)
        )


@MODELS.register(
    "vae_conv",
    label="VAE, convolutional + BatchNorm",
    family="vae",
    convolutional=True,
    divisible_by=4,
    params={((1, 28, 28), 20): 1_691_497},
)
class VAEConv(VAE):
    """Two stride-2 convs (32, 64) and a 256-unit layer, mirrored with transposed convs; a
    BatchNorm after each hidden (transposed) conv, none on the dense layers (so batch size 1
    trains: every normalised feature map is at least 2x2).

    Why BatchNorm (bench/collapse.py, MNIST, Gaussian sigma 0.5, 10,000 images, Adam 1e-3,
    BCE, seeds 0-2): after 1 epoch the original's code carried nothing about its input on all
    three seeds (every reconstruction the same average image, 9.9-10.4 dB); with BatchNorm the
    outputs differ by input and reach 11.5-12.7 dB; after 5 epochs 16.4-16.9 dB against the
    original's 11.9-14.2 (the 3x3 median filter: 14.18). With MSE, whose per-image sum is a
    weak likelihood next to the KL term, both still give one average image after an epoch.
    vae_conv_plain is the original."""

    norm = True

    def __init__(self, shape, latent: int, **options):
        super().__init__(shape, latent, **options)
        c, h, w = shape
        feat = (64, h // 4, w // 4)

        def bn(channels: int) -> list[nn.Module]:
            return [nn.BatchNorm2d(channels)] if self.norm else []

        self.encoder = nn.Sequential(
            nn.Conv2d(c, 32, 4, stride=2, padding=1, bias=not self.norm),
            *bn(32),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1, bias=not self.norm),
            *bn(64),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(math.prod(feat), 256),
            nn.ReLU(),
        )
        self.to_mu = nn.Linear(256, latent)
        self.to_logvar = nn.Linear(256, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, 256),
            nn.ReLU(),
            nn.Linear(256, math.prod(feat)),
            nn.ReLU(),
            nn.Unflatten(1, feat),
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=not self.norm),
            *bn(32),
            nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, stride=2, padding=1),
        )


@MODELS.register(
    "vae_conv_plain",
    label="VAE, convolutional, no BatchNorm (original)",
    family="vae",
    convolutional=True,
    divisible_by=4,
    params={((1, 28, 28), 20): 1_691_369},
)
class VAEConvPlain(VAEConv):
    """vae_conv without normalisation: the original layers and parameter count."""

    norm = False
