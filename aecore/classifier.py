"""A small CNN classifier, to ask whether a denoiser's output is *useful*, not only close in PSNR.

Trained on clean training images only; then its accuracy on corrupted, filtered and reconstructed
test images says how much class information each treatment keeps. Files look like checkpoints:
float16 weights plus plain data, written atomically and read with torch.load(weights_only=True).
Bundled ones (MNIST, Fashion-MNIST) live in checkpoints/classifiers/; others are trained on demand
into <runs folder>/classifiers/. aecore.jobs trains them in the background.
"""

from __future__ import annotations

import hashlib
import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aecore import artifacts, checkpoints, classical, settings, train
from aecore.baselines import median_filter
from aecore.best_classical import BestClassical
from aecore.corruptions import has_level
from aecore.data import DATASETS, ImageDataset, load_dataset, to_float
from aecore.evaluate import corrupted_test_set, reconstruct
from aecore.gpu import to_model
from aecore.models import Autoencoder

FORMAT = "aecore-classifier"
VERSION = 2  # 2: aecore.artifacts' envelope (weights and record checksums); 1: no checksums
READABLE_VERSIONS = (1, 2)  # the bundled classifiers are version 1 files
ARCH = 1  # bump when SmallCNN changes: old files then no longer match any spec's key
FOLDER = settings.CLASSIFIER_FOLDER  # under the runs folder and under the bundled folder


