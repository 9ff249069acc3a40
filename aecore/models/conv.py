"""Convolutional autoencoders. Their code is a feature map, so they take no latent size.

conv_pool and conv_transpose halve the image twice: height and width must be multiples of 4
(8x8 digits, 28x28 MNIST and 32x32 CIFAR-10 all are).
"""

from __future__ import annotations

from torch import nn

from aecore.models.base import Autoencoder
from aecore.models.registry import MODELS


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1)  # "same" padding


@MODELS.register(
    "conv_same",
    label="Conv AE, same padding (16-8 | 8-16)",
    family="conv",
    uses_latent=False,
    params={((1, 28, 28), 0): 3217},
)
class ConvSame(Autoencoder):
    """Five 3x3 same-padding convs, no pooling: 16, 8 | 8, 16, C. The code is 8 x H x W."""

    def __init__(self, shape, latent: int = 0, **_):
        super().__init__(shape, latent)
        c = shape[0]
        self.encoder = nn.Sequential(_conv(c, 16), nn.ReLU(), _conv(16, 8), nn.ReLU())
        self.decoder = nn.Sequential(_conv(8, 8), nn.ReLU(), _conv(8, 16), nn.ReLU(), _conv(16, c))


@MODELS.register(
    "conv_pool",
    label="Conv AE, pooling + upsampling",
    family="conv",
    uses_latent=False,
    divisible_by=4,
)
class ConvPool(Autoencoder):
    """Conv 16 + max-pool, Conv 8 + max-pool | Conv 8 + upsample, Conv 16 + upsample, Conv C."""

    def __init__(self, shape, latent: int = 0, **_):
        super().__init__(shape, latent)
        c = shape[0]
        self.encoder = nn.Sequential(
            _conv(c, 16), nn.ReLU(), nn.MaxPool2d(2), _conv(16, 8), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.decoder = nn.Sequential(
            _conv(8, 8),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            _conv(8, 16),
            nn.ReLU(),
            nn.Upsample(scale_factor=2),
            _conv(16, c),
        )


def _up(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c_in, c_out, 3, stride=2, padding=1, output_padding=1)  # x2


@MODELS.register(
    "conv_transpose",
    label="Conv AE, transposed convolutions",
    family="conv",
    uses_latent=False,
    divisible_by=4,
    params={((3, 32, 32), 0): 6467},
)
class ConvTranspose(Autoencoder):
    """Conv 8 + pool, Conv 16 + pool | ConvT 16 s2, ConvT 16 s2, Conv C: the CIFAR-10 seed."""

    def __init__(self, shape, latent: int = 0, **_):
        super().__init__(shape, latent)
        c = shape[0]
        self.encoder = nn.Sequential(
            _conv(c, 8), nn.ReLU(), nn.MaxPool2d(2), _conv(8, 16), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.decoder = nn.Sequential(_up(16, 16), nn.ReLU(), _up(16, 16), nn.ReLU(), _conv(16, c))
