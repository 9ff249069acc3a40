"""Bundled pretrained models: `checkpoints/manifest.json` lists them, `pretrain` rebuilds them.

Each manifest entry holds a name, what it is for, and a full TrainConfig; after training, the
entry also records what came out: the config key, the file and its SHA-256, test metrics, epochs,
training time, the hardware and the torch version. The files store float16 weights (half the
bytes; loading turns them back into float32), and every recorded metric is measured on the
float16-rounded model, so a test can reproduce it from the file.

    python -m aecore pretrain --list          # what is bundled, and whether each file checks out
    python -m aecore pretrain --only NAME     # retrain one entry (all of them without --only)
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from aecore import artifacts, runcache, settings
from aecore.checkpoints import checkpoint_name, load_checkpoint, save_checkpoint
from aecore.config import TrainConfig
from aecore.data import load_dataset
from aecore.evaluate import evaluate
from aecore.history import EpochStats
from aecore.preview import HOME_DEMO, write_home_margins, write_home_preview

log = logging.getLogger(__name__)

BUNDLED_DIR = settings.BUNDLED_DIR
MANIFEST = BUNDLED_DIR / settings.MANIFEST_NAME
MANIFEST_FORMAT = "aecore-manifest"
MANIFEST_VERSION = 1
ENVELOPE = ("format", "version", "key", artifacts.SEAL)  # header fields the writer adds
DTYPE = "float16"
# Metrics copied from the checkpoint into the manifest (all on the full test set).
RECORDED = [
    f"test_{m}{suffix}"
    for suffix in ("", "_noisy", "_median3", "_pca")
    for m in ("mse", "psnr", "ssim")
] + ["test_loss", "test_recon", "test_kl", "sec_per_epoch"]


@dataclass
class BundledModel:
    name: str
    purpose: str
    config: TrainConfig
    record: dict[str, Any] = field(default_factory=dict)  # key, file, metrics ... once trained
    folder: Path = BUNDLED_DIR  # the manifest's folder; the checkpoint files sit beside it

    @property
    def path(self) -> Path:
        return self.folder / checkpoint_name(self.config)


def read_manifest(path: Path = MANIFEST) -> tuple[dict[str, Any], list[BundledModel]]:
    """(the manifest's header fields, its entries). Configs are validated here."""
    data = read_json(path)
    entries = []
    for item in data["models"]:
        record = {k: v for k, v in item.items() if k not in ("name", "purpose", "config")}
        cfg = TrainConfig.from_dict(item["config"])
        entries.append(BundledModel(item["name"], item["purpose"], cfg, record, Path(path).parent))
    for what, values in (
        ("names", [e.name for e in entries]),
        ("configs", [e.path for e in entries]),
    ):
        if len(set(values)) != len(values):
            raise ValueError(f"{Path(path).name}: duplicate {what}")
    return {k: v for k, v in data.items() if k != "models"}, entries


def write_manifest(
    header: dict[str, Any], entries: list[BundledModel], path: Path = MANIFEST
) -> None:
    models = [
        {"name": e.name, "purpose": e.purpose, "config": e.config.to_dict(), **e.record}
        for e in entries
    ]
    write_json(path, {**header, "models": models}, "models")


def write_json(path: Path, data: dict[str, Any], key: str) -> None:
    """A manifest in aecore.artifacts' envelope (format, version, key: what it lists, and a
    checksum over it), written atomically: a crash mid-write never leaves half a manifest."""
    fields = {k: v for k, v in data.items() if k not in ENVELOPE}
    artifacts.write_json(Path(path), MANIFEST_FORMAT, MANIFEST_VERSION, key, fields)


def read_json(path: Path) -> dict[str, Any]:
    """A manifest's fields without its envelope. A checksum that does not match means the file
    was edited by hand since it was written (adding an entry is how a model gets bundled): it is
    read all the same, with a warning. Files from before the envelope have no checksum."""
    data, intact = artifacts.read_json(Path(path))
    if intact is False:
        log.warning("%s was edited since it was written (its checksum differs)", path)
    return {k: v for k, v in data.items() if k not in ENVELOPE}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check(entry: BundledModel) -> str:
    """What is wrong with an entry's file, or "ok" (cheap: no loading, no evaluation)."""
    if not entry.record:
        return "not trained yet"
    if entry.record.get("key") != entry.config.key():
        return "config changed since it was trained"
    if not entry.path.is_file():
        return f"missing file {entry.path.name}"
    if sha256(entry.path) != entry.record.get("sha256"):
        return "file differs from the one recorded"
    return "ok"


def train_entry(
    entry: BundledModel,
    on_epoch: Callable[[EpochStats], None] = lambda stats: None,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Train one entry, save it as float16 beside the manifest, and return its new record."""
    from aecore.runs import train_and_save

    cfg = entry.config
    ckpt = train_and_save(cfg, on_epoch=on_epoch, device=device, out_dir=entry.folder)
    # The bundled folder's index is its manifest: no run-index entry beside the file.
    runcache.index_path(entry.path).unlink(missing_ok=True)
    # Measure what the file will hold: the float16-rounded weights, evaluated in float32.
    model = artifacts.round_half_(ckpt.model.cpu())
    metrics = evaluate(model, load_dataset(cfg.dataset), cfg.corruption, cfg.level, cfg.loss)
    metrics["sec_per_epoch"] = ckpt.metrics["sec_per_epoch"]
    info = {k: v for k, v in ckpt.info.items() if k != "path"}
    save_checkpoint(entry.path, cfg, model, ckpt.history, metrics, info, half=True)
    if entry.name == HOME_DEMO:  # the Home page's stored picture must show this file's model
        saved = load_checkpoint(entry.path)
        ds, previews = load_dataset(cfg.dataset), entry.folder / "previews"
        write_home_preview(saved, ds, previews / "home.png")
        write_home_margins(saved, ds, previews / "home_margins.json")
    return {
        "key": cfg.key(),
        "file": entry.path.name,
        "bytes": entry.path.stat().st_size,
        "sha256": sha256(entry.path),
        "dtype": DTYPE,
        "epochs": len(ckpt.history),
        "train_seconds": round(info["train_seconds"], 1),
        "hardware": info["hardware"],
        "device": info["device"],
        "threads": torch.get_num_threads(),
        "torch": str(torch.__version__),
        "trained": time.strftime("%Y-%m-%d", time.gmtime()),
        "metrics": {k: round(metrics[k], 6) for k in RECORDED if k in metrics},
    }


def pretrain(
    only: list[str] | None = None,
    on_epoch: Callable[[EpochStats], None] = lambda stats: None,
    on_entry: Callable[[BundledModel], None] = lambda entry: None,
    device: torch.device | str | None = None,
    path: Path = MANIFEST,
) -> list[BundledModel]:
    """Retrain the entries named in `only` (all if None), rewriting the manifest after each one,
    so an interrupted rebuild keeps what it finished. Returns the entries trained."""
    header, entries = read_manifest(path)
    unknown = sorted(set(only or []) - {e.name for e in entries})
    if unknown:
        raise ValueError(f"not in the manifest: {', '.join(unknown)}")
    done = []
    for entry in entries:
        if only is not None and entry.name not in only:
            continue
        on_entry(entry)
        old = entry.folder / entry.record["file"] if entry.record.get("file") else None
        entry.record = train_entry(entry, on_epoch, device)
        if old is not None and old != entry.path:
            old.unlink(missing_ok=True)  # its config changed: the old file is stale
        write_manifest(header, entries, path)
        done.append(entry)
    return done


def sync_presets(path: Path = MANIFEST) -> list[str]:
    """Add an entry for every bundled Learn preset (aecore.presets) that the manifest lacks, and
    give an entry whose preset changed the new config (its old record goes: it is retrained).
    Returns the names of the entries that need training."""
    from aecore.presets import bundled_presets

    header, entries = read_manifest(path)
    by_name = {e.name: e for e in entries}
    presets = bundled_presets()
    for name, cfg in presets.items():
        entry = by_name.get(name)
        if entry is None:
            kind, dataset = name.removeprefix("preset_").rsplit("_", 1)
            purpose = f"Learn page: the {kind} preset on {dataset}"
            entries.append(BundledModel(name, purpose, cfg, {}, Path(path).parent))
        elif entry.config != cfg:  # the preset changed: keep only the file name, to replace it
            entry.config = cfg
            entry.record = {k: v for k, v in entry.record.items() if k == "file"}
    write_manifest(header, entries, path)
    return [e.name for e in entries if e.name in presets and check(e) != "ok"]


def pretrain_baselines(
    path: Path = MANIFEST, on_task: Callable[[str], None] = lambda task: None
) -> list[dict[str, Any]]:
    """The best tuned classical method (aecore.best_classical) of every bundled model's task,
    on its whole test set, kept in the bundled baselines/ folder: pages then show it at once.
    Tasks whose dataset is not on this machine are skipped (and logged)."""
    from aecore.best_classical import FOLDER, best_classical
    from aecore.corruptions import has_level
    from aecore.data import DatasetUnavailable

    _, entries = read_manifest(path)
    tasks = {(e.config.dataset, e.config.corruption, e.config.level) for e in entries}
    done = []
    for dataset, corruption, level in sorted(t for t in tasks if has_level(t[1])):
        on_task(f"{dataset} {corruption} {level:g}")
        try:
            ds = load_dataset(dataset)
        except DatasetUnavailable as err:
            log.warning("skipping %s: %s", dataset, err)
            continue
        best = best_classical(ds, corruption, level, keep_in=Path(path).parent / FOLDER)
        done.append({"task": [dataset, corruption, level], "best": best.label, "psnr": best.psnr})
    return done


def folder_bytes(folder: Path = BUNDLED_DIR) -> int:
    """Total size of the .pt files in a folder (the bundled one by default)."""
    return sum(p.stat().st_size for p in folder.glob("*.pt"))


# -- bundled classifiers (aecore.classifier): the Compare page's "as classifier input" ----------

CLASSIFIER_DIR = BUNDLED_DIR / settings.CLASSIFIER_FOLDER
BUNDLED_CLASSIFIERS = ("mnist", "fashion_mnist")  # minutes on a CPU; digits trains in seconds


def classifier_manifest(folder: Path = CLASSIFIER_DIR) -> list[dict[str, Any]]:
    """The records of the bundled classifiers (empty if none were built)."""
    path = Path(folder) / "manifest.json"
    return read_json(path)["classifiers"] if path.is_file() else []


def check_classifier(record: dict[str, Any], folder: Path = CLASSIFIER_DIR) -> str:
    """What is wrong with a classifier record's file, or "ok" (no loading)."""
    from aecore.classifier import ClassifierSpec

    path = Path(folder) / record["file"]
    if ClassifierSpec(**record["spec"]).key() != record["key"]:
        return "spec changed since it was trained (or SmallCNN did)"
    if not path.is_file():
        return f"missing file {path.name}"
    return "ok" if sha256(path) == record["sha256"] else "file differs from the one recorded"


def pretrain_classifiers(
    datasets: Sequence[str] = BUNDLED_CLASSIFIERS,
    folder: Path = CLASSIFIER_DIR,
    device: torch.device | str = "cpu",
    on_entry: Callable[[str], None] = lambda dataset: None,
) -> list[dict[str, Any]]:
    """Retrain the classifiers of `datasets` with their default spec into `folder`, and rewrite
    folder/manifest.json after each (an interrupted rebuild keeps what it finished). Returns
    the new records. From a shell:
        python -c "from aecore.pretrain import pretrain_classifiers as p; p()"
    """
    from aecore.classifier import build_classifier, default_spec

    folder = Path(folder)
    records = {r["dataset"]: r for r in classifier_manifest(folder)}
    done = []
    for name in datasets:
        on_entry(name)
        spec = default_spec(name)
        clf = build_classifier(load_dataset(name), spec, out_dir=folder, device=device)
        path = folder / spec.file_name
        old = records.get(name)
        if old and old["file"] != path.name:
            (folder / old["file"]).unlink(missing_ok=True)  # another spec: the old file is stale
        records[name] = {
            "dataset": name,
            "spec": asdict(spec),
            "key": spec.key(),
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": sha256(path),
            "dtype": DTYPE,
            "params": clf.info["params"],
            "test_accuracy": round(clf.info["test_accuracy"], 4),
            "train_seconds": clf.info["train_seconds"],
            "hardware": clf.info["hardware"],
            "device": str(device),
            "threads": torch.get_num_threads(),
            "torch": str(torch.__version__),
            "trained": time.strftime("%Y-%m-%d", time.gmtime()),
        }
        data = {"about": CLASSIFIER_ABOUT, "classifiers": list(records.values())}
        write_json(folder / settings.MANIFEST_NAME, data, "classifiers")
        done.append(records[name])
    return done


CLASSIFIER_ABOUT = (
    "Small CNNs (aecore.classifier.SmallCNN) trained on clean training images; the Compare page "
    "tests them on corrupted, filtered and reconstructed test images. float16 weights; "
    "test_accuracy is the clean full test set on those weights. Rebuild with "
    "aecore.pretrain.pretrain_classifiers()."
)


def bundled_names(path: Path = MANIFEST) -> dict[str, str]:
    """Config key -> manifest name of every bundled model ({} if the manifest is missing)."""
    if not Path(path).is_file():
        return {}
    return {e.config.key(): e.name for e in read_manifest(path)[1]}