class SmallCNN(nn.Module):
    """conv 16 + pool, conv 32 + pool, linear 32, linear classes: about 56,000 parameters on
    28x28 images, so a float16 file stays near 110 KB. (pytorch/examples' MNIST net has 1.2 M;
    a clean-image accuracy within a point of it is all this test needs.)"""

    def __init__(self, channels: int = 1, side: int = 28, classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.head = nn.Sequential(
            nn.Linear(32 * (side // 4) ** 2, 32), nn.ReLU(), nn.Linear(32, classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))  # logits (N, classes)


@dataclass(frozen=True)
class ClassifierSpec:
    """Everything that decides a classifier; key() names its file, like TrainConfig.key()."""

    dataset: str
    epochs: int = 3
    limit: int = 0  # train on the first `limit` training images; 0 = all
    seed: int = 0
    batch_size: int = 128
    lr: float = 1e-3

    def key(self) -> str:
        blob = json.dumps({"arch": ARCH, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def file_name(self) -> str:
        return f"classifier-{self.dataset}-{self.key()}.pt"


def default_spec(dataset: str) -> ClassifierSpec:
    """The spec the app and the experiments use for a dataset (the bundled files have it): the
    defaults, with what the dataset's meta changes (a small one needs more epochs)."""
    settings = DATASETS[dataset].meta["classifier"] if dataset in DATASETS else {}
    return ClassifierSpec(dataset, **settings)


@dataclass
class Classifier:
    spec: ClassifierSpec
    model: SmallCNN
    info: dict[str, Any] = field(default_factory=dict)  # test_accuracy, train_seconds, hardware


def classifier_dirs() -> list[Path]:
    """Where classifiers are looked for: the runs folder first, then the bundled folder (read at
    call time, so tests that move either are obeyed)."""
    return [settings.current().runs_classifier_dir, checkpoints.BUNDLED_DIR / FOLDER]


def train_classifier(
    ds: ImageDataset,
    spec: ClassifierSpec,
    on_progress: Callable[[float], None] = lambda fraction: None,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
) -> SmallCNN | None:
    """Train a SmallCNN on ds's clean training images (cross-entropy, Adam); returns it in eval
    mode on the CPU, or None once should_stop() is true. on_progress gets the fraction of
    batches done."""
    torch.manual_seed(spec.seed)
    c, h, _ = ds.shape
    model = SmallCNN(c, h, len(ds.classes)).to(device)
    x = to_float(ds.train_images[: spec.limit or None]).to(device)
    y = ds.train_labels[: spec.limit or None].to(device)
    opt = torch.optim.Adam(model.parameters(), lr=spec.lr)
    gen = torch.Generator().manual_seed(spec.seed)
    steps = spec.epochs * -(-len(x) // spec.batch_size)
    done = 0
    model.train()
    for _ in range(spec.epochs):
        for idx in torch.randperm(len(x), generator=gen).split(spec.batch_size):
            idx = idx.to(device)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            done += 1
            on_progress(done / steps)
            if should_stop():
                return None
    return model.cpu().eval()


@torch.no_grad()
def predict(model: SmallCNN, images: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """Predicted class (N,) of images (N, C, H, W) in [0, 1], on the images' device (each batch
    is classified on the model's)."""
    model.eval()
    return torch.cat(
        [model(to_model(model, x)).argmax(1).to(images.device) for x in images.split(batch)]
    )


def accuracy(model: SmallCNN, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of images (N, C, H, W) in [0, 1] classified as their label."""
    return float((predict(model, images) == labels.to(images.device)).float().mean())


def _round_half(model: SmallCNN) -> SmallCNN:
    # The file holds float16; measure what it holds, not the float32 weights before saving.
    return artifacts.round_half_(model)


def save_classifier(path: Path | str, clf: Classifier) -> Path:
    """Write float16 weights and plain data atomically, sealed like a checkpoint
    (aecore.artifacts: format, version, key, weights and record checksums)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = artifacts.half_state({k: v.detach().cpu() for k, v in clf.model.state_dict().items()})
    c, h = clf.model.features[0].in_channels, clf.info["shape"][1]
    record = artifacts.envelope(
        FORMAT,
        VERSION,
        clf.spec.key(),
        spec=asdict(clf.spec),
        weights_sha256=artifacts.weights_digest(state),
        info={**clf.info, "channels": c, "side": h, "dtype": "float16"},
    )
    buf = io.BytesIO()
    torch.save(artifacts.seal(record, state), buf)
    artifacts.write_atomic(path, buf.getbuffer())
    return path


def load_classifier(path: Path | str) -> Classifier:
    """Read a classifier file (weights_only); ValueError if it is not one or does not match."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(f"{path.name} is not a readable classifier ({err})") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not an aecore classifier")
    spec = ClassifierSpec(**payload["spec"])
    version = payload.get("version")
    if (
        spec.key() != payload.get("key")
        or type(version) is not int
        or version not in READABLE_VERSIONS
    ):
        raise ValueError(f"{path.name} was made by another version of SmallCNN or its spec")
    state = payload["state_dict"]
    if version >= 2 and not _sealed(payload, state):
        raise ValueError(f"{path.name} is damaged: its contents do not match their checksum")
    info = dict(payload["info"])
    model = SmallCNN(info["channels"], info["side"], len(info["classes"]))
    model.load_state_dict(artifacts.float_state(state))
    return Classifier(spec, model.eval(), info)


def _sealed(payload: dict[str, Any], state: Any) -> bool:
    """Whether a version 2 file's weights and record match their checksums."""
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        return False
    try:
        ok = payload.get("weights_sha256") == artifacts.weights_digest(state)
        return ok and artifacts.verify(payload)
    except artifacts.NotPlain:
        return False


def find_classifier(spec: ClassifierSpec, dirs: list[Path] | None = None) -> Path | None:
    for folder in dirs if dirs is not None else classifier_dirs():
        if (folder / spec.file_name).is_file():
            return folder / spec.file_name
    return None


def build_classifier(
    ds: ImageDataset,
    spec: ClassifierSpec,
    out_dir: Path | None = None,
    on_progress: Callable[[float], None] = lambda fraction: None,
    device: torch.device | str = "cpu",
    should_stop: Callable[[], bool] = lambda: False,
) -> Classifier | None:
    """Train, round to float16, measure the clean test accuracy, save; returns the classifier
    (None when should_stop() stopped the training: nothing is saved)."""
    t0 = time.perf_counter()
    trained = train_classifier(ds, spec, on_progress, device, should_stop)
    if trained is None:
        return None
    model = _round_half(trained)
    seconds = time.perf_counter() - t0
    info = {
        "test_accuracy": accuracy(model, to_float(ds.test_images), ds.test_labels),
        "train_seconds": round(seconds, 1),
        "hardware": checkpoints.hardware(),
        "device": str(device),
        "torch": str(torch.__version__),
        "classes": list(ds.classes),
        "shape": list(ds.shape),
        "params": sum(p.numel() for p in model.parameters()),
    }
    clf = Classifier(spec, model, info)
    save_classifier((out_dir or classifier_dirs()[0]) / spec.file_name, clf)
    return clf


def get_classifier(ds: ImageDataset, spec: ClassifierSpec | None = None) -> Classifier:
    """The saved classifier for spec (runs folder, then bundled), else a freshly trained one."""
    spec = spec or default_spec(ds.name)
    path = find_classifier(spec)
    if path is not None:
        try:
            return load_classifier(path)
        except ValueError:
            pass  # unreadable or stale: train a new one over it
    return build_classifier(ds, spec)


def accuracies(
    model: SmallCNN,
    ds: ImageDataset,
    corruption: str,
    level: float,
    reconstructors: Mapping[str, Autoencoder],
    limit: int | None = None,
    best: BestClassical | None = None,
) -> dict[str, float]:
    """Accuracy (0..1) on the first `limit` test images: clean, corrupted, 3x3-median-filtered
    and filtered by the `best` tuned classical method (all but the first only when there is a
    corruption), then each reconstructor's output of the corrupted images, under its mapping
    key. The corruption is drawn with evaluate.TEST_SEED."""
    clean, noisy = corrupted_test_set(ds, corruption, level, "cpu", limit)
    labels = ds.test_labels[: len(clean)]
    out = {"clean": accuracy(model, clean, labels)}
    if has_level(corruption) and level > 0:
        out["corrupted"] = accuracy(model, noisy, labels)
        out["median 3x3"] = accuracy(model, median_filter(noisy, 3), labels)
        if best is not None:
            filtered = classical.apply(best.method, noisy, best.params)
            out["best classical"] = accuracy(model, filtered, labels)
    for name, ae in reconstructors.items():
        out[name] = accuracy(model, reconstruct(ae, noisy), labels)  # on noisy's device
    return out


def run_job(
    spec: ClassifierSpec,
    on_epoch: Callable[[Any], None] = lambda stats: None,
    should_stop: Callable[[], bool] = lambda: False,
    on_batch: Callable[[float], None] = lambda fraction: None,
) -> Classifier | None:
    """Train and save spec's classifier as a background job (aecore.jobs runs it beside training
    runs, with the same signature, on the device a training run gets: the GPU when there is
    one); None when should_stop() turned true first (nothing saved)."""
    ds = load_dataset(spec.dataset)
    device = train.pick_device()  # looked up at call time: the test suite's switch sets it
    return build_classifier(ds, spec, on_progress=on_batch, device=device, should_stop=should_stop)
