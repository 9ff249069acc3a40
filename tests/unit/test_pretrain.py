"""The bundled checkpoints: every manifest entry is a valid config whose file is there, loads, and
reproduces its recorded test PSNR; and `pretrain` rebuilds an entry and rewrites its record."""

import json

import pytest
import torch

from aecore import pretrain
from aecore.checkpoints import checkpoint_name, load_checkpoint
from aecore.cli import main
from aecore.config import TrainConfig
from aecore.data import load_dataset
from aecore.evaluate import corrupted_test_set, reconstruct
from aecore.metrics import psnr

HEADER, ENTRIES = pretrain.read_manifest()
MAX_BUNDLE_BYTES = 10_000_000  # 40 models: 26 for the pages and experiments, 14 Learn presets


def test_the_manifest_is_complete_and_the_folder_small():
    assert ENTRIES and HEADER["dtype"] == "float16"
    for e in ENTRIES:
        assert pretrain.check(e) == "ok", e.name
        assert e.record["key"] == e.config.key() and e.record["file"] == checkpoint_name(e.config)
        assert e.record["epochs"] == e.config.epochs and e.record["train_seconds"] > 0
        assert e.record["hardware"] and e.record["torch"] and "test_psnr" in e.record["metrics"]
    assert pretrain.folder_bytes() < MAX_BUNDLE_BYTES
    assert any(e.config.dataset == "digits" for e in ENTRIES)  # something works offline


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda e: e.name)
def test_file_loads_and_reproduces_its_recorded_psnr(entry, real_data):
    raw = torch.load(entry.path, weights_only=True)
    assert raw["info"]["dtype"] == "float16"
    for name, v in raw["state_dict"].items():  # BatchNorm's step counter stays an integer
        assert v.dtype == torch.float16 or name.endswith("num_batches_tracked"), name
    ckpt = load_checkpoint(entry.path)
    assert ckpt.config == entry.config and ckpt.config.key() == entry.record["key"]
    assert all(p.dtype == torch.float32 for p in ckpt.model.parameters())
    if entry.config.dataset != "digits" and not real_data:
        return  # synthetic stand-in data: the recorded numbers are about the real test set
    cfg = entry.config
    clean, noisy = corrupted_test_set(load_dataset(cfg.dataset), cfg.corruption, cfg.level, "cpu")
    got = float(psnr(reconstruct(ckpt.model, noisy), clean).mean())
    assert got == pytest.approx(entry.record["metrics"]["test_psnr"], abs=0.05)


def test_manifest_refuses_duplicates_and_unknown_settings(tmp_path):
    item = {"name": "a", "purpose": "", "config": TrainConfig(dataset="digits").to_dict()}
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps({"models": [item, item | {"name": "b"}]}))
    with pytest.raises(ValueError, match="duplicate configs"):
        pretrain.read_manifest(path)
    path.write_text(json.dumps({"models": [item | {"config": {"modle": "dense"}}]}))
    with pytest.raises(ValueError, match="unknown setting"):
        pretrain.read_manifest(path)


def test_pretrain_trains_saves_half_and_records(tmp_path):
    cfg = TrainConfig(dataset="digits", model="dense", latent=4, corruption="none", epochs=1)
    other = TrainConfig(dataset="digits", model="dense", latent=5, corruption="none", epochs=1)
    stale = tmp_path / "old.pt"
    stale.write_bytes(b"x")
    path = tmp_path / "manifest.json"
    items = [
        {"name": "tiny", "purpose": "test", "config": cfg.to_dict(), "file": "old.pt"},
        {"name": "untouched", "purpose": "test", "config": other.to_dict()},
    ]
    path.write_text(json.dumps({"dtype": "float16", "models": items}))

    done = pretrain.pretrain(["tiny"], path=path, device="cpu")

    header, (tiny, untouched) = pretrain.read_manifest(path)
    assert [e.name for e in done] == ["tiny"] and header == {"dtype": "float16"}
    assert pretrain.check(tiny) == "ok" and untouched.record == {}
    assert not stale.exists()  # its config changed, so the old file went
    assert tiny.record["threads"] >= 1 and tiny.record["dtype"] == "float16"
    assert not list(tmp_path.glob(".*.json"))  # a bundle's index is its manifest
    ckpt = load_checkpoint(tiny.path)
    assert ckpt.metrics["test_psnr"] == pytest.approx(tiny.record["metrics"]["test_psnr"])
    with pytest.raises(ValueError, match="not in the manifest: nope"):
        pretrain.pretrain(["nope"], path=path)


def test_cli_lists_the_bundle(capsys):
    assert main(["pretrain", "--list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {m["name"] for m in data["models"]} == {e.name for e in ENTRIES}
    assert {m["status"] for m in data["models"]} == {"ok"}


def test_the_bundled_tasks_get_their_best_classical_method_at_once(tmp_path, monkeypatch):
    """pretrain --baselines keeps each bundled task's best classical result beside the models,
    where the pages find it without tuning again (aecore.best_classical)."""
    from aecore import best_classical

    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr(best_classical, "VAL_IMAGES", 40)
    noisy = TrainConfig(dataset="digits", model="dense", latent=4, corruption="salt_pepper")
    plain = TrainConfig(dataset="digits", model="dense", latent=4, corruption="none")
    path = tmp_path / "bundle" / "manifest.json"
    path.parent.mkdir()
    items = [
        {"name": "a", "purpose": "test", "config": noisy.to_dict()},
        {"name": "b", "purpose": "test", "config": plain.to_dict()},  # no level: nothing to undo
    ]
    path.write_text(json.dumps({"dtype": "float16", "models": items}))
    (done,) = pretrain.pretrain_baselines(path)
    assert done["task"] == ["digits", "salt_pepper", noisy.level]
    (kept,) = (path.parent / best_classical.FOLDER).glob("*.json")
    assert not (tmp_path / "runs" / best_classical.FOLDER).exists()  # kept in the bundle only
    shipped = [tmp_path / "runs" / best_classical.FOLDER, kept.parent]
    monkeypatch.setattr(best_classical, "_folders", lambda: shipped)
    monkeypatch.setattr(best_classical, "_compute", lambda *a: pytest.fail("tuned again"))
    again = best_classical.best_classical(load_dataset("digits"), "salt_pepper", noisy.level)
    assert again.label == done["best"] and again.psnr == done["psnr"]
