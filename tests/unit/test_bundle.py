"""aecore/bundle.py: a run as one ZIP that can be read back without aecore's internals."""

import csv
import io
import json
import zipfile
from dataclasses import fields, replace
from pathlib import Path

import pytest
from PIL import Image

from aecore.bundle import history_csv, run_bundle
from aecore.checkpoints import checkpoint_name, load_checkpoint
from aecore.config import TrainConfig
from aecore.history import EpochStats
from aecore.runs import train_and_save

CFG = TrainConfig(
    dataset="digits", corruption="gaussian", level=0.3, model="dense", latent=4, epochs=2
)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return train_and_save(CFG, device="cpu", out_dir=tmp_path_factory.mktemp("bundle_runs"))


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None  # every CRC checks out
        return {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}


def test_the_zip_holds_every_part_and_each_reads_back(ckpt):
    files = members(run_bundle(ckpt))
    assert set(files) == {
        "README.txt",
        "config.json",
        "metrics.json",
        "history.csv",
        "images/grid.png",
        "images/original.png",
        "images/corrupted.png",
        "images/reconstructed.png",
        checkpoint_name(CFG),
    }
    config = json.loads(files["config.json"])
    assert TrainConfig.from_dict(config["config"]) == CFG and config["key"] == CFG.key()

    metrics = json.loads(files["metrics.json"])
    assert metrics["test"]["test_psnr"] == pytest.approx(ckpt.metrics["test_psnr"])
    assert metrics["info"]["train_seconds"] > 0 and metrics["info"]["device"] == "cpu"
    assert metrics["info"]["hardware"] and "path" not in metrics["info"]

    rows = list(csv.DictReader(io.StringIO(files["history.csv"].decode())))
    assert len(rows) == CFG.epochs == len(ckpt.history)
    assert list(rows[0]) == [f.name for f in fields(EpochStats)]
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[-1]["val_psnr_db"]) == pytest.approx(ckpt.history[-1].val_psnr_db)
    assert rows[0]["train_kl"] == ""  # not a VAE: an empty cell, not "None"

    for name in ("grid", "original", "corrupted", "reconstructed"):
        png = files[f"images/{name}.png"]
        assert png.startswith(PNG)
    grid = Image.open(io.BytesIO(files["images/grid.png"]))
    one_row = Image.open(io.BytesIO(files["images/original.png"]))
    assert grid.width == one_row.width and grid.height > 2.5 * one_row.height  # three rows

    readme = files["README.txt"].decode()
    assert "load_checkpoint" in readme and "history.csv" in readme and CFG.key() in readme


def test_the_checkpoint_inside_loads(ckpt, tmp_path):
    files = members(run_bundle(ckpt))
    path = tmp_path / checkpoint_name(CFG)
    path.write_bytes(files[checkpoint_name(CFG)])
    assert load_checkpoint(path).config == CFG


def test_without_checkpoint_and_without_corruption(ckpt):
    files = members(run_bundle(ckpt, include_checkpoint=False))
    assert checkpoint_name(CFG) not in files
    assert "not included" in files["README.txt"].decode()

    clean = TrainConfig(dataset="digits", corruption="none", model="dense", latent=2, epochs=1)
    other = train_and_save(clean, device="cpu", out_dir=None)
    names = set(members(run_bundle(other)))
    assert "images/corrupted.png" not in names and "images/reconstructed.png" in names


def test_a_checkpoint_evicted_meanwhile_is_still_included(ckpt, tmp_path):
    """Issue #12 item 8: another session's save evicted the file after this run was loaded. The
    bundle is made anyway, with the run serialized again from memory, and it loads."""
    gone = tmp_path / "runs" / checkpoint_name(CFG)
    gone.parent.mkdir()
    gone.write_bytes(Path(ckpt.info["path"]).read_bytes())
    run = replace(ckpt, info={**ckpt.info, "path": str(gone)})
    assert members(run_bundle(run))[checkpoint_name(CFG)] == gone.read_bytes()
    gone.unlink()
    files = members(run_bundle(run))
    path = tmp_path / checkpoint_name(CFG)
    path.write_bytes(files[checkpoint_name(CFG)])
    loaded = load_checkpoint(path, key=CFG.key())
    assert loaded.config == CFG and loaded.metrics == ckpt.metrics
    assert loaded.history == ckpt.history


def test_the_same_run_gives_the_same_bytes(ckpt):
    assert run_bundle(ckpt) == run_bundle(ckpt)


def test_history_csv_of_a_vae_fills_the_kl_column():
    stats = EpochStats(1, 1, 100.0, 90.0, 101.0, 91.0, 15.0, 2.0, train_kl=10.0, val_kl=10.0)
    row = next(csv.DictReader(io.StringIO(history_csv([stats]))))
    assert float(row["train_kl"]) == 10.0 and row["train_reg"] == ""
