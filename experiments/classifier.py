"""A small CNN classifier, to ask whether a denoiser's output is *useful*, not only close in PSNR.

Trained once on clean training images and cached as a state_dict in the runs folder.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from aecore.checkpoints import runs_dir
from aecore.data import ImageDataset, to_float


class SmallCNN(nn.Module):
    """conv 32 + pool, conv 64 + pool, linear 128, linear 10 (pytorch/examples' MNIST net)."""

    def __init__(self, channels: int = 1, side: int = 28, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(64 * (side // 4) ** 2, 128), nn.ReLU(), nn.Linear(128, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # logits (N, classes)


def train_classifier(
    ds: ImageDataset, epochs: int = 2, limit: int = 0, seed: int = 0, batch: int = 64
) -> SmallCNN:
    """Train on clean training images (the first `limit`, 0 = all), or load the cached model."""
    path = runs_dir() / f"classifier-{ds.name}-e{epochs}-n{limit}-s{seed}.pt"
    torch.manual_seed(seed)
    model = SmallCNN(ds.shape[0], ds.shape[1], len(ds.classes))
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    x = to_float(ds.train_images[: limit or None])
    y = ds.train_labels[: limit or None]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.eval()


@torch.no_grad()
def accuracy(model: SmallCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images (N, C, H, W) in [0, 1] classified as their label."""
    model.eval()
    preds = torch.cat([model(x).argmax(1) for x in images.split(1000)])
    return float((preds == labels).float().mean())
