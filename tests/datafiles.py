"""Small datasets written in the real on-disk formats, for tests (plain functions, no pytest).

- `write_idx_dataset`: MNIST / Fashion-MNIST as IDX files in torchvision's layout
  (`<root>/<folder>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`, optionally gzipped the way
  the download mirrors serve them). The images are synthetic seven-segment digits with a random
  position, size, slant and stroke width, drawn with soft (blurred) edges: structured enough that
  an autoencoder or a nearest-mean classifier learns something, unlike pure noise.
- `write_cifar10_archive`: a `cifar-10-python.tar.gz` laid out and pickled like the real one
  (Python 2 pickles whose str keys torchvision reads with encoding="latin1").
- `write_torchvision_layout`: whichever of the two a torchvision dataset folder needs (any
  MNIST-style class: IDX; CIFAR-10: the extracted pickles), found from torchvision's classes, so a
  test can write every registered dataset without naming it.
- `serve_directory`: a loopback HTTP server in a background thread, for download paths.

Every writer returns the arrays it wrote and the md5 sums torchvision checks, so a test can patch
torchvision's class attributes and compare what the loader returns with what was written.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import io
import pickle
import struct
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
IDX_IMAGES_MAGIC = 2051  # 0x0803: unsigned byte, 3 dimensions
IDX_LABELS_MAGIC = 2049  # 0x0801: unsigned byte, 1 dimension

CIFAR10_LABEL_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


# --- IDX (MNIST, Fashion-MNIST) -------------------------------------------------------------

# Seven-segment glyph: segment endpoints (x0, y0, x1, y1) in a unit box, y pointing down.
_SEGMENTS = {
    "a": (0.0, 0.0, 1.0, 0.0),
    "b": (1.0, 0.0, 1.0, 0.5),
    "c": (1.0, 0.5, 1.0, 1.0),
    "d": (0.0, 1.0, 1.0, 1.0),
    "e": (0.0, 0.5, 0.0, 1.0),
    "f": (0.0, 0.0, 0.0, 0.5),
    "g": (0.0, 0.5, 1.0, 0.5),
}
_DIGITS = ("abcdef", "bc", "abdeg", "abcdg", "bcfg", "acdfg", "acdefg", "abc", "abcdefg", "abcdfg")
_ACTIVE = np.array([[s in _DIGITS[d] for s in _SEGMENTS] for d in range(10)])  # (10, 7)


def digit_images(labels: np.ndarray, size: int = 28, seed: int = 0) -> np.ndarray:
    """(N, size, size) uint8 seven-segment digits with per-image random geometry."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    # Per-image geometry, in pixels (ranges scaled from a 28-pixel canvas).
    k = size / 28
    cx, cy = size / 2 + rng.normal(0, 1.2 * k, (2, n))
    w, h = rng.uniform(7 * k, 11 * k, n), rng.uniform(13 * k, 17 * k, n)
    slant = rng.uniform(-0.25, 0.25, n)
    sigma = rng.uniform(0.8 * k, 1.4 * k, n)
    # float32 keeps the (N, 7, size*size) distance arrays small and quick to compute.
    cx, cy, w, h, slant, sigma = (a.astype(np.float32) for a in (cx, cy, w, h, slant, sigma))

    seg = np.array(list(_SEGMENTS.values()), dtype=np.float32)  # (7, 4)

    def to_pixels(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # Unit-box coordinates (7,) -> pixel coordinates (N, 7), slanted like handwriting.
        du, dv = u[None] - 0.5, v[None] - 0.5
        y = cy[:, None] + dv * h[:, None]
        x = cx[:, None] + du * w[:, None] - slant[:, None] * dv * h[:, None]
        return x, y

    x0, y0 = to_pixels(seg[:, 0], seg[:, 1])
    x1, y1 = to_pixels(seg[:, 2], seg[:, 3])

    # Distance of every pixel centre to every segment: (N, 7, size*size).
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    px, py = xx.ravel()[None, None], yy.ravel()[None, None]
    dx, dy = (x1 - x0)[..., None], (y1 - y0)[..., None]
    t = ((px - x0[..., None]) * dx + (py - y0[..., None]) * dy) / (dx**2 + dy**2)
    t = np.clip(t, 0.0, 1.0)
    dist2 = (px - x0[..., None] - t * dx) ** 2 + (py - y0[..., None] - t * dy) ** 2

    # A Gaussian stroke profile is a blurred pen line; inactive segments are not drawn.
    ink = np.exp(-dist2 / (2 * sigma[:, None, None] ** 2)) * _ACTIVE[labels][..., None]
    img = ink.max(axis=1).reshape(n, size, size)
    img = img + rng.normal(0, 0.02, img.shape).astype(
        np.float32
    )  # a little sensor noise, like scanned digits
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def _idx_bytes(array: np.ndarray) -> bytes:
    magic = IDX_IMAGES_MAGIC if array.ndim == 3 else IDX_LABELS_MAGIC
    header = struct.pack(f">{1 + array.ndim}i", magic, *array.shape)  # big-endian int32s
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


@dataclass
class IdxDataset:
    raw_dir: Path
    md5s: dict[str, str]  # file name as written (".gz" when gzipped) -> md5
    train_images: np.ndarray  # (N, 28, 28) uint8
    train_labels: np.ndarray  # (N,) uint8
    test_images: np.ndarray
    test_labels: np.ndarray

    def resources(self) -> list[tuple[str, str]]:
        """(file name, md5) pairs in the order of torchvision's `MNIST.resources`."""
        return list(self.md5s.items())


def write_idx_dataset(
    root: Path | str,
    folder: str = "MNIST",
    n_train: int = 2000,
    n_test: int = 500,
    gz: bool = False,
    seed: int = 0,
) -> IdxDataset:
    """Write `<root>/<folder>/raw/*-ubyte` (or `*-ubyte.gz`) holding synthetic digits."""
    raw_dir = Path(root) / folder / "raw"
    raw_dir.mkdir(parents=True, exist_ok=True)
    # A different seed per folder, so MNIST and Fashion-MNIST test data are not identical.
    seed = seed + sum(folder.encode())
    rng = np.random.default_rng(seed)
    splits = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)  # balanced classes
        splits[split] = (digit_images(labels, seed=seed + len(splits) + 1), labels)

    md5s = {}
    for name in IDX_FILES:
        split, kind = name.split("-")[:2]
        payload = _idx_bytes(splits[split][0 if kind == "images" else 1])
        if gz:
            name, payload = name + ".gz", gzip.compress(payload, mtime=0)
        (raw_dir / name).write_bytes(payload)
        md5s[name] = md5(raw_dir / name)
    return IdxDataset(raw_dir, md5s, *splits["train"], *splits["t10k"])


