"""Convolutional autoencoders. Their code is a feature map, so they take no latent size.

conv_pool and conv_transpose halve the image twice: height and width must be multiples of 4
(8x8 digits, 28x28 MNIST and 32x32 CIFAR-10 all are).

Each model has a BatchNorm after every hidden convolution (the default) and a `_plain` variant
without it: the tutorials' original layers and parameter counts (issue #11).

Why: with a sigmoid output and MSE, the plain models stall on one constant, nearly black image.
Traced step by step (conv_same_plain, seed 1, Adam 1e-3, MNIST with Gaussian sigma 0.5): the
mean output logit falls from -0.1 to -3.3 in 30 steps and to -10.8 by step 78, driven by the
weights (the output bias only moves from -0.07 to -0.10); there the sigmoid's slope is 2e-5, the
gradient norm has fallen from 0.22 to 0.0007, and nothing moves again. Seed 0 fell to -3.9 and
came back. bench/collapse.py, 1 epoch on 10,000 MNIST images, seeds 0-2, 3x3 median 14.18 dB:

- plain, lr 1e-3: conv_pool and conv_transpose collapsed on every seed (9.7 dB), conv_same on
  seed 1 and below the median on the others (12.5, 12.7 dB); plain, lr 3e-3 (the app's): all
  nine runs collapsed (9.73 dB).
- Leaky ReLUs, whose units cannot die, did not help: 6 of 9 runs collapsed at 1e-3, 8 of 9 at
  3e-3. A BCE loss (no flat sigmoid in its gradient) avoided the constant image but reached only
  10.6-13.2 dB in the epoch.
- BatchNorm keeps every hidden layer's scale fixed, so the logits cannot run away: at lr 3e-3
  conv_same 18.7-18.8 dB, conv_pool 16.8-17.0, conv_transpose 17.5-17.8; at lr 1e-3 all beat
  the median too, by less (conv_pool by 0.1-0.7 dB).

With BatchNorm the convolutions before it drop their bias (the norm's shift replaces it). Put the
model in eval mode (evaluate, reconstruct and checkpoint loading do) to use the running statistics;
batch size 1 trains too, since every normalised feature map is at least 2x2.
"""

from __future__ import annotations

from torch import nn

from aecore.models.base import Autoencoder
from aecore.models.registry import MODELS


def _conv(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=bias)  # "same" padding


def _up(c_in: int, c_out: int, bias: bool = True, kernel: int = 3) -> nn.ConvTranspose2d:
    """A transposed conv that doubles height and width (kernel 3 or 4)."""
    extra = 1 if kernel == 3 else 0  # output_padding: 2 * (H - 1) - 2 + kernel + extra = 2H
    return nn.ConvTranspose2d(
        c_in, c_out, kernel, stride=2, padding=1, output_padding=extra, bias=bias
    )


def _hidden(layer, c_in: int, c_out: int, norm: bool, **kw) -> list[nn.Module]:
    """A hidden layer and its ReLU, with a BatchNorm between them when `norm`."""
    if not norm:
        return [layer(c_in, c_out, **kw), nn.ReLU()]
    return [layer(c_in, c_out, bias=False, **kw), nn.BatchNorm2d(c_out), nn.ReLU()]


@MODELS.register(
    "conv_same",
    label="Conv AE, same padding + BatchNorm (16-8 | 8-16)",
    family="conv",
    convolutional=True,
    uses_latent=False,
    params={((1, 28, 28), 0): 3265},
)
class ConvSame(Autoencoder):
    """Five 3x3 same-padding convs, no pooling: 16, 8 | 8, 16, C. The code is 8 x H x W."""

    norm = True  # a BatchNorm after each hidden conv

    def __init__(self, shape, latent: int = 0, **options):
        super().__init__(shape, latent, **options)
        c, n = shape[0], self.norm
        self.encoder = nn.Sequential(*_hidden(_conv, c, 16, n), *_hidden(_conv, 16, 8, n))
        self.decoder = nn.Sequential(
            *_hidden(_conv, 8, 8, n), *_hidden(_conv, 8, 16, n), _conv(16, c)
        )


