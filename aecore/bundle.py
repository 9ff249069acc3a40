"""A trained run as one ZIP: its config, test metrics, per-epoch history, image grids, a README,
and optionally the checkpoint itself, so a run can be shared or read without aecore.

The archive is deterministic (fixed member order and timestamps): the same run gives the same
bytes, which keeps it cacheable and diffable.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import asdict, fields

from aecore.best_classical import best_classical
from aecore.checkpoints import Checkpoint, checkpoint_name, download_bytes
from aecore.corruptions import has_level
from aecore.data import ImageDataset, load_dataset
from aecore.evaluate import corrupted_test_set, reconstruct
from aecore.history import EpochStats
from aecore.models import is_variational
from aecore.plots import grid_png

ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # every member's timestamp: same run, same bytes
GRID_IMAGES = 10  # test images per grid row


def history_csv(history: list[EpochStats]) -> str:
    """One row per epoch, every EpochStats field, with a header; empty cells for None."""
    names = [f.name for f in fields(EpochStats)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for stats in history:
        writer.writerow({k: "" if v is None else v for k, v in asdict(stats).items()})
    return buf.getvalue()


def grids(ckpt: Checkpoint, ds: ImageDataset, n: int = GRID_IMAGES) -> dict[str, bytes]:
    """PNG files of the first n test images: each row alone, and all rows in one grid (top to
    bottom: original, corrupted, reconstructed). The corruption uses evaluate.TEST_SEED, so
    these are the images behind the test metrics."""
    cfg = ckpt.config
    clean, noisy = corrupted_test_set(ds, cfg.corruption, cfg.level, "cpu", limit=n)
    model = ckpt.model
    recon = reconstruct(model, noisy)  # on noisy's device (the CPU), whatever the model's
    rows = {"original": clean, "corrupted": noisy, "reconstructed": recon}
    if not has_level(cfg.corruption):
        del rows["corrupted"]  # the input is the original
    out = {f"images/{name}.png": grid_png({name: x}) for name, x in rows.items()}
    return {"images/grid.png": grid_png(rows)} | out


def readme(ckpt: Checkpoint, names: list[str], checkpoint_file: str | None) -> str:
    cfg = ckpt.config
    unit = "nats per image (negative ELBO)" if is_variational(cfg.model) else "per pixel"
    lines = [
        f"aecore run {cfg.key()}: {cfg.model} on {cfg.dataset}, corruption {cfg.corruption}"
        + (f" at level {cfg.level:g}" if has_level(cfg.corruption) else ""),
        "",
        "config.json     the TrainConfig ('config') and its key ('key'); rebuild it with",
        "                aecore.config.TrainConfig.from_dict(json.load(f)['config'])",
        "metrics.json    'test': metrics on the whole test set (mse, psnr in dB, ssim; suffixes",
        "                _noisy, _median3, _median5, _pca are the corrupted input and baselines,",
        "                _best the best classical method tuned on validation images, named in",
        "                'best_classical' with its values and every method's validation PSNR);",
        f"                loss values are {unit}. 'info': training seconds, device, hardware.",
        "history.csv     one row per epoch: train/validation loss and its terms, validation",
        "                PSNR (dB), seconds; empty cells where a term does not apply",
        "images/         the first test images: grid.png has one row each of original,",
        "                corrupted (if any) and reconstructed; the other files hold one row each",
    ]
    if checkpoint_file:
        lines += [
            f"{checkpoint_file:<15} the checkpoint: weights and the data above. Load it with",
            "                from aecore.checkpoints import load_checkpoint",
            f"                ckpt = load_checkpoint('{checkpoint_file}')  # weights_only, no code",
            "                ckpt.model.reconstruct(images)  # float (N, C, H, W) in [0, 1]",
        ]
    else:
        lines += [
            "The checkpoint is not included. With aecore installed, train the same config",
            "(python -m aecore train ... or the app); the key above names its file.",
        ]
    lines += ["", "Files: " + ", ".join(names)]
    return "\n".join(lines) + "\n"


def run_bundle(
    ckpt: Checkpoint,
    ds: ImageDataset | None = None,
    include_checkpoint: bool = True,
    n_images: int = GRID_IMAGES,
) -> bytes:
    """The run as ZIP bytes: README.txt, config.json, metrics.json, history.csv, images/*.png,
    and (include_checkpoint, for a run that was saved: ckpt.info["path"]) the .pt checkpoint,
    serialized again from memory if the file was evicted meanwhile, never an error."""
    cfg = ckpt.config
    ds = ds if ds is not None else load_dataset(cfg.dataset)
    info = {k: v for k, v in ckpt.info.items() if k != "path"}  # a server path means nothing
    metrics: dict[str, object] = {"test": ckpt.metrics, "info": info}
    best = best_classical(ds, cfg.corruption, cfg.level)
    if best is not None:
        metrics["test"] = ckpt.metrics | best.metrics()
        metrics["best_classical"] = {
            "method": best.method,
            "params": best.params,
            "label": best.label,
            "validation_psnr": dict(best.ranking),
        }
    files: dict[str, bytes] = {
        "config.json": _json({"key": cfg.key(), "config": cfg.to_dict()}),
        "metrics.json": _json(metrics),
        "history.csv": history_csv(ckpt.history).encode(),
    }
    files |= grids(ckpt, ds, n_images)
    path = ckpt.info.get("path")
    pt_name = None
    # The file may have been evicted since the run was loaded: then the run is serialized again
    # from memory (checkpoints.download_bytes), so the bundle still holds a checkpoint that loads.
    data = download_bytes(ckpt) if include_checkpoint and path else None
    if data is not None:
        pt_name = checkpoint_name(cfg)
        files[pt_name] = data
    files = {"README.txt": readme(ckpt, list(files), pt_name).encode()} | files
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            member = zipfile.ZipInfo(f"{cfg.model}-{cfg.key()}/{name}", date_time=ZIP_TIME)
            # PNGs and the .pt are compressed already; deflating them gains nothing.
            stored = name.endswith((".png", ".pt"))
            member.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            zf.writestr(member, data)
    return buf.getvalue()


def _json(value: object) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True, default=str) + "\n").encode()