# --- CIFAR-10 -------------------------------------------------------------------------------


class _Py2Pickler(pickle._Pickler):
    """Pickles `bytes` as Python 2 pickled its `str` (SHORT_BINSTRING / BINSTRING).

    The real CIFAR-10 files were written by Python 2, so their keys load as `str` with
    encoding="latin1" (what torchvision uses) and as `bytes` with encoding="bytes". Python 3's own
    pickler would write bytes keys that load as bytes whatever the encoding, so the archive would
    not be the real format.
    """

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def _py2_pickle(obj: object) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    return buf.getvalue()


def colour_images(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """(N, 3, 32, 32) uint8: a class-coloured blob on a gradient, plus noise.

    The three channels differ and no image is symmetric, so a loader that mixes up channel order
    or swaps height and width returns different pixels.
    """
    rng = np.random.default_rng(seed)
    n = len(labels)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32) / 31
    hue = labels / 10 * 2 * np.pi
    colour = 0.5 + 0.5 * np.stack([np.cos(hue), np.cos(hue - 2.1), np.cos(hue + 2.1)], axis=1)
    cx, cy = rng.uniform(0.25, 0.75, (2, n, 1, 1))
    blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.03)  # (N, 32, 32)
    background = np.stack([yy * 0.6, xx * 0.4, (1 - yy) * 0.3])  # (3, 32, 32)
    img = background[None] * (1 - blob[:, None]) + colour[..., None, None] * blob[:, None]
    img = img + rng.normal(0, 0.05, img.shape)
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


@dataclass
class Cifar10Archive:
    path: Path  # the .tar.gz
    tgz_md5: str
    train_list: list[list[str]]  # [[file name, md5], ...] like CIFAR10.train_list
    test_list: list[list[str]]
    meta_md5: str
    train_images: np.ndarray  # (N, 3, 32, 32) uint8, as load_dataset should return them
    train_labels: np.ndarray  # (N,) int64
    test_images: np.ndarray
    test_labels: np.ndarray
    label_names: tuple[str, ...] = field(default=CIFAR10_LABEL_NAMES)

    def torchvision_attrs(self, url: str) -> dict[str, object]:
        """Class attributes of `torchvision.datasets.CIFAR10` that make it fetch this archive."""
        return {
            "url": url,
            "tgz_md5": self.tgz_md5,
            "train_list": self.train_list,
            "test_list": self.test_list,
            "meta": {"filename": "batches.meta", "key": "label_names", "md5": self.meta_md5},
        }


def _cifar_batch(label: str, images: np.ndarray, labels: np.ndarray, offset: int) -> dict:
    return {
        b"batch_label": label.encode(),
        b"labels": [int(y) for y in labels],
        # Row-major: the 1,024 red values of an image, then its green, then its blue.
        b"data": images.reshape(len(images), 3 * 32 * 32),
        b"filenames": [f"synthetic_{offset + i:06d}.png".encode() for i in range(len(images))],
    }


