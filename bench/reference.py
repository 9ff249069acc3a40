"""The reference trainers: models trained the way tutorials train them.

torchvision dataset + ToTensor + DataLoader(batch_size=128, shuffle=True), one PIL image at a time,
as in pytorch/examples' mnist/ and vae/ scripts. Used by the benchmarks as the baseline that our
trainer (aecore.train) is measured against, in the same process and the same run.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from aecore.config import TrainConfig
from aecore.models import build_model

TV_CLASSES = {"mnist": datasets.MNIST, "fashion_mnist": datasets.FashionMNIST}


def dataset(name: str, root: str, train: bool):
    """The torchvision dataset, each item a PIL image turned into a tensor by ToTensor."""
    return TV_CLASSES[name](root, train=train, download=False, transform=transforms.ToTensor())


def loader(name: str, root: str, train: bool, batch_size: int = 128) -> DataLoader:
    return DataLoader(dataset(name, root, train), batch_size=batch_size, shuffle=train)


def vae_loss(recon_x, x, mu, logvar):
    """pytorch/examples vae/main.py: BCE summed over the batch + KLD (Kingma & Welling, App. B)."""
    bce = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction="sum")
    kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return bce + kld


def vae_step(model, data):
    mu, logvar = model.posterior(data)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    recon = model.decode(z).view(-1, 784)
    return vae_loss(recon, data, mu, logvar)


def ae_step(model, data, corrupt_fn, loss: str):
    noisy = corrupt_fn(data)
    out = model(noisy)
    if loss == "bce":
        return F.binary_cross_entropy(out.clamp(1e-6, 1 - 1e-6), data)
    return F.mse_loss(out, data)


def train_epoch(model, opt, train_loader, step, device=None) -> float:
    """One epoch; returns seconds. Batches move to the device one by one, as in tutorials."""
    model.train()
    t0 = time.perf_counter()
    for data, _ in train_loader:
        if device is not None:
            data = data.to(device)
        opt.zero_grad()
        loss = step(model, data)
        loss.backward()
        opt.step()
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


@torch.no_grad()
def vae_test_loss(model, test_loader) -> float:
    """Average -ELBO per test image in nats, as pytorch/examples prints it."""
    model.eval()
    total = sum(float(vae_step(model, data)) for data, _ in test_loader)
    return total / len(test_loader.dataset)


def make_vae(latent: int = 20, seed: int = 0):
    torch.manual_seed(seed)
    return build_model("vae_mlp", (1, 28, 28), latent)


def build(cfg: TrainConfig):
    """cfg's model with cfg's seed: the same initial weights that aecore.train starts from."""
    torch.manual_seed(cfg.seed)
    return build_model(cfg.model, (1, 28, 28), cfg.latent, cfg.width)