@MODELS.register(
    "conv_same_plain",
    label="Conv AE, same padding, no BatchNorm (original 16-8 | 8-16)",
    family="conv",
    convolutional=True,
    uses_latent=False,
    params={((1, 28, 28), 0): 3217},
)
class ConvSamePlain(ConvSame):
    """conv_same as the tutorials build it: no normalisation (it often collapses, see above)."""

    norm = False


@MODELS.register(
    "conv_pool",
    label="Conv AE, pooling + upsampling + BatchNorm",
    family="conv",
    convolutional=True,
    uses_latent=False,
    divisible_by=4,
    params={((1, 28, 28), 0): 3265},
)
class ConvPool(Autoencoder):
    """Conv 16 + max-pool, Conv 8 + max-pool | Conv 8 + upsample, Conv 16 + upsample, Conv C."""

    norm = True

    def __init__(self, shape, latent: int = 0, **options):
        super().__init__(shape, latent, **options)
        c, n = shape[0], self.norm
        self.encoder = nn.Sequential(
            *_hidden(_conv, c, 16, n),
            nn.MaxPool2d(2),
            *_hidden(_conv, 16, 8, n),
            nn.MaxPool2d(2),
        )
        self.decoder = nn.Sequential(
            *_hidden(_conv, 8, 8, n),
            nn.Upsample(scale_factor=2),
            *_hidden(_conv, 8, 16, n),
            nn.Upsample(scale_factor=2),
            _conv(16, c),
        )


@MODELS.register(
    "conv_pool_plain",
    label="Conv AE, pooling + upsampling, no BatchNorm (original)",
    family="conv",
    convolutional=True,
    uses_latent=False,
    divisible_by=4,
    params={((1, 28, 28), 0): 3217},
)
class ConvPoolPlain(ConvPool):
    """conv_pool without normalisation: the Keras blog's layers."""

    norm = False


@MODELS.register(
    "conv_transpose",
    label="Conv AE, transposed convolutions (4x4) + BatchNorm",
    family="conv",
    convolutional=True,
    uses_latent=False,
    divisible_by=4,
    params={((3, 32, 32), 0): 10_107},
)
class ConvTranspose(Autoencoder):
    """Conv 8 + pool, Conv 16 + pool | ConvT 16 s2, ConvT 16 s2, Conv C: the CIFAR-10 seed.

    Its transposed convs are 4x4 here and 3x3 in the original: a 3x3 kernel at stride 2 covers
    the output unevenly (every other row and column gets two taps instead of one or four; Odena
    et al. 2016, "Deconvolution and checkerboard artifacts"), and with it the BatchNorm model's
    first epoch depended on the seed: 14.6-17.5 dB over seeds 0-5 on MNIST at lr 3e-3 (two of
    six within 0.7 dB of the median filter), against 17.5-17.8 dB with 4x4 kernels."""

    norm = True
    up_kernel = 4

    def __init__(self, shape, latent: int = 0, **options):
        super().__init__(shape, latent, **options)
        c, n, k = shape[0], self.norm, self.up_kernel
        self.encoder = nn.Sequential(
            *_hidden(_conv, c, 8, n),
            nn.MaxPool2d(2),
            *_hidden(_conv, 8, 16, n),
            nn.MaxPool2d(2),
        )
        self.decoder = nn.Sequential(
            *_hidden(_up, 16, 16, n, kernel=k), *_hidden(_up, 16, 16, n, kernel=k), _conv(16, c)
        )


@MODELS.register(
    "conv_transpose_plain",
    label="Conv AE, transposed convolutions, no BatchNorm (original, 3x3)",
    family="conv",
    convolutional=True,
    uses_latent=False,
    divisible_by=4,
    params={((3, 32, 32), 0): 6467},
)
class ConvTransposePlain(ConvTranspose):
    """conv_transpose without normalisation, with 3x3 transposed convs: the CIFAR-10 seed."""

    norm = False
    up_kernel = 3
