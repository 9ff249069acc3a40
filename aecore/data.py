"""Datasets as whole tensors: images (N, C, H, W) uint8, labels (N,) int64, class names.

Every dataset loads once per process and stays cached; training moves it to the device in one
piece instead of going through a per-sample DataLoader.

Where data lives: `AECORE_DATA_DIR`, else ~/.cache/aecore/data (torchvision's own layout, so a
folder that torchvision already downloaded into can be pointed at directly). A missing dataset is
downloaded by torchvision unless `AECORE_OFFLINE=1`.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from aecore.registry import Registry

DATASETS = Registry("dataset")


class DatasetUnavailable(RuntimeError):
    """A dataset is neither on disk nor downloadable. The message is plain words for a page;
    `detail` holds the folder, the cause and the settings that fix it, for logs and the CLI."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class ImageDataset:
    name: str
    train_images: torch.Tensor  # (N, C, H, W) uint8
    train_labels: torch.Tensor  # (N,) int64
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: tuple[str, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        c, h, w = self.train_images.shape[1:]
        return int(c), int(h), int(w)


def data_dir() -> Path:
    return Path(os.environ.get("AECORE_DATA_DIR") or Path.home() / ".cache" / "aecore" / "data")


def offline() -> bool:
    return os.environ.get("AECORE_OFFLINE", "") not in ("", "0", "false", "False")


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1]."""
    return images.float().div_(255.0)


def _nchw(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images))
    if x.ndim == 3:  # (N, H, W) grayscale
        return x.unsqueeze(1).contiguous()
    return x.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)


def _torchvision(cls_name: str, label: str, root: Path):
    from torchvision import datasets

    cls = getattr(datasets, cls_name)
    download = not offline()
    try:
        splits = [cls(str(root), train=train, download=download) for train in (True, False)]
    except (RuntimeError, URLError, OSError) as err:
        how = (
            "unset AECORE_OFFLINE to let torchvision download it"
            if not download
            else "connect to the internet so torchvision can download it"
        )
        why = "downloads are switched off here" if not download else "no connection, it seems"
        raise DatasetUnavailable(
            f"{label} is not on this computer and could not be downloaded ({why}). The "
            "built-in Digits 8x8 dataset works without it: pick it under Dataset.",
            f"{label} is not in {root} and could not be downloaded ({err}). Either {how}, "
            "or set AECORE_DATA_DIR to a folder that holds it in torchvision's layout.",
        ) from err
    train, test = splits
    return (
        _nchw(train.data),
        torch.as_tensor(train.targets, dtype=torch.int64),
        _nchw(test.data),
        torch.as_tensor(test.targets, dtype=torch.int64),
        tuple(train.classes),
    )


# `train_size`: training images (the cost estimate of a run needs it before the data loads).
@DATASETS.register(
    "digits", label="Digits 8x8 (bundled, offline)", shape=(1, 8, 8), train_size=1500
)
def load_digits(root: Path) -> ImageDataset:
    """scikit-learn's 1,797 handwritten digits: ships with the package, needs no network."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8))
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    # A fixed split: the last 297 images (about a sixth) are the test set.
    n_train = 1500
    images = images.unsqueeze(1)
    classes = tuple(str(d) for d in range(10))
    return ImageDataset(
        "digits", images[:n_train], labels[:n_train], images[n_train:], labels[n_train:], classes
    )


# `folder`: where torchvision keeps the dataset under the data folder (none: it is bundled).
@DATASETS.register("mnist", label="MNIST", shape=(1, 28, 28), folder="MNIST", train_size=60000)
def load_mnist(root: Path) -> ImageDataset:
    return ImageDataset("mnist", *_torchvision("MNIST", "MNIST", root))


@DATASETS.register(
    "fashion_mnist",
    label="Fashion-MNIST",
    shape=(1, 28, 28),
    folder="FashionMNIST",
    train_size=60000,
)
def load_fashion_mnist(root: Path) -> ImageDataset:
    return ImageDataset("fashion_mnist", *_torchvision("FashionMNIST", "Fashion-MNIST", root))


@DATASETS.register(
    "cifar10",
    label="CIFAR-10 (colour)",
    shape=(3, 32, 32),
    folder="cifar-10-batches-py",
    train_size=50000,
)
def load_cifar10(root: Path) -> ImageDataset:
    return ImageDataset("cifar10", *_torchvision("CIFAR10", "CIFAR-10", root))


_cache: dict[tuple[str, str], ImageDataset] = {}
_locks: dict[tuple[str, str], threading.Lock] = {}  # one per dataset and folder
_locks_lock = threading.Lock()


def load_dataset(name: str, root: Path | str | None = None) -> ImageDataset:
    """Load a registered dataset once per process (thread-safe) and return it from cache after.
    Each dataset has its own lock, so a long download of one never holds up another."""
    entry = DATASETS[name]
    root = Path(root) if root is not None else data_dir()
    key = (name, str(root.resolve()))
    cached = _cache.get(key)
    if cached is not None:
        return cached
    with _locks_lock:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        if key not in _cache:
            _cache[key] = entry.fn(root)
        return _cache[key]


def available_offline(name: str, root: Path | str | None = None) -> bool:
    """Whether a dataset can be loaded without the network (already on disk, or bundled)."""
    root = Path(root) if root is not None else data_dir()
    if name not in DATASETS:
        return False
    folder = DATASETS[name].meta.get("folder")  # None: bundled with a dependency
    return folder is None or (root / folder).exists()
