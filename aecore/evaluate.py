"""Test-set evaluation: a model against the noisy input and the classical baselines.

Every method sees the same corrupted test images (a fixed seed), so the numbers compare.

The baselines (noisy input, 3x3 and 5x5 median filters, PCA) do not depend on the model, so their
metrics are computed once per dataset, corruption, level, image count (and PCA size) and kept in
memory; given a cache_dir, also on disk as small JSON files that a later process reads instead of
filtering the test set again. A file is used only if it names exactly the key asked for (dataset
contents included, by SHA-256) and holds the expected metrics as finite numbers; anything else is
ignored and rewritten. The PCA basis (one fit per dataset serves every code size) is kept there
too, as tensors loaded with weights_only=True and checked against their SHA-256.

Evaluating a model costs one forward pass per batch (the loss and the reconstruction share it,
except for VAEs and contractive runs), under torch.inference_mode, channels-last for conv models
on a CPU.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import math
import re
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from aecore import artifacts
from aecore.baselines import PCABasis, fit_pca, median_filter, pca_reconstruct
from aecore.corruptions import corrupt, has_level
from aecore.data import ImageDataset, to_float
from aecore.gpu import model_device, to_model
from aecore.losses import batch_terms, has_conv, inference_batch
from aecore.metrics import mse, psnr, ssim
from aecore.models import Autoencoder, needs_input_grad
from aecore.quality import output_spread

log = logging.getLogger(__name__)

TEST_SEED = 1234
# Part of every disk cache key: bump it when a baseline's computation changes its numbers.
BASELINE_CACHE_VERSION = 1
BASELINE_CACHE_MAX_FILES = 2000  # the oldest files go first beyond this (each is ~0.5 KB)
_FILTERS = ("noisy", "median3", "median5")
PCA_CACHE_COMPONENTS = 1024  # kept on disk: every code size a TrainConfig allows

# Caches are keyed by the dataset object's identity, not its name: tests (and AECORE_DATA_DIR
# changes) can load two different "mnist"s. Each entry keeps its dataset alive, so no id is reused.
_pca_cache: dict[tuple, tuple[ImageDataset, PCABasis]] = {}
_pca_lock = threading.Lock()  # held while fitting: one fit per dataset, never two at once
_lock = threading.Lock()  # the other caches
_baseline_cache: dict[tuple, tuple[ImageDataset, dict[str, float]]] = {}
_fingerprints: dict[int, tuple[ImageDataset, str]] = {}
_on_disk: set[Path] = set()  # cache files this process read intact or wrote


def pca_for(
    ds: ImageDataset,
    k: int,
    device: torch.device | str = "cpu",
    cache_dir: Path | str | None = None,
    write: bool = True,
) -> PCABasis:
    """PCA with k components fitted on the clean training images, cached per process; with a
    cache_dir also on disk (the first PCA_CACHE_COMPONENTS components), so that a later process
    loads it instead of fitting again (write=False: only read from there).

    One fit per dataset and device serves every k: fit_pca orders one eigendecomposition of the
    covariance, so its first k components are exactly fit_pca(images, k)'s."""
    device = torch.device(device)
    d = ds.train_images[0].numel()
    if not isinstance(k, int) or not 1 <= k <= d:
        raise ValueError(f"k must be an int in 1..{d}, got {k!r}")
    mem_key = (id(ds), str(device))
    with _pca_lock:
        entry = _pca_cache.get(mem_key)
        if entry is None or k > len(entry[1].components):
            basis = None
            if cache_dir is not None and k <= PCA_CACHE_COMPONENTS:
                basis = _read_basis(ds, device, Path(cache_dir))
            if basis is None:  # one fit, all d components
                basis = fit_pca(to_float(ds.train_images).to(device), d)
            _pca_cache[mem_key] = (ds, basis)
        full = _pca_cache[mem_key][1]
    if cache_dir is not None and write:
        _keep_basis(ds, device, Path(cache_dir), full)
    return PCABasis(mean=full.mean, components=full.components[:k])


