"""Fully connected autoencoders: the shallow undercomplete AE, JANet-N and a deeper MLP."""

from __future__ import annotations

import math

from torch import nn

from aecore.models.base import Autoencoder
from aecore.models.registry import MODELS


def _pixels(shape: tuple[int, int, int]) -> int:
    return math.prod(shape)


@MODELS.register(
    "dense",
    label="Dense AE (shallow, undercomplete)",
    family="mlp",
    convolutional=False,
    # The seed table: MNIST, latent 1 -> 784*1+1 + 1*784+784 parameters.
    params={((1, 28, 28), 1): 2353},
)
class DenseAE(Autoencoder):
    """Linear(D->N)+ReLU | Linear(N->D)+sigmoid: the Keras blog post's first autoencoder."""

    def __init__(self, shape, latent: int, **options):
        super().__init__(shape, latent, **options)
        d = _pixels(shape)
        self.encoder = nn.Sequential(nn.Flatten(), nn.Linear(d, latent), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(latent, d), nn.Unflatten(1, shape))


@MODELS.register(
    "janet", label="JANet-N (784-144-N | N-144-784)", family="mlp", convolutional=False
)
class JANet(Autoencoder):
    """D-144-N | N-144-D: ReLU, then a sigmoid code | ReLU, then a leaky ReLU output."""

    output = "leaky_relu"

    def __init__(self, shape, latent: int, **options):
        super().__init__(shape, latent, **options)
        d = _pixels(shape)
        self.encoder = nn.Sequential(
            nn.Flatten(), nn.Linear(d, 144), nn.ReLU(), nn.Linear(144, latent), nn.Sigmoid()
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, 144), nn.ReLU(), nn.Linear(144, d), nn.Unflatten(1, shape)
        )


@MODELS.register(
    "deep_mlp", label="Deep MLP AE", family="mlp", convolutional=False, uses_width=True
)
class DeepMLP(Autoencoder):
    """D-2w-w-N | N-w-2w-D with ReLU between layers, a linear code and a sigmoid output."""

    def __init__(self, shape, latent: int, width: int = 256, **options):
        super().__init__(shape, latent, **options)
        d = _pixels(shape)
        self.encoder = nn.Sequential(
            nn.Flatten(),
            nn.Linear(d, 2 * width),
            nn.ReLU(),
            nn.Linear(2 * width, width),
            nn.ReLU(),
            nn.Linear(width, latent),
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent, width),
            nn.ReLU(),
            nn.Linear(width, 2 * width),
            nn.ReLU(),
            nn.Linear(2 * width, d),
            nn.Unflatten(1, shape),
        )
