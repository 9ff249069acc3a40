"""A small U-Net-style conv autoencoder: two pooling levels with skip connections.

Ronneberger et al. (2015) built the U-Net for segmentation; here it is a denoiser. The skips hand
the decoder the full-resolution features of the input, so it only has to learn which pixels to
repair and what to put there, while the pooled path supplies context from up to ~20 pixels away.
That is why it beats a median filter on salt and pepper, and why it is no compressor: its code
(every feature map the decoder reads) is larger than the image.

Sized for a CPU: one 3x3 conv per stage, 16 channels at full resolution and 32 below it
(about 40k parameters on MNIST, roughly twice conv_same's time per epoch).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from aecore.models.base import Autoencoder
from aecore.models.registry import MODELS

C1, C2 = 16, 32  # channels at full and at half / quarter resolution


def _stage(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU())


@MODELS.register(
    "unet",
    label="U-Net-style conv AE, skip connections (16-32-32 | 32-16)",
    family="conv",
    uses_latent=False,
    divisible_by=4,
    params={((1, 28, 28), 0): 39_457},
)
class UNet(Autoencoder):
    output = "leaky_relu"  # linear above 0, so the residual passes the input through unchanged

    """enc1 (C1, H, W) -> pool, enc2 (C2, H/2, W/2) -> pool, mid (C2, H/4, W/4);
    up + concat enc2 -> dec2 (C2, H/2, W/2); up + concat enc1 -> dec1 (C1, H, W); 1x1 conv -> C."""

    def __init__(self, shape, latent: int = 0, **_):
        super().__init__(shape, latent)
        c, h, w = shape
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
        # Shapes of the three feature maps that together form the code.
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
        d = self.dec2(torch.cat([self.up2(m), b], 1))
        d = self.dec1(torch.cat([self.up1(d), a], 1))
        return x + self.out(d)  # residual: the network predicts a correction to its input
