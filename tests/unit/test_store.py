"""aecore.store: one artifact store shared by servers and workers. Two runs folders stand for two
servers on different machines, one file:// folder for the bucket they share: a run saved on one is
listed and loads on the other; a writer that dies between its temporary put and the rename leaves
nothing under the final name; a corrupted object in the store is refused, never loaded."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pytest
import torch

from aecore import runindex, settings, store
from aecore.checkpoints import (
    CheckpointSaveError,
    checkpoint_name,
    find_checkpoint,
    load_for,
    save_checkpoint,
)
from aecore.config import TrainConfig
from aecore.models import build_model

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bucket(tmp_path, monkeypatch) -> Path:
    """The shared store as a folder (a file:// URL)."""
    folder = tmp_path / "bucket"
    fresh(tmp_path, monkeypatch, folder.as_uri())
    return folder


@pytest.fixture(params=["file", "memory", "s3"])
def url(request, tmp_path, monkeypatch):
    """The shared store: a folder (write, then rename); fsspec's in-process object store (whole
    PUTs, no rename); a real S3 server on loopback (moto), where s3fs and moto are installed."""
    if request.param == "file":
        yield fresh(tmp_path, monkeypatch, (tmp_path / "bucket").as_uri())
    elif request.param == "memory":
        url = fresh(tmp_path, monkeypatch, f"memory://{tmp_path.name}/runs")
        yield url
        fsspec.filesystem("memory").rm(f"/{tmp_path.name}", recursive=True)
    else:
        # A bucket per test: moto keeps its buckets in this process across servers.
        with moto_bucket(monkeypatch, f"aecore-test-{uuid.uuid4().hex[:8]}") as url:
            yield fresh(tmp_path, monkeypatch, url)


def fresh(tmp_path: Path, monkeypatch, url: str) -> str:
    """AECORE_STORE=url, with fresh module state and no listing throttle."""
    monkeypatch.setenv("AECORE_STORE", url)
    monkeypatch.delenv("AECORE_RUNS_MAX_MB", raising=False)
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")
    monkeypatch.setattr(store, "PULL_EVERY_S", 0.0)
    monkeypatch.setattr(store, "_tried", {})
    monkeypatch.setattr(store, "_last_pull", {})
    store._open.cache_clear()
    return url


@contextlib.contextmanager
def moto_bucket(monkeypatch, name: str):
    s3fs = pytest.importorskip("s3fs", reason="s3:// needs s3fs (pip install s3fs)")
    moto_server = pytest.importorskip("moto.server", reason="needs moto[server]")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    s3fs.S3FileSystem.clear_instance_cache()  # one made for an earlier server's port
    try:
        s3fs.S3FileSystem().mkdir(name)  # creates the bucket
        yield f"s3://{name}/runs"
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        server.stop()


def names_in(url: str) -> list[str]:
    fs, root = fsspec.core.url_to_fs(url)
    fs.invalidate_cache(root)
    try:
        return sorted(str(p).rsplit("/", 1)[-1] for p in fs.ls(root, detail=False))
    except FileNotFoundError:
        return []


def flip_a_byte(url: str, name: str) -> None:
    fs, root = fsspec.core.url_to_fs(url)
    data = bytearray(fs.cat_file(f"{root}/{name}"))
    data[len(data) // 2] ^= 0xFF  # in the weights
    fs.pipe_file(f"{root}/{name}", bytes(data))


def on(server: Path, monkeypatch) -> Path:
    """From now on this test is the process whose runs folder is `server`."""
    monkeypatch.setenv("AECORE_RUNS_DIR", str(server))
    return server


def cfg(seed: int = 0) -> TrainConfig:
    return TrainConfig(dataset="digits", model="dense", latent=2, epochs=1, seed=seed)


def save(c: TrainConfig, folder: Path, psnr: float = 21.5) -> tuple[Path, torch.nn.Module]:
    """A run of c saved and indexed in folder, as aecore.runs.train_and_save does."""
    torch.manual_seed(c.seed)
    model = build_model(c, (1, 8, 8))
    info = {"shape": [1, 8, 8]}
    path = save_checkpoint(folder / checkpoint_name(c), c, model, [], {"test_psnr": psnr}, info)
    runindex.write_entry(path, c, {"test_psnr": psnr}, info, 0)
    return path, model


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_run_saved_on_one_server_is_listed_and_loads_on_the_other(url, tmp_path, monkeypatch):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _, model = save(cfg(), on(a, monkeypatch))
    name = checkpoint_name(cfg())
    assert names_in(url) == [f".{name}.json", name]

    listed = runindex.list_runs(on(b, monkeypatch))
    assert [(e.name, e.config, e.metrics) for e in listed] == [(name, cfg(), {"test_psnr": 21.5})]
    assert listed[0].path == b / name and (b / name).is_file()
    ckpt = load_for(cfg())
    assert ckpt is not None and ckpt.info["path"] == str(b / name)
    assert same_weights(ckpt.model, model)

    on(c, monkeypatch)  # a third server asks by config, before any listing
    assert find_checkpoint(cfg()) == c / name
    ckpt = load_for(cfg())
    assert ckpt is not None and same_weights(ckpt.model, model)


def test_without_a_store_the_other_server_sees_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv("AECORE_STORE", raising=False)
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")
    save(cfg(), on(tmp_path / "a", monkeypatch))
    on(tmp_path / "b", monkeypatch)
    assert runindex.list_runs(tmp_path / "b") == [] and load_for(cfg()) is None


def test_only_the_runs_folder_is_published(bucket, tmp_path, monkeypatch):
    on(tmp_path / "a", monkeypatch)
    save(cfg(), tmp_path / "elsewhere")  # e.g. the bundled folder being built
    assert names_in(bucket.as_uri()) == []


CRASH = """
import os, sys
from aecore.checkpoints import checkpoint_name, save_checkpoint
from aecore.config import TrainConfig
from aecore.models import build_model

bucket, runs, real = sys.argv[1], sys.argv[2], os.replace

def replace(src, dst):
    if str(dst).startswith(bucket):
        os._exit(3)  # the writer dies after its temporary put, before the rename
    real(src, dst)

os.replace = replace
cfg = TrainConfig(dataset="digits", model="dense", latent=2, epochs=1, seed=0)
save_checkpoint(os.path.join(runs, checkpoint_name(cfg)), cfg, build_model(cfg, (1, 8, 8)), [], {})
"""


def test_a_crash_between_the_put_and_the_rename_leaves_nothing_that_loads(
    bucket, tmp_path, monkeypatch
):
    a, b = tmp_path / "a", tmp_path / "b"
    env = {**os.environ, "AECORE_RUNS_DIR": str(a), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", CRASH, str(bucket), str(a)], env=env, timeout=300, cwd=ROOT
    )
    name = checkpoint_name(cfg())
    assert done.returncode == 3 and (a / name).is_file()  # saved here, died publishing it
    left = [p.name for p in bucket.iterdir()]
    assert len(left) == 1 and left[0].startswith(f".{name}.") and left[0].endswith(".tmp")
    assert (bucket / left[0]).stat().st_size > 0  # the whole put, only the rename missing

    on(b, monkeypatch)
    assert runindex.list_runs(b) == [] and find_checkpoint(cfg()) is None
    assert load_for(cfg()) is None and list(b.glob("*.pt")) == []

    save(cfg(1), on(a, monkeypatch))  # the next publish sweeps the dead writer's put
    assert sorted(p.name for p in bucket.iterdir()) == sorted(
        [checkpoint_name(cfg(1)), f".{checkpoint_name(cfg(1))}.json"]
    )


def test_a_corrupted_object_in_the_store_is_refused(url, tmp_path, monkeypatch, caplog):
    a, b = tmp_path / "a", tmp_path / "b"
    _, model = save(cfg(), on(a, monkeypatch))
    name = checkpoint_name(cfg())
    flip_a_byte(url, name)

    on(b, monkeypatch)
    with caplog.at_level(logging.WARNING):
        assert runindex.list_runs(b) == []  # the listing checks size and SHA-256: not copied
    assert "not the file its index entry describes" in caplog.text and not (b / name).exists()
    assert load_for(cfg()) is None  # copied on demand, refused by load_checkpoint's checks
    assert not (b / name).exists() and (b / f"{name}.bad").is_file()

    _, model = save(cfg(), on(a, monkeypatch))  # trained again: a good object replaces it
    on(b, monkeypatch)
    ckpt = load_for(cfg())
    assert ckpt is not None and same_weights(ckpt.model, model)
    assert [e.name for e in runindex.list_runs(b)] == [name]


def test_a_store_that_cannot_be_written_fails_the_save_in_words(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    monkeypatch.setenv("AECORE_STORE", (blocker / "runs").as_uri())
    a = on(tmp_path / "a", monkeypatch)
    with pytest.raises(CheckpointSaveError, match="could not be copied to the shared store"):
        save(cfg(), a)
    assert (a / checkpoint_name(cfg())).is_file()  # kept here: this server still has it


NEEDS_A_PACKAGE = "gcsfs" if importlib.util.find_spec("gcsfs") is None else None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("shared/runs", "not an absolute folder"),
        ("file://shared/runs", "file:///shared/runs (three slashes)"),
        ("s3://", "names no bucket: write s3://bucket/prefix"),
        ("nosuch://bucket/runs", "'nosuch' is not a storage protocol fsspec knows"),
        ("{runs}", "is the runs folder itself"),
        *([("gs://bucket/runs", "needs a package")] if NEEDS_A_PACKAGE else []),
    ],
)
def test_an_unusable_store_setting_is_an_error_in_words(
    value, message, tmp_path, monkeypatch, caplog
):
    settings._parse.cache_clear()
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("AECORE_STORE", value.format(runs=tmp_path / "runs"))
    with caplog.at_level(logging.ERROR, logger="aecore.settings"):
        assert settings.current().store_url is None  # no store: each process keeps its runs
    assert message in caplog.text and "no shared store is used" in caplog.text
    with pytest.raises(ValueError, match="AECORE_STORE"):
        settings.store_url(value.format(runs=tmp_path / "runs"), tmp_path / "runs")


def test_usable_store_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    for value, url in [
        ("", None),
        ("/shared/runs/", "file:///shared/runs"),
        ("file:///shared/runs", "file:///shared/runs"),
        ("memory://bucket/runs/", "memory://bucket/runs"),
    ]:
        monkeypatch.setenv("AECORE_STORE", value)
        assert settings.current().store_url == url


NO_STORE = """
import sys
from aecore import runindex
from aecore.checkpoints import load_for
from aecore.config import TrainConfig
assert load_for(TrainConfig(dataset="digits", model="dense", latent=2, seed=7)) is None
assert runindex.list_runs(sys.argv[1]) == []
print(sorted(m for m in ("aecore.store", "fsspec") if m in sys.modules))
"""


def test_without_a_store_neither_the_store_nor_fsspec_is_loaded(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AECORE_STORE"}
    env |= {"AECORE_RUNS_DIR": str(tmp_path / "runs"), "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", NO_STORE, str(tmp_path / "runs")],
        env=env,
        timeout=300,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
