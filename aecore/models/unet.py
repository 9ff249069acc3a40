"""A small U-Net-style conv autoencoder: two pooling levels, skip connections, residual output.

Ronneberger et al. (2015) built the U-Net for segmentation; here it is a denoiser. The skips hand
the decoder the full-resolution features of the input, and the output adds the decoder's
correction to the input itself (residual learning, as DnCNN does: Zhang et al. 2017), so the
network only learns which pixels to repair and what to put there, while the pooled path brings
context from ~20 pixels away. That is why it beats a median filter on salt and pepper, and why
it is no compressor: its code (every feature map the decoder reads, the input included) is larger
than the image.

Sized for a CPU: one 3x3 conv per stage, 16 channels at full resolution and 32 below it
(39k parameters on MNIST, about twice conv_same's time per epoch). `unet_wide` doubles both
(155k parameters, about 3x the time per epoch): the lab's strongest denoiser, the one that is
held against the best tuned classical methods (aecore.best_classical).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aecore.models.base import Autoencoder
from aecore.models.registry import MODELS
from aecore.models.regularizers import has_weight


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())


@MODELS.register(
    "unet",
    label="U-Net-style conv AE, skips + residual (16-32-32 | 32-16)",
    family="conv",
    convolutional=True,
    uses_latent=False,
    divisible_by=4,
    params={((1, 28, 28), 0): 39_457},
)
class UNet(Autoencoder):
    """enc1 (C1, H, W) -> pool, enc2 (C2, H/2, W/2) -> pool, mid (C2, H/4, W/4);
    up + concat enc2 -> dec2 (C2, H/2, W/2); up + concat enc1 -> dec1 (C1, H, W);
    output = input + 1x1 conv of dec1."""

    # Leaky ReLU, not sigmoid, as the final activation: it is the identity on [0, 1], so an
    # untouched pixel passes through exactly; a sigmoid would squash it and, at the 0s and 1s
    # of salt and pepper, give almost no gradient.
    output = "leaky_relu"
    c1, c2 = 16, 32  # channels at full and at half / quarter resolution

    def __init__(self, shape, latent: int = 0, **options):
        super().__init__(shape, latent, **options)
        c, h, w = shape
        C1, C2 = self.c1, self.c2
        self.enc1 = _stage(c, C1)
        self.pool1 = nn.MaxPool2d(2)
        self.enc2 = _stage(C1, C2)
        self.pool2 = nn.MaxPool2d(2)
        self.mid = _stage(C2, C2)
        self.up2 = nn.Upsample(scale_factor=2)
        self.dec2 = _stage(2 * C2, C2)
        self.up1 = nn.Upsample(scale_factor=2)
        self.dec1 = _stage(C2 + C1, C1)
        self.out = nn.Conv2d(C1, c, 1)
        # Shapes of the four parts of the code: the input and the three feature maps.
        self.code_shapes = [(c, h, w), (C1, h, w), (C2, h // 2, w // 2), (C2, h // 4, w // 4)]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> (N, D): x, enc1, enc2 and mid flattened and concatenated, so that
        decode(encode(x)) is the forward pass and codes can be interpolated like any other."""
        a = self.enc1(x)
        b = self.enc2(self.pool1(a))
        m = self.mid(self.pool2(b))
        return torch.cat([x.flatten(1), a.flatten(1), b.flatten(1), m.flatten(1)], 1)

    def decode_raw(self, z: torch.Tensor) -> torch.Tensor:
        sizes = [math.prod(s) for s in self.code_shapes]
        parts = zip(z.split(sizes, 1), self.code_shapes, strict=True)
        x, a, b, m = (part.reshape(-1, *s) for part, s in parts)
        return self._decode_parts(x, a, b, m)

    def _decode_parts(self, x, a, b, m) -> torch.Tensor:
        d = self.dec2(torch.cat([self.up2(m), b], 1))
        d = self.dec1(torch.cat([self.up1(d), a], 1))
        return x + self.out(d)  # residual: the network predicts a correction to its input

    def code_and_raw(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        if has_weight(self.regularizer):  # a penalty reads the code: build it
            return super().code_and_raw(x)
        # Straight through, without flattening the feature maps into a code and back: the
        # same numbers, 10-20% faster to train on a CPU.
        a = self.enc1(x)
        b = self.enc2(self.pool1(a))
        m = self.mid(self.pool2(b))
        return None, self._decode_parts(x, a, b, m)


@MODELS.register(
    "unet_wide",
    label="U-Net-style conv AE, wide (32-64-64 | 64-32)",
    family="conv",
    convolutional=True,
    uses_latent=False,
    divisible_by=4,
    params={((1, 28, 28), 0): 157_249},
)
class WideUNet(UNet):
    """The same network with twice the channels at every stage."""

    c1, c2 = 32, 64
