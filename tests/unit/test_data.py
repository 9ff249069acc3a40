"""aecore.data: bundled digits, MNIST / Fashion-MNIST from disk, and torchvision's download path.

Download tests run torchvision's real download, md5 check and extraction against files served from
127.0.0.1; only the URLs and checksums on the torchvision classes are patched.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision import datasets as tv

from aecore import data
from aecore.data import DatasetUnavailable, available_offline, load_dataset
from tests.datafiles import (
    CIFAR10_LABEL_NAMES,
    Cifar10Archive,
    digit_images,
    write_cifar10_archive,
    write_idx_dataset,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
MNIST_CLASSES = (
    "0 - zero",
    "1 - one",
    "2 - two",
    "3 - three",
    "4 - four",
    "5 - five",
    "6 - six",
    "7 - seven",
    "8 - eight",
    "9 - nine",
)


def idx_count(path: Path) -> int:
    """Number of records an IDX file says it holds (the int32 after the magic number)."""
    with open(path, "rb") as f:
        return struct.unpack(">ii", f.read(8))[1]


def free_port() -> int:
    """A port nothing listens on (the OS picked it free; closing the socket leaves it unused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_image_dataset(ds: data.ImageDataset, shape: tuple[int, int, int]) -> None:
    """The ImageDataset contract: uint8 (N, C, H, W) images, int64 labels 0..9, 10 classes."""
    for images, labels in ((ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)):
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape[1:] == shape and images.is_contiguous()
        assert labels.shape == (len(images),)
        assert set(labels.unique().tolist()) == set(range(10))
    assert ds.shape == shape
    assert len(ds.classes) == 10


# --- the session environment (set by conftest) ----------------------------------------------


def test_session_is_offline_and_sandboxed(data_root: Path) -> None:
    from aecore.checkpoints import runs_dir

    assert data.offline()
    assert data.data_dir() == data_root
    assert Path.home() / ".cache" not in runs_dir().resolve().parents


# --- digits: bundled, offline ---------------------------------------------------------------


def test_digits_load_offline_from_an_empty_data_dir(use_data_dir, tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    use_data_dir(tmp_path / "empty")
    ds = load_dataset("digits")

    assert_image_dataset(ds, (1, 8, 8))
    assert (len(ds.train_images), len(ds.test_images)) == (1500, 297)
    assert ds.classes == tuple("0123456789")
    # Fixed split: the last 297 of scikit-learn's images, rescaled from 0..16 to 0..255.
    target = load_digits().target
    assert ds.test_labels.tolist() == target[1500:].tolist()
    assert int(ds.train_images.max()) == 255
    assert available_offline("digits")


# --- MNIST / Fashion-MNIST from the session's data dir --------------------------------------


@pytest.mark.parametrize(
    ("name", "folder", "classes"),
    [("mnist", "MNIST", MNIST_CLASSES), ("fashion_mnist", "FashionMNIST", FASHION_CLASSES)],
)
def test_loads_from_session_data_dir(
    name: str, folder: str, classes: tuple[str, ...], data_root: Path, real_data: bool
) -> None:
    ds = load_dataset(name)  # whatever AECORE_DATA_DIR the conftest chose

    assert_image_dataset(ds, (1, 28, 28))
    assert ds.classes == classes
    raw = data_root / folder / "raw"
    assert len(ds.train_images) == idx_count(raw / "train-images-idx3-ubyte")
    assert len(ds.test_images) == idx_count(raw / "t10k-images-idx3-ubyte")
    if real_data:
        assert (len(ds.train_images), len(ds.test_images)) == (60_000, 10_000)
    # Dark background, bright strokes: MNIST's mean pixel is 33, Fashion-MNIST's 73. Catches
    # images read at the wrong offset or as the wrong dtype, which look like noise.
    mean = ds.train_images[:5000].float().mean().item()
    assert 10 < mean < 100
    assert int(ds.train_images.max()) == 255 and int(ds.train_images.min()) == 0
    assert available_offline(name)


def test_fashion_mnist_test_split_is_class_balanced() -> None:
    # Both the shared data (1,000 per class) and the synthetic data are balanced by construction.
    counts = torch.bincount(load_dataset("fashion_mnist").test_labels, minlength=10)
    assert (counts == counts[0]).all()


@pytest.mark.parametrize(
    ("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")]
)
def test_loads_idx_files_written_in_real_format(
    name: str, folder: str, tmp_path: Path, fresh_data_cache: None
) -> None:
    written = write_idx_dataset(tmp_path, folder, n_train=120, n_test=40)

    ds = load_dataset(name, tmp_path)

    assert_image_dataset(ds, (1, 28, 28))
    assert torch.equal(ds.train_images[:, 0], torch.from_numpy(written.train_images))
    assert torch.equal(ds.test_images[:, 0], torch.from_numpy(written.test_images))
    assert ds.train_labels.tolist() == written.train_labels.tolist()
    assert ds.test_labels.tolist() == written.test_labels.tolist()
    # Cached per (name, root): a second call is the same object, not a second read.
    assert load_dataset(name, tmp_path) is ds


def test_synthetic_digits_carry_class_structure() -> None:
    # The fallback data must be learnable, or training tests on a fresh machine prove nothing:
    # a nearest-class-mean classifier does far better than chance (10 %).
    rng = np.random.default_rng(1)
    train_y, test_y = rng.integers(0, 10, 500), rng.integers(0, 10, 200)
    train_x = digit_images(train_y, seed=2).reshape(500, -1).astype(np.float32)
    test_x = digit_images(test_y, seed=3).reshape(200, -1).astype(np.float32)
    means = np.stack([train_x[train_y == c].mean(axis=0) for c in range(10)])
    predicted = ((test_x[:, None] - means[None]) ** 2).sum(axis=-1).argmin(axis=1)
    assert (predicted == test_y).mean() > 0.5


# --- missing datasets, offline --------------------------------------------------------------


def test_cli_reports_missing_dataset_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    env = os.environ | {
        "AECORE_OFFLINE": "1",
        "AECORE_DATA_DIR": str(tmp_path / "data"),
        "AECORE_RUNS_DIR": str(tmp_path / "runs"),
    }
    argv = ["train", "--dataset", "cifar10", "--epochs", "1"]

    proc = subprocess.run(
        [sys.executable, "-m", "aecore", *argv],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "CIFAR-10" in lines[0] and "AECORE_OFFLINE" in lines[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_downloads_can_only_reach_loopback(allow_download: None) -> None:
    # The guard the download tests rely on: a URL left unpatched fails the test, not the network.
    with pytest.raises(AssertionError, match="tried to reach example.com"):
        urllib.request.urlopen("http://example.com/", timeout=5)


# --- CIFAR-10 download from a loopback server -----------------------------------------------


@pytest.fixture
def cifar_mirror(tmp_path: Path) -> Cifar10Archive:
    return write_cifar10_archive(tmp_path / "mirror" / "cifar-10-python.tar.gz", n_per_batch=20)


def patch_cifar10(monkeypatch: pytest.MonkeyPatch, archive: Cifar10Archive, url: str) -> None:
    for attr, value in archive.torchvision_attrs(url).items():
        monkeypatch.setattr(tv.CIFAR10, attr, value)


def test_cifar10_downloads_checks_and_extracts(
    cifar_mirror: Cifar10Archive,
    loopback_server,
    allow_download: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fresh_data_cache: None,
) -> None:
    server = loopback_server(cifar_mirror.path.parent)
    patch_cifar10(monkeypatch, cifar_mirror, server.url + cifar_mirror.path.name)
    root = tmp_path / "data"

    ds = load_dataset("cifar10", root)

    assert_image_dataset(ds, (3, 32, 32))
    assert (len(ds.train_images), len(ds.test_images)) == (100, 20)
    # torchvision hands out HWC; the loader must give back exactly the CHW planes written.
    assert torch.equal(ds.train_images, torch.from_numpy(cifar_mirror.train_images))
    assert torch.equal(ds.test_images, torch.from_numpy(cifar_mirror.test_images))
    assert ds.train_labels.tolist() == cifar_mirror.train_labels.tolist()
    assert ds.test_labels.tolist() == cifar_mirror.test_labels.tolist()
    assert ds.classes == CIFAR10_LABEL_NAMES
    assert "/cifar-10-python.tar.gz" in server.requests
    assert (root / "cifar-10-batches-py" / "batches.meta").is_file()
    assert available_offline("cifar10", root)


def test_cifar10_pixels_would_expose_a_layout_mistake(cifar_mirror: Cifar10Archive) -> None:
    # The exact-pixel check above is only meaningful if the written images are not symmetric
    # under the mistakes a loader could make: swapped channels or swapped height and width.
    images = torch.from_numpy(cifar_mirror.train_images)
    assert not torch.equal(images, images.transpose(2, 3))
    assert not torch.equal(images[:, 0], images[:, 1])
    assert not torch.equal(images[:, 0], images[:, 2])


def test_cifar10_corrupt_download_is_unavailable(
    cifar_mirror: Cifar10Archive,
    loopback_server,
    allow_download: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fresh_data_cache: None,
) -> None:
    server = loopback_server(cifar_mirror.path.parent)
    patch_cifar10(monkeypatch, cifar_mirror, server.url + cifar_mirror.path.name)
    monkeypatch.setattr(tv.CIFAR10, "tgz_md5", "0" * 32)  # what a truncated download looks like

    with pytest.raises(DatasetUnavailable, match="could not be downloaded"):
        load_dataset("cifar10", tmp_path / "data")
    assert server.requests  # it did fetch, then refused the checksum


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_download_with_server_down_is_unavailable(
    name: str,
    cifar_mirror: Cifar10Archive,
    allow_download: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fresh_data_cache: None,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/"
    patch_cifar10(monkeypatch, cifar_mirror, url + cifar_mirror.path.name)
    monkeypatch.setattr(tv.MNIST, "mirrors", [url])
    root = tmp_path / "data"

    with pytest.raises(DatasetUnavailable) as err:
        load_dataset(name, root)

    message, detail = str(err.value), err.value.detail
    assert "could not be downloaded" in message and str(root) in detail
    assert "AECORE_DATA_DIR" in detail
    assert not data._cache


# --- MNIST download (gzipped IDX, like the mirrors serve) -----------------------------------


def test_mnist_downloads_gzipped_idx_from_mirror(
    loopback_server,
    allow_download: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fresh_data_cache: None,
) -> None:
    mirror = write_idx_dataset(tmp_path / "mirror", "MNIST", n_train=100, n_test=30, gz=True)
    server = loopback_server(mirror.raw_dir)
    monkeypatch.setattr(tv.MNIST, "mirrors", [server.url])
    monkeypatch.setattr(tv.MNIST, "resources", mirror.resources())
    root = tmp_path / "data"

    ds = load_dataset("mnist", root)

    assert_image_dataset(ds, (1, 28, 28))
    assert torch.equal(ds.train_images[:, 0], torch.from_numpy(mirror.train_images))
    assert torch.equal(ds.test_images[:, 0], torch.from_numpy(mirror.test_images))
    assert ds.test_labels.tolist() == mirror.test_labels.tolist()
    assert {f"/{name}" for name, _ in mirror.resources()} <= set(server.requests)
    assert (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()  # gunzipped in place


def test_a_slow_download_holds_up_no_other_dataset(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_data_cache: None
) -> None:
    """A cached (or bundled) dataset loads at once while another one is still downloading."""
    import threading

    started, release = threading.Event(), threading.Event()

    def slow_download(root: Path):
        started.set()
        release.wait(30)
        raise DatasetUnavailable("gave up", "test")

    entry = data.DATASETS["cifar10"]
    monkeypatch.setitem(
        data.DATASETS._entries, "cifar10", type(entry)(entry.name, slow_download, entry.meta)
    )

    def download() -> None:
        with pytest.raises(DatasetUnavailable):
            load_dataset("cifar10", tmp_path)

    downloader = threading.Thread(target=download)
    downloader.start()
    try:
        assert started.wait(10)
        done = threading.Event()
        threading.Thread(target=lambda: (load_dataset("digits", tmp_path), done.set())).start()
        assert done.wait(20), "digits waited behind the cifar10 download"
    finally:
        release.set()
        downloader.join(30)
