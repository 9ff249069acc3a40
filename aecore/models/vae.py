"""Variational autoencoders (Kingma & Welling 2014): an MLP one as in pytorch/examples, a conv one.

encode() returns the posterior mean, so the latent views treat a VAE like any autoencoder;
loss_terms() samples with the reparameterisation trick and reports reconstruction and KL apart.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aecore.models.base import Autoencoder, reconstruction_per_image
from aecore.models.registry import MODELS


class VAE(Autoencoder):
    """Subclasses set `encoder` (-> hidden features), `to_mu`, `to_logvar` and `decoder`."""

    variational = True

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x)
        return self.to_mu(h), self.to_logvar(h)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def loss_terms(self, noisy: torch.Tensor, clean: torch.Tensor, loss: str):
        """Negative ELBO per image in nats: summed reconstruction + KL(q(z|x) || N(0, I))."""
        mu, logvar = self.posterior(noisy)
        z = mu + self.noise_like(mu) * torch.exp(0.5 * logvar)  # reparameterisation
        recon = reconstruction_per_image(self.decode_raw(z), clean, loss, self.output).mean()
        # Appendix B: -KL = 1/2 * sum(1 + log sigma^2 - mu^2 - sigma^2)
        kl = (-0.5 * (1 + logvar - mu.square() - logvar.exp()).sum(1)).mean()
        return {"recon": recon, "kl": kl, "loss": recon + kl}

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decode n draws from the prior N(0, I)."""
        device = next(self.parameters()).device
        z = torch.randn((n, self.latent), generator=generator, device=device)
        return self.decode(z)


@MODELS.register("vae_mlp", label="VAE, MLP (784-400-N)", family="vae")
class VAEMLP(VAE):
    def __init__(self, shape, latent: int, **_):
        super().__init__(shape, latent)
        d = math.prod(shape)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, 400), nn.ReLU())
        self.to_mu = nn.Linear(400, latent)
        self.to_logvar = nn.Linear(400, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, 400), nn.ReLU(), nn.Linear(400, d), nn.Unflatten(1, shape)
        )


@MODELS.register("vae_conv", label="VAE, convolutional", family="vae", divisible_by=4)
class VAEConv(VAE):
    """Two stride-2 convs (32, 64) and a 256-unit layer, mirrored with transposed convs."""

    def __init__(self, shape, latent: int, **_):
        super().__init__(shape, latent)
        c, h, w = shape
        feat = (64, h // 4, w // 4)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2, padding=1),
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
            nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, stride=2, padding=1),
        )
