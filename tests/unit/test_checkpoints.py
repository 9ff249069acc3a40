"""Checkpoints: round trip, and every way a file can be wrong is refused, never loaded."""

import os
from pathlib import Path

import pytest
import torch

from aecore.checkpoints import CheckpointError, find_checkpoint, load_checkpoint, save_checkpoint
from aecore.config import TrainConfig
from aecore.cudagraph import capture_reason
from aecore.runs import load_or_train, train_and_save

CFG = TrainConfig(
    dataset="digits", model="dense", latent=8, corruption="masking", level=0.2, epochs=1
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    ckpt = train_and_save(CFG, device="cpu", out_dir=out)
    return ckpt, out


def test_round_trip(saved):
    ckpt, out = saved
    loaded = load_checkpoint(ckpt.info["path"])
    assert loaded.config == CFG
    assert loaded.metrics == ckpt.metrics and loaded.history == ckpt.history
    x = torch.rand(4, 1, 8, 8)
    assert torch.equal(loaded.model.reconstruct(x), ckpt.model.cpu().reconstruct(x))
    assert loaded.info["hardware"] and loaded.info["train_seconds"] > 0
    # How the step ran, said once: "eager on cpu: ...", not "eager: eager on cpu: ...".
    assert loaded.info["step"] == capture_reason(CFG, loaded.model, "cpu")
    assert loaded.info["step"].startswith("eager on cpu")
    assert find_checkpoint(CFG, [out]) == out / os.path.basename(ckpt.info["path"])


def test_a_second_request_loads_from_disk(saved, monkeypatch):
    _, out = saved
    monkeypatch.setenv("AECORE_RUNS_DIR", str(out))
    ckpt, cached = load_or_train(CFG)
    assert cached and ckpt.config == CFG


def _payload(saved):
    return torch.load(saved[0].info["path"], weights_only=True)


def test_truncated_and_garbage_files_are_refused(saved, tmp_path):
    data = Path(saved[0].info["path"]).read_bytes()
    for name, blob in [("trunc.pt", data[: len(data) // 2]), ("junk.pt", b"not a checkpoint")]:
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(CheckpointError, match="not a readable checkpoint"):
            load_checkpoint(tmp_path / name)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_config_that_does_not_match_its_key_is_refused(saved, tmp_path):
    payload = _payload(saved)
    payload["config"]["latent"] = 9
    torch.save(payload, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="does not match its key"):
        load_checkpoint(tmp_path / "edited.pt")


def test_weights_that_do_not_fit_the_config_are_refused(saved, tmp_path):
    payload = _payload(saved)
    payload["state_dict"]["encoder.1.weight"] = torch.zeros(3, 3)
    torch.save(payload, tmp_path / "shapes.pt")
    with pytest.raises(CheckpointError, match="does not match its config"):
        load_checkpoint(tmp_path / "shapes.pt")


class Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file when unpickled


def test_a_checkpoint_crafted_to_run_code_does_not_run_it(saved, tmp_path):
    marker = tmp_path / "pwned"
    payload = _payload(saved)
    payload["info"]["evil"] = Exploit(str(marker))
    torch.save(payload, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not marker.exists()


def test_a_crash_while_writing_leaves_nothing_that_loads(saved, tmp_path, monkeypatch):
    ckpt = saved[0]

    def crash(obj, f, *args, **kwargs):
        f.write(b"partial bytes")
        raise KeyboardInterrupt  # as if the process were killed mid-write

    monkeypatch.setattr(torch, "save", crash)
    target = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(target, CFG, ckpt.model, ckpt.history, ckpt.metrics)
    assert list(tmp_path.iterdir()) == []


def test_a_cancelled_run_writes_nothing(tmp_path):
    cfg = TrainConfig(dataset="digits", model="dense", latent=4, epochs=3)
    assert train_and_save(cfg, should_stop=lambda: True, device="cpu", out_dir=tmp_path) is None
    assert list(tmp_path.iterdir()) == []
