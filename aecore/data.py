"""Datasets as whole tensors: images (N, C, H, W) uint8, labels (N,) int64, class names.

Every dataset loads once per process and stays cached; training moves it to the device in one
piece instead of going through a per-sample DataLoader.

Where data lives: `AECORE_DATA_DIR`, else ~/.cache/aecore/data (torchvision's own layout, so a
folder that torchvision already downloaded into can be pointed at directly). A missing dataset is
downloaded by torchvision unless `AECORE_OFFLINE=1`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch

from aecore.registry import Registry


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


def select_classes(ds: ImageDataset, classes: str) -> ImageDataset:
    """ds with only the training images of `classes` ("0,3": TrainConfig's form; "" = all). The
    test set is kept whole, so a model can be tested on what it never saw."""
    if not classes:
        return ds
    wanted = torch.tensor([int(c) for c in classes.split(",")])
    keep = torch.isin(ds.train_labels, wanted)
    return replace(ds, train_images=ds.train_images[keep], train_labels=ds.train_labels[keep])


def data_dir() -> Path:
    from aecore import settings  # the one reader of the environment

    return settings.current().data_dir


def offline() -> bool:
    from aecore import settings

    return settings.current().offline


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [0, 1]."""
    return images.float().div_(255.0)


def _nchw(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(images))
    if x.ndim == 3:  # (N, H, W) grayscale
        return x.unsqueeze(1).contiguous()
    return x.permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)


# What a dataset's function returns: train images, train labels, test images, test labels (uint8
# (N, C, H, W) and int64 (N,)) and the class names. load_dataset names and caches it.
Splits = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, tuple[str, ...]]


class _NotOnDisk(Exception):
    """torchvision found no copy and could not download one; load_dataset words the message,
    since the entry's meta (its label) is there."""


def _torchvision(cls_name: str, root: Path) -> Splits:
    """Both splits of a torchvision dataset kept under root in torchvision's own layout."""
    from torchvision import datasets

    cls = getattr(datasets, cls_name)
    try:
        train, test = (cls(str(root), train=t, download=not offline()) for t in (True, False))
    except (RuntimeError, URLError, OSError) as err:
        raise _NotOnDisk(err) from err
    return (
        _nchw(train.data),
        torch.as_tensor(train.targets, dtype=torch.int64),
        _nchw(test.data),
        torch.as_tensor(test.targets, dtype=torch.int64),
        tuple(train.classes),
    )


# One registered function per dataset; its meta holds every fact the rest of aecore reads:
# `label`; `shape` (C, H, W); `folder`, where torchvision keeps it under the data folder (None: it
# is bundled with a dependency); `train_size` and `test_size`, its images (the cost estimate of a
# run needs them before the data loads); `upload_layout`, how an uploaded picture is made to look
# like its images (aecore.images); `sweep_epochs`, the code-size sweep's training length
# (aecore.sweep); `classifier`, settings of the Compare page's classifier (aecore.classifier);
# `num_classes`, how many classes its labels count (TrainConfig.classes picks among them).
DATASETS = Registry(
    "dataset",
    required=("label", "shape", "train_size", "test_size"),
    defaults={
        "folder": None,
        "upload_layout": "crop",
        "sweep_epochs": 20,
        "classifier": {},
        "num_classes": 10,
    },
)


@DATASETS.register(
    "digits",
    label="Digits 8x8 (bundled, offline)",
    shape=(1, 8, 8),
    train_size=1500,
    test_size=297,
    upload_layout="digits",
    sweep_epochs=200,  # 12 batches an epoch: 20 epochs would leave the codes untrained
    classifier={"epochs": 30, "lr": 3e-3},  # ~4 s on one core, 93.6% (3 epochs: too few steps)
)
def load_digits(root: Path) -> Splits:
    """scikit-learn's 1,797 handwritten digits: ships with the package, needs no network."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = torch.from_numpy(np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8))
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    n_train = DATASETS["digits"].meta["train_size"]  # a fixed split: the last 297 are the test set
    images = images.unsqueeze(1)
    classes = tuple(str(d) for d in range(10))
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:], classes


@DATASETS.register(
    "mnist",
    label="MNIST",
    shape=(1, 28, 28),
    folder="MNIST",
    train_size=60000,
    test_size=10000,
    upload_layout="mnist",
)
def load_mnist(root: Path) -> Splits:
    return _torchvision("MNIST", root)


@DATASETS.register(
    "fashion_mnist",
    label="Fashion-MNIST",
    shape=(1, 28, 28),
    folder="FashionMNIST",
    train_size=60000,
    test_size=10000,
    upload_layout="fashion",
)
def load_fashion_mnist(root: Path) -> Splits:
    return _torchvision("FashionMNIST", root)


@DATASETS.register(
    "kmnist",
    label="Kuzushiji-MNIST",
    shape=(1, 28, 28),
    folder="KMNIST",
    train_size=60000,
    test_size=10000,
)
def load_kmnist(root: Path) -> Splits:
    """Ten cursive hiragana (Clanuwat et al. 2018), drawn like MNIST's digits."""
    return _torchvision("KMNIST", root)


@DATASETS.register(
    "cifar10",
    label="CIFAR-10 (colour)",
    shape=(3, 32, 32),
    folder="cifar-10-batches-py",
    train_size=50000,
    test_size=10000,
)
def load_cifar10(root: Path) -> Splits:
    return _torchvision("CIFAR10", root)


def _unavailable(label: str, root: Path, err: BaseException | None) -> DatasetUnavailable:
    download = not offline()
    how = (
        "unset AECORE_OFFLINE to let torchvision download it"
        if not download
        else "connect to the internet so torchvision can download it"
    )
    why = "downloads are switched off here" if not download else "no connection, it seems"
    bundled = [_short(e.label) for e in DATASETS if e.meta["folder"] is None]
    return DatasetUnavailable(
        f"{_short(label)} is not on this computer and could not be downloaded ({why}). The "
        f"built-in {bundled[0]} dataset works without it: pick it under Dataset.",
        f"{_short(label)} is not in {root} and could not be downloaded ({err}). Either {how}, "
        "or set AECORE_DATA_DIR to a folder that holds it in torchvision's layout.",
    )


def _short(label: str) -> str:
    """A label without its parenthesis: "CIFAR-10 (colour)" -> "CIFAR-10"."""
    return re.sub(r"\s*\(.*?\)", "", label).strip()


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
            try:
                splits = entry.fn(root)
            except _NotOnDisk as missing:
                cause = missing.__cause__  # torchvision's error: the log shows it
                raise _unavailable(entry.label, root, cause) from cause
            _cache[key] = ImageDataset(name, *splits)
        return _cache[key]


def available_offline(name: str, root: Path | str | None = None) -> bool:
    """Whether a dataset can be loaded without the network (already on disk, or bundled)."""
    root = Path(root) if root is not None else data_dir()
    if name not in DATASETS:
        return False
    folder = DATASETS[name].meta["folder"]  # None: bundled with a dependency
    return folder is None or (root / folder).exists()
