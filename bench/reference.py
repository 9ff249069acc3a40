"""The reference trainers: models trained the way tutorials train them.

torchvision dataset + ToTensor + DataLoader(batch_size=128, shuffle=True), one PIL image at a time,
as in pytorch/examples' mnist/ and vae/ scripts. Used by the benchmarks as the baseline that our
trainer (aecore.train) is measured against, in the same run.

    python -m bench.reference --config '{"model": "janet", "epochs": 2}' --device cpu

trains one configuration that way in a process of its own, as a tutorial script does (torch is
imported first, so OpenMP keeps its default wait policy), and prints one JSON line: each epoch's
seconds, the training images and the test loss (aecore.evaluate, as for our runs).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

from aecore.cli import peak_rss_mb
from aecore.config import TrainConfig
from aecore.corruptions import corrupt
from aecore.data import data_dir, load_dataset
from aecore.evaluate import evaluate
from aecore.models import build_model, is_variational
from aecore.train import split_indices

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
    return build_model(TrainConfig(model="vae_mlp", latent=latent), (1, 28, 28))


def build(cfg: TrainConfig):
    """cfg's model with cfg's seed: the same initial weights that aecore.train starts from."""
    torch.manual_seed(cfg.seed)
    return build_model(cfg, (1, 28, 28))


def train_indices(ds, cfg: TrainConfig) -> torch.Tensor:
    """The images our trainer learns from: the training set less the validation holdout."""
    train_idx, _ = split_indices(len(ds.train_images))
    return train_idx[: cfg.limit_train] if cfg.limit_train else train_idx


def reference_trainer(cfg: TrainConfig, device: torch.device, train_idx: torch.Tensor):
    """The tutorial trainer for cfg: (model, one_epoch() -> seconds, images per epoch). It learns
    from the same training images as ours (a Subset, as tutorials hold out validation images
    with random_split), so both take the same number of steps and their losses compare."""
    model = build(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data = dataset(cfg.dataset, str(data_dir()), train=True)
    data = Subset(data, train_idx.tolist())
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True)
    gen = torch.Generator(device).manual_seed(cfg.seed)
    if is_variational(cfg.model):
        step = vae_step
    else:

        def step(model, x):
            noise = lambda c: corrupt(cfg.corruption, c, cfg.level, gen)  # noqa: E731
            return ae_step(model, x, noise, "mse")

    def one_epoch() -> float:
        return train_epoch(model, opt, loader, step, device)

    return model, one_epoch, len(data)


def run(cfg: TrainConfig, device: str) -> dict:
    """Train cfg the tutorial way for cfg.epochs; epoch seconds, images and test loss."""
    ds = load_dataset(cfg.dataset)
    model, one_epoch, images = reference_trainer(cfg, torch.device(device), train_indices(ds, cfg))
    seconds = [one_epoch() for _ in range(cfg.epochs)]
    loss = evaluate(model, ds, cfg.corruption, cfg.level, cfg.loss)["test_loss"]
    return {
        "epoch_seconds": seconds,
        "images": images,
        "test_loss": loss,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="train one configuration the tutorial way")
    parser.add_argument("--config", required=True, help="TrainConfig fields as a JSON object")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    print(json.dumps(run(TrainConfig(**json.loads(args.config)), args.device)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