def corrupted_test_set(
    ds: ImageDataset, corruption: str, level: float, device, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(clean, noisy) test images, the noise drawn with TEST_SEED."""
    clean = to_float(ds.test_images[:limit]).to(device)
    gen = torch.Generator(device).manual_seed(TEST_SEED)
    return clean, corrupt(corruption, clean, level, gen) if has_level(corruption) else clean


def _quality(prefix: str, x: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    return {
        f"test_mse{prefix}": float(mse(x, clean).mean()),
        f"test_psnr{prefix}": float(psnr(x, clean).mean()),
        f"test_ssim{prefix}": float(ssim(x, clean).mean()),
    }


@torch.no_grad()
def reconstruct(model: Autoencoder, images: torch.Tensor, batch: int | None = None) -> torch.Tensor:
    """The model's reconstructions of images (N, C, H, W), on the images' device: each batch
    goes to the model's device and back, so a model trained on a GPU reconstructs CPU images
    (a grid, an upload) and a CPU model GPU ones. batch: images per pass (inference_batch)."""
    model.eval()
    batch = batch or inference_batch(model, model_device(model))
    return torch.cat(
        [model.reconstruct(to_model(model, x)).to(images.device) for x in images.split(batch)]
    )


def _inference_model(model: Autoencoder, device: torch.device) -> Autoencoder:
    """The model to evaluate: on a CPU, a conv model runs as a channels-last copy (oneDNN's
    convolutions are up to 2x faster so; same numbers up to float rounding). A copy, because the
    model may be in use by another thread (a page) at the same time."""
    if device.type != "cpu" or not has_conv(model):
        return model
    weights = [p for p in model.parameters() if p.dim() == 4]
    if all(p.is_contiguous(memory_format=torch.channels_last) for p in weights):
        return model  # trained here: already channels-last
    return copy.deepcopy(model).to(memory_format=torch.channels_last)


class _KeepOutput:
    """Stands in for a model in Autoencoder.loss_terms and keeps the decoder output the loss was
    computed from, so that the reconstruction needs no second forward pass."""

    def __init__(self, model: Autoencoder) -> None:
        self._model = model
        self.raw: torch.Tensor | None = None

    def __getattr__(self, name: str):
        return getattr(self._model, name)

    def code_and_raw(self, x: torch.Tensor):
        z, self.raw = self._model.code_and_raw(x)
        return z, self.raw


def _one_pass(model: Autoencoder) -> bool:
    """Whether the loss and the reconstruction can share a forward pass: the base class's
    loss_terms, forward and reconstruct (not a VAE, whose loss samples its code), and no
    penalty that needs a graph (the contractive one)."""
    cls = type(model)
    return (
        cls.loss_terms is Autoencoder.loss_terms
        and cls.forward is Autoencoder.forward
        and cls.reconstruct is Autoencoder.reconstruct
        and not needs_input_grad(model.regularizer)
    )


def _terms_and_reconstruction(
    model: Autoencoder, x, target, loss: str, one_pass: bool, generator: torch.Generator
):
    """(loss terms, reconstruction) of one batch, equal to batch_terms(...) and
    model.reconstruct(x); noise inside the loss draws from `generator`."""
    if not one_pass:
        return batch_terms(model, x, target, loss, generator), model.reconstruct(x)
    keep = _KeepOutput(model)
    terms = Autoencoder.loss_terms(keep, x, target, loss, generator)
    return terms, model.activate(keep.raw).clamp(0.0, 1.0)


def evaluate(
    model: Autoencoder,
    ds: ImageDataset,
    corruption: str,
    level: float,
    loss: str,
    limit: int | None = None,
    batch: int | None = None,
    cache_dir: Path | str | None = None,
    pca: bool = True,
    write_cache: bool = True,
) -> dict[str, float]:
    """Metrics on the test set. Keys: test_loss, test_recon (and test_kl for a VAE);
    test_{mse,psnr,ssim} for the model and with suffixes _noisy, _median3, _median5 and
    (for models with a latent size, unless pca=False) _pca, the PCA having as many components
    as the code. pca=False spares the PCA fit (seconds on a large training set) to a caller that
    shows no PCA numbers. test_output_std and test_clean_std: how much the reconstructions and
    the clean images vary across images (aecore.quality flags a collapsed run with them).

    batch: images per forward pass (None: inference_batch's choice).
    cache_dir: where baseline metrics are kept on disk (see baseline_metrics); None: memory only.
    write_cache=False reads them from there but writes nothing (a caller that may still cancel).
    """
    device = model_device(model)
    clean, noisy = corrupted_test_set(ds, corruption, level, device, limit)
    net = _inference_model(model, device)
    batch = batch or inference_batch(net, device)
    net.eval()
    if net is not model:
        model.eval()
    one_pass = _one_pass(net)
    # A contractive penalty's estimate needs autograd (batch_terms turns it on briefly).
    grad = needs_input_grad(net.regularizer)
    context = torch.no_grad() if grad else torch.inference_mode()
    # This call's own generator, passed down: `net` may be a cached model other threads use.
    generator = torch.Generator(device).manual_seed(TEST_SEED + 1)
    channels_last = device.type == "cpu" and has_conv(net)  # as _inference_model made it
    sums: dict[str, float] = {}
    recon = []
    with context:
        for x, target in zip(noisy.split(batch), clean.split(batch), strict=True):
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            terms, x_hat = _terms_and_reconstruction(net, x, target, loss, one_pass, generator)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v) * len(x)
            recon.append(x_hat.contiguous())
    out = {f"test_{'loss' if k == 'loss' else k}": v / len(clean) for k, v in sums.items()}
    recon = torch.cat(recon)
    out |= _quality("", recon, clean) | output_spread(recon, clean)  # spread: aecore.quality
    k = model.latent if pca else 0
    return out | baseline_metrics(
        ds, corruption, level, k, device, limit, cache_dir, (clean, noisy), write_cache
    )


# -- the baselines, cached -------------------------------------------------------------------------


def dataset_fingerprint(ds: ImageDataset) -> str:
    """SHA-256 of a dataset's name, shapes and image bytes (train and test), once per process."""
    with _lock:
        if id(ds) in _fingerprints:
            return _fingerprints[id(ds)][1]
    h = hashlib.sha256(f"{ds.name}|".encode())
    for images in (ds.train_images, ds.test_images):
        t = images.detach().cpu().contiguous()
        h.update(f"{tuple(t.shape)}|{t.dtype}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    digest = h.hexdigest()
    with _lock:
        _fingerprints[id(ds)] = (ds, digest)
    return digest


def _expected_keys(part: str) -> set[str]:
    methods = _FILTERS if part == "filters" else ("pca",)
    return {f"test_{m}_{name}" for name in methods for m in ("mse", "psnr", "ssim")}


def _cache_file(folder: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    name = re.sub(r"[^a-z0-9_]", "_", str(key["dataset"]).lower())[:40]
    return folder / f"{name}-{key['part']}-{digest}.json"


def _read_cached(path: Path, key: dict) -> dict[str, float] | None:
    """The metrics in path if it is a cache file for exactly `key`, else None (logged)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        metrics = data["metrics"]
        if data.get("key") != key or set(metrics) != _expected_keys(key["part"]):
            raise ValueError("another key or other metrics")
        if not all(type(v) is float and math.isfinite(v) for v in metrics.values()):
            raise ValueError("a value that is not a finite number")
        return metrics
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        log.warning("ignoring baseline cache file %s (%s); computing it again", path.name, err)
        return None


def _write_cached(path: Path, key: dict, metrics: dict[str, float]) -> bool:
    """Write atomically (aecore.artifacts); a failure is logged, never raised. Whether the
    file was written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps({"key": key, "metrics": metrics}, sort_keys=True).encode()
        artifacts.write_atomic(path, data)
        files = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime)
        for old in files[: max(0, len(files) - BASELINE_CACHE_MAX_FILES)]:
            old.unlink(missing_ok=True)
            with _lock:
                _on_disk.discard(old)
        return True
    except OSError as err:
        log.warning("could not write baseline cache file %s: %s", path, err)
        return False


def _basis_file(ds: ImageDataset, device: torch.device, folder: Path) -> tuple[Path, dict]:
    key = {
        "format": "aecore-pca",
        "version": BASELINE_CACHE_VERSION,
        "dataset": ds.name,
        "data_sha256": dataset_fingerprint(ds),
        "device": device.type,
        "torch": str(torch.__version__),
    }
    return _cache_file(folder, key | {"part": "pca"}).with_suffix(".pt"), key


def _tensors_sha256(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def _read_basis(ds: ImageDataset, device: torch.device, folder: Path) -> PCABasis | None:
    """The PCA basis kept in folder for this dataset and device, or None (a damaged or foreign
    file is logged and ignored). Loaded with weights_only=True and checked against the SHA-256
    of its tensors, since torch.load does not check the zip's CRCs."""
    path, key = _basis_file(ds, device, folder)
    d = ds.train_images[0].numel()
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("key") != key:
            raise ValueError("another key")
        mean, comps = payload["mean"], payload["components"]
        rows = min(d, PCA_CACHE_COMPONENTS)
        if not (isinstance(mean, torch.Tensor) and isinstance(comps, torch.Tensor)):
            raise ValueError("not tensors")
        if mean.dtype != torch.float32 or comps.dtype != torch.float32:
            raise ValueError("not float32")
        if tuple(mean.shape) != (d,) or tuple(comps.shape) != (rows, d):
            raise ValueError(f"shapes {tuple(mean.shape)}, {tuple(comps.shape)}")
        if payload.get("sha256") != _tensors_sha256(mean, comps):
            raise ValueError("its tensors do not match their SHA-256")
    except FileNotFoundError:
        return None
    except Exception as err:  # torch.load raises many kinds on a damaged file
        log.warning("ignoring PCA cache file %s (%s); fitting again", path.name, err)
        return None
    with _lock:
        _on_disk.add(path)
    return PCABasis(mean=mean.to(device), components=comps.to(device))


def _keep_basis(ds: ImageDataset, device: torch.device, folder: Path, basis: PCABasis) -> None:
    """Write the basis's first PCA_CACHE_COMPONENTS components to folder unless this process
    knows the file is there (atomically; a failure is logged, never raised)."""
    path, key = _basis_file(ds, device, folder)
    with _lock:
        if path in _on_disk:
            return
    rows = min(len(basis.mean), PCA_CACHE_COMPONENTS)
    if len(basis.components) < rows:
        return
    mean = basis.mean.detach().cpu().contiguous()
    comps = basis.components[:rows].detach().cpu().contiguous()
    payload = {"key": key, "mean": mean, "components": comps}
    payload["sha256"] = _tensors_sha256(mean, comps)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(payload, buf)
        artifacts.write_atomic(path, buf.getbuffer())
        with _lock:
            _on_disk.add(path)
    except OSError as err:
        log.warning("could not write PCA cache file %s: %s", path, err)


def _cached_part(
    ds: ImageDataset,
    part: str,
    corruption: str,
    level: float,
    device: torch.device,
    n: int,
    cache_dir: Path | None,
    compute: Callable[[], dict[str, float]],
    write: bool = True,
) -> dict[str, float]:
    """One part of the baselines ("filters", or "pca<k>") from memory, disk, or `compute`; with
    a cache_dir and write=True, its file is written if it is not there yet."""
    mem_key = (id(ds), part, corruption, float(level), str(device), n)
    with _lock:
        entry = _baseline_cache.get(mem_key)
    metrics = None if entry is None else entry[1]
    if cache_dir is None:
        if metrics is None:
            metrics = compute()
            with _lock:
                _baseline_cache[mem_key] = (ds, metrics)
        return dict(metrics)
    key = {
        "version": BASELINE_CACHE_VERSION,
        "dataset": ds.name,
        "data_sha256": dataset_fingerprint(ds),
        "part": part,
        "corruption": corruption,
        "level": float(level),
        "images": n,
        "seed": TEST_SEED,
        "device": device.type,
        "torch": str(torch.__version__),
    }
    path = _cache_file(Path(cache_dir), key)
    if metrics is None:
        metrics = _read_cached(path, key)
        with _lock:
            if metrics is None:
                _on_disk.discard(path)  # missing or damaged: written again below
            else:
                _on_disk.add(path)
        if metrics is None:
            metrics = compute()
        with _lock:
            _baseline_cache[mem_key] = (ds, metrics)
    with _lock:
        missing = write and path not in _on_disk
    if missing and _write_cached(path, key, metrics):
        with _lock:
            _on_disk.add(path)
    return dict(metrics)


def baseline_metrics(
    ds: ImageDataset,
    corruption: str,
    level: float,
    k: int,
    device,
    limit: int | None = None,
    cache_dir: Path | str | None = None,
    images: tuple[torch.Tensor, torch.Tensor] | None = None,
    write_cache: bool = True,
) -> dict[str, float]:
    """Noisy-input, median and (k > 0) PCA metrics. They do not depend on the model, so they are
    computed once per dataset, corruption, level, image count and k; kept in memory, and in
    cache_dir (JSON files) if given. `images`: the (clean, noisy) test set if the caller has it.
    write_cache=False only reads cache_dir; a later call with True writes what is missing."""
    device = torch.device(device)
    n = len(ds.test_images[:limit])
    held = [images]

    def test_set() -> tuple[torch.Tensor, torch.Tensor]:
        if held[0] is None:
            held[0] = corrupted_test_set(ds, corruption, level, device, limit)
        return held[0]

    def filters() -> dict[str, float]:
        clean, noisy = test_set()
        out = _quality("_noisy", noisy, clean)
        out |= _quality("_median3", median_filter(noisy, 3), clean)
        return out | _quality("_median5", median_filter(noisy, 5), clean)

    def pca() -> dict[str, float]:
        clean, noisy = test_set()
        basis = pca_for(ds, k, device, cache_dir, write=write_cache)
        return _quality("_pca", pca_reconstruct(basis, noisy), clean)

    where = (device, n, cache_dir)
    out = _cached_part(ds, "filters", corruption, level, *where, filters, write_cache)
    if k:
        out |= _cached_part(ds, f"pca{k}", corruption, level, *where, pca, write_cache)
        with _pca_lock:
            fitted = _pca_cache.get((id(ds), str(device)))
        if cache_dir is not None and write_cache and fitted is not None:
            _keep_basis(ds, device, Path(cache_dir), fitted[1])  # fitted with write_cache=False
    return out
