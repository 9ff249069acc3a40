"""python -m aecore with hostile arguments: out of range, wrong type, path-like, very long. Each is
refused in one line with exit code 2, and nothing is read or written outside the runs folder."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from aecore.checkpoints import checkpoint_name
from aecore.cli import MAX_MESSAGE, main

LONG = "x" * 100_000
TINY = ["--dataset", "digits", "--model", "dense", "--latent", "2", "--epochs", "1"]


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Path:
    """cwd, HOME and the runs folder all inside tmp_path, so any stray write shows up there."""
    for name in ("cwd", "home", "runs"):
        (tmp_path / name).mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")
    return tmp_path


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def refused(capsys, argv: list[str], message: str) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err and len(err) <= MAX_MESSAGE + 10
    assert message in err, err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", *TINY, "--device", "../x"], "unknown device"),
        (["train", *TINY, "--device", "/dev/nvidia0"], "unknown device"),
        (["train", *TINY, "--device", "cuda:99"], "not available"),
        (["train", *TINY, "--device", LONG], "unknown device"),
        (["train", "--model", LONG], "invalid choice"),
        (["train", "--dataset", "../../etc/passwd"], "invalid choice"),
        (["train", "--dataset", "/etc/passwd"], "invalid choice"),
        (["train", "--corruption", "..\\..\\x"], "invalid choice"),
        (["train", *TINY, "--level", "nan"], "level"),
        (["train", *TINY, "--level", "inf"], "level"),
        (["train", *TINY, "--lr", "-1"], "lr must be between"),
        (["train", *TINY, "--lr", "1e400"], "lr"),
        (["train", *TINY, "--epochs", "1e9"], "invalid int value"),
        (["train", *TINY, "--epochs", "99999999999999999999"], "epochs must be between"),
        (["train", *TINY, "--seed", "-1"], "seed must be between"),
        (["train", *TINY, "--batch-size", "0"], "batch_size must be between"),
        (["train", *TINY, "--limit-train", "100000000000"], "limit_train must be between"),
        (["train", *TINY, "--latent", "99999"], "latent must be between"),
        (["train", *TINY, "--reg-weight", "-5", "--regularizer", "sparse"], "reg_weight"),
        (["train", *TINY, "--epochs", LONG], "invalid int value"),
        (["summary", "dense", "--latent", "abc"], "invalid int value"),
        (["evaluate", "/"], "no checkpoint"),
        (["evaluate", "/dev/zero"], "no checkpoint"),
        (["evaluate", "../../../../etc/passwd"], "no checkpoint"),
        (["evaluate", "/etc/passwd"], "not a readable checkpoint"),
        (["evaluate", LONG], "no checkpoint"),
        (["pretrain", "--only", "../../etc/passwd"], "manifest"),
    ],
)
def test_hostile_arguments_are_refused_in_one_line(sandbox, capsys, argv, message):
    refused(capsys, argv, message)
    assert files_under(sandbox) == set()  # nothing written anywhere


def test_train_writes_only_its_checkpoint_in_the_runs_folder(sandbox, capsys):
    assert main(["train", *TINY, "--device", "cpu", "--json"]) == 0
    # The checkpoint, and the baselines cached beside the runs: metrics as JSON, the PCA basis
    # as tensors that load with weights_only (aecore.evaluate).
    cached = {p for p in files_under(sandbox) if Path(p).parent == Path("runs/baselines")}
    assert cached and all(p.endswith((".json", ".pt")) for p in cached)
    # and its entry in the run index, named after it (aecore.runindex)
    written = files_under(sandbox) - cached
    (path,) = [p for p in written if not p.endswith(".pt.json")]
    assert Path(path).parent == Path("runs") and path.endswith(".pt")
    assert written == {path, f"runs/.{Path(path).name}.json"}
    # evaluate reads the file it is given and writes nothing (the access time aside).
    before = {p: p.stat().st_mtime_ns for p in sandbox.rglob("*") if p.is_file()}
    assert main(["evaluate", str(sandbox / path), "--json"]) == 0
    assert {p: p.stat().st_mtime_ns for p in sandbox.rglob("*") if p.is_file()} == before


def test_a_relative_runs_folder_with_dots_stays_where_it_points(sandbox, capsys, monkeypatch):
    """AECORE_RUNS_DIR is the operator's choice, taken as given; the file name adds no parts."""
    monkeypatch.setenv("AECORE_RUNS_DIR", "../runs")
    assert main(["train", *TINY, "--device", "cpu", "--json"]) == 0
    assert {Path(p).parent for p in files_under(sandbox)} == {Path("runs"), Path("runs/baselines")}


@pytest.mark.parametrize("model", ["../x", "a/b", "", "dense\x00"])
def test_a_checkpoint_name_can_never_be_a_path(model):
    fake = SimpleNamespace(model=model, dataset="digits", key=lambda: "0" * 16)
    with pytest.raises(ValueError, match="not a safe checkpoint file name"):
        checkpoint_name(fake)


def test_cuda_is_refused_clearly_where_there_is_none(capsys, sandbox):
    import torch

    if torch.cuda.is_available():  # on a GPU machine "cuda" is fine; an absent index is not
        refused(capsys, ["train", *TINY, "--device", f"cuda:{torch.cuda.device_count()}"], "not")
    else:
        refused(capsys, ["train", *TINY, "--device", "cuda"], "not available on this machine")
    assert os.listdir(sandbox / "runs") == []