def write_cifar10_archive(
    path: Path | str, n_per_batch: int = 100, seed: int = 0
) -> Cifar10Archive:
    """Write a `cifar-10-python.tar.gz` (5 training batches and a test batch of n_per_batch)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    # Every batch holds every class (given n_per_batch >= 10), like the real batches.
    labels = np.concatenate([rng.permutation(np.arange(n_per_batch) % 10) for _ in range(6)])
    images = colour_images(labels, seed=seed + 1)

    files: dict[str, bytes] = {}
    for b in range(6):
        sl = slice(b * n_per_batch, (b + 1) * n_per_batch)
        name, title = (
            (f"data_batch_{b + 1}", f"training batch {b + 1} of 5")
            if b < 5
            else ("test_batch", "testing batch 1 of 1")
        )
        files[name] = _py2_pickle(_cifar_batch(title, images[sl], labels[sl], sl.start))
    files["batches.meta"] = _py2_pickle(
        {
            b"num_cases_per_batch": n_per_batch,
            b"label_names": [name.encode() for name in CIFAR10_LABEL_NAMES],
            b"num_vis": 3 * 32 * 32,
        }
    )
    files["readme.html"] = b"<html><body>synthetic CIFAR-10 for tests</body></html>\n"

    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("cifar-10-batches-py")
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for name, payload in files.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size, info.mode = len(payload), 0o644
            tar.addfile(info, io.BytesIO(payload))

    def digest(name: str) -> str:
        return hashlib.md5(files[name]).hexdigest()

    n_train = 5 * n_per_batch
    return Cifar10Archive(
        path=path,
        tgz_md5=md5(path),
        train_list=[[f"data_batch_{b}", digest(f"data_batch_{b}")] for b in range(1, 6)],
        test_list=[["test_batch", digest("test_batch")]],
        meta_md5=digest("batches.meta"),
        train_images=images[:n_train],
        train_labels=labels[:n_train].astype(np.int64),
        test_images=images[n_train:],
        test_labels=labels[n_train:].astype(np.int64),
    )


# --- any registered torchvision folder ------------------------------------------------------


@dataclass
class Written:
    """What write_torchvision_layout wrote: uint8 (N, C, H, W) images and int64 labels, and the
    torchvision class attributes a test must patch for the class to accept the files (CIFAR-10
    checks every file's md5 against its own list)."""

    cls: type
    attrs: dict[str, object]
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


def write_torchvision_layout(root: Path | str, folder: str, n: int = 100) -> Written:
    """Write `<root>/<folder>` the way the torchvision class that keeps its data there does:
    IDX files for MNIST and its subclasses (their folder is their class name), the extracted
    CIFAR-10 pickles for a class whose `base_folder` it is. About n training images."""
    from torchvision import datasets

    root = Path(root)
    for cls in vars(datasets).values():
        if not isinstance(cls, type):
            continue
        if issubclass(cls, datasets.MNIST) and cls.__name__ == folder:
            idx = write_idx_dataset(root, folder, n_train=n, n_test=n // 2)
            grey = [a[:, None] for a in (idx.train_images, idx.test_images)]
            labels = [a.astype(np.int64) for a in (idx.train_labels, idx.test_labels)]
            return Written(cls, {}, grey[0], labels[0], grey[1], labels[1])
        if cls is datasets.CIFAR10 and cls.base_folder == folder:  # not CIFAR-100's format
            archive = write_cifar10_archive(root / "cifar-10-python.tar.gz", n_per_batch=n // 5)
            with tarfile.open(archive.path) as tar:
                tar.extractall(root, filter="data")
            attrs = archive.torchvision_attrs("http://127.0.0.1:9/unused")
            return Written(
                cls,
                {k: v for k, v in attrs.items() if k != "url"},
                archive.train_images,
                archive.train_labels,
                archive.test_images,
                archive.test_labels,
            )
    raise ValueError(f"no torchvision dataset keeps its files in a folder named {folder!r}")


# --- Loopback HTTP server -------------------------------------------------------------------


@dataclass
class Served:
    url: str  # "http://127.0.0.1:<port>/", with the trailing slash torchvision's mirrors have
    requests: list[str]  # request paths, in order, so a test can see what was fetched


@contextmanager
def serve_directory(directory: Path | str) -> Iterator[Served]:
    """Serve a folder over HTTP on 127.0.0.1 (a free port) from a background thread."""
    served = Served("", [])

    class Handler(SimpleHTTPRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            served.requests.append(self.path)

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

    handler = functools.partial(Handler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="loopback-http", daemon=True
    )
    thread.start()
    try:
        served.url = f"http://127.0.0.1:{server.server_address[1]}/"
        yield served
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
