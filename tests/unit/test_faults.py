"""Faults: a writer killed with SIGKILL, damaged files in the runs folder, cancelled runs and a
run that runs out of GPU memory. Nothing broken is ever loaded, and the job manager keeps serving.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import torch

import aecore.runs
import aecore.train
from aecore import runcache
from aecore.checkpoints import (
    Checkpoint,
    CheckpointError,
    checkpoint_name,
    find_checkpoint,
    load_checkpoint,
    load_for,
    runs_dir,
    save_checkpoint,
)
from aecore.config import TrainConfig
from aecore.jobs import JobManager
from aecore.models import build_model
from aecore.runs import load_or_train, train_and_save

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0


@pytest.fixture(autouse=True)
def isolated_runs(tmp_path, monkeypatch) -> Path:
    """An empty runs folder and no bundled checkpoints for every test."""
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


def cfg(seed: int = 0, **kw) -> TrainConfig:
    base = dict(dataset="digits", model="dense", latent=2, epochs=1, batch_size=256, seed=seed)
    return TrainConfig(**(base | kw))


def save_untrained(c: TrainConfig, path: Path) -> Path:
    """A valid checkpoint of c's model, untrained (no training: fast)."""
    model = build_model(c, (1, 8, 8))
    return save_checkpoint(path, c, model, [], {}, {"shape": [1, 8, 8]})


class QuickRunner:
    """train_and_save's contract without training: saves an untrained model, records calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, c, on_epoch, should_stop, on_batch, **_) -> Checkpoint | None:
        self.calls.append(c.key())
        path = save_untrained(c, runs_dir() / checkpoint_name(c))
        return load_checkpoint(path)


@pytest.fixture
def managers():
    made: list[JobManager] = []

    def make(**kw) -> JobManager:
        made.append(JobManager(**kw))
        return made[-1]

    yield make
    for m in made:
        m.shutdown()


# -- a real SIGKILL while a checkpoint is being written ------------------------------------------

WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    import torch
    from aecore.checkpoints import save_checkpoint
    from aecore.config import TrainConfig
    from aecore.models import build_model

    folder, stage = Path(sys.argv[1]), sys.argv[2]
    cfg = TrainConfig(dataset="digits", model="deep_mlp", width=1024, epochs=1)
    model = build_model(cfg, (1, 8, 8))  # ~6 MB of weights

    def ready():
        print("READY", flush=True)
        time.sleep(600)  # the parent kills us here

    if stage == "mid-write":  # the file write stalls after its first 64 kB
        real_write = os.write

        def stalling(fd, data):
            real_write(fd, bytes(data[:65536]))
            os.fsync(fd)
            ready()

        os.write = stalling
    else:  # "before-rename": the temporary file is complete and synced, the rename not done
        os.replace = lambda *a, **k: ready()
    save_checkpoint(folder / sys.argv[3], cfg, model, [], {}, {"shape": [1, 8, 8]})
    """
)


@pytest.mark.parametrize("stage", ["mid-write", "before-rename"])
def test_a_writer_killed_with_sigkill_leaves_nothing_that_loads(tmp_path, isolated_runs, stage):
    c = TrainConfig(dataset="digits", model="deep_mlp", width=1024, epochs=1)
    name = checkpoint_name(c)
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(isolated_runs), stage, name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()  # blocks until the writer is inside the write
        assert line.strip() == "READY", proc.stderr.read()
        # While the writer lives, its temporary file is a save in progress: neither swept (by a
        # restart or an eviction), however old it looks, nor evicted.
        (temp,) = isolated_runs.iterdir()
        os.utime(temp, (1, 1))
        assert runcache.remove_stale_temps(isolated_runs, older_than=0) == []
        JobManager().shutdown()
        assert temp.exists()
        evicted = runcache.evict(isolated_runs, limit=1)
        assert evicted == [] and temp.exists()
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(TIMEOUT) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()

    leftovers = list(isolated_runs.iterdir())
    assert [p.name for p in leftovers if not p.name.endswith(".tmp")] == []
    assert len(leftovers) == 1 and leftovers[0].name.startswith(f".{name}.")  # the temp file
    assert leftovers[0].stat().st_size > 0
    # Nothing is found or loaded for the configuration, nor listed as a saved run.
    assert find_checkpoint(c) is None and load_for(c) is None
    assert list(isolated_runs.glob("*.pt")) == []
    if stage == "mid-write":
        with pytest.raises(CheckpointError):
            load_checkpoint(leftovers[0])
    # Its writer is dead (no process holds the file's lock): a restarted app sweeps it at once,
    # however young it is.
    os.utime(leftovers[0])  # just now
    JobManager().shutdown()
    assert list(isolated_runs.iterdir()) == []


# -- damaged files in the runs folder ------------------------------------------------------------


def flip_a_weight_byte(path: Path) -> None:
    """Flip one byte inside a tensor's data: torch.load itself does not notice."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if "/data/" in i.filename and i.file_size > 64)
    data = bytearray(path.read_bytes())
    header = info.header_offset
    start = header + 30 + int.from_bytes(data[header + 26 : header + 28], "little")
    start += int.from_bytes(data[header + 28 : header + 30], "little")
    data[start + 20] ^= 0xFF
    path.write_bytes(bytes(data))


def damage(kind: str, path: Path, c: TrainConfig, scratch: Path) -> None:
    good = save_untrained(c, scratch / "good.pt").read_bytes()
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "garbage":
        path.write_bytes(os.urandom(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "flipped_weight_byte":
        path.write_bytes(good)
        flip_a_weight_byte(path)
    elif kind == "another_runs_file":  # a valid checkpoint, renamed to this config's name
        save_untrained(cfg(seed=999), path)
    elif kind == "pickle_with_code":
        payload = torch.load(scratch / "good.pt", weights_only=True)
        payload["info"]["evil"] = Exploit(str(scratch / "pwned"))
        torch.save(payload, path)


class Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))  # would create the marker file when unpickled


DAMAGE = [
    "truncated",
    "garbage",
    "empty",
    "flipped_weight_byte",
    "another_runs_file",
    "pickle_with_code",
]
MESSAGES = {
    "flipped_weight_byte": "checksum",
    "another_runs_file": "holds the run",
    "pickle_with_code": "could run code",
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_checkpoint_is_refused_logged_and_trained_again(
    kind, tmp_path, isolated_runs, managers, caplog
):
    c = cfg(seed=7)
    path = isolated_runs / checkpoint_name(c)
    damage(kind, path, c, tmp_path)
    if kind in MESSAGES:
        with pytest.raises(CheckpointError, match=MESSAGES[kind]):
            load_checkpoint(path, key=c.key())

    runner = QuickRunner()
    jobs = managers(runner=runner)
    with caplog.at_level(logging.WARNING, logger="aecore.checkpoints"):
        assert jobs.result(c) is None  # never loaded...
    assert f"ignoring checkpoint {path}" in caplog.text  # ...but reported
    assert not path.exists() and (isolated_runs / (path.name + ".bad")).exists()  # moved aside
    snap = jobs.submit(c, session="a").wait(TIMEOUT)  # counts as not trained: trained again
    assert snap.status == "done" and not snap.cached and runner.calls == [c.key()]
    assert load_checkpoint(path, key=c.key()).config == c
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("kind", ["truncated", "flipped_weight_byte", "another_runs_file"])
def test_load_or_train_retrains_over_a_damaged_checkpoint(
    kind, tmp_path, isolated_runs, monkeypatch, caplog
):
    c = cfg(seed=8)
    path = isolated_runs / checkpoint_name(c)
    damage(kind, path, c, tmp_path)
    trained = []

    def fake_train_and_save(c, device=None, **kw):
        trained.append(c.key())
        return load_checkpoint(save_untrained(c, path))

    monkeypatch.setattr(aecore.runs, "train_and_save", fake_train_and_save)
    with caplog.at_level(logging.WARNING, logger="aecore.checkpoints"):
        ckpt, cached = load_or_train(c)
    assert not cached and trained == [c.key()] and ckpt.config == c
    assert "ignoring checkpoint" in caplog.text


def test_a_damaged_runs_file_falls_back_to_a_good_bundled_one(tmp_path, isolated_runs, caplog):
    c = cfg(seed=9)
    bundled = tmp_path / "bundled"
    save_untrained(c, bundled / checkpoint_name(c))
    (isolated_runs / checkpoint_name(c)).write_bytes(b"junk")
    with caplog.at_level(logging.WARNING, logger="aecore.checkpoints"):
        ckpt = load_for(c)
    assert ckpt is not None and Path(ckpt.info["path"]).parent == bundled
    assert "ignoring checkpoint" in caplog.text


def test_files_written_before_the_checksum_existed_still_load(tmp_path):
    """Bundled checkpoints made by an older aecore carry no weights_sha256 (format version 1,
    which had no record_sha256 either: a file of today's version 2 must have both)."""
    c = cfg(seed=10)
    path = save_untrained(c, tmp_path / checkpoint_name(c))
    payload = torch.load(path, weights_only=True)
    del payload["weights_sha256"], payload["record_sha256"]
    payload["version"] = 1
    torch.save(payload, path)
    assert load_checkpoint(path, key=c.key()).config == c


# -- cancelled runs write nothing ----------------------------------------------------------------


def test_cancelling_a_real_run_midway_writes_nothing(isolated_runs, managers):
    jobs = managers()  # the real runner
    c = cfg(seed=11, epochs=200, batch_size=16)  # long enough to be caught running
    job = jobs.submit(c, session="a")
    deadline = time.monotonic() + TIMEOUT
    while job.snapshot().fraction == 0.0:
        assert time.monotonic() < deadline, job.snapshot()
        time.sleep(0.01)
    assert jobs.cancel(job.key, "a") is True
    snap = job.wait(TIMEOUT)
    assert snap.status == "cancelled" and snap.checkpoint is None
    assert 0.0 < snap.fraction < 1.0
    assert list(isolated_runs.iterdir()) == []  # no checkpoint, no temporary file
    assert jobs.result(c) is None


def test_a_run_cancelled_while_it_is_evaluated_writes_nothing(isolated_runs):
    """Training finished, then the stop came: the run is still not saved."""
    stop = {"now": False}

    def last_epoch(stats) -> None:
        stop["now"] = stats.epoch == stats.epochs

    c = cfg(seed=12)
    result = train_and_save(c, on_epoch=last_epoch, should_stop=lambda: stop["now"], device="cpu")
    assert result is None and stop["now"]
    assert list(isolated_runs.iterdir()) == []


# -- out of GPU memory -----------------------------------------------------------------------


def test_out_of_memory_fails_the_run_with_advice_and_the_manager_keeps_serving(
    isolated_runs, managers, monkeypatch, caplog
):
    """A model that runs out of GPU memory from its third training step on, as a GPU would (every
    step from then on: on a GPU the CUDA-graph capture's warm-up steps come first, and its
    failure must not hide the eager run's)."""
    real_init = aecore.train.init_model
    doomed = cfg(seed=13, batch_size=32)

    def init_model(c, shape, device):
        model = real_init(c, shape, device)
        if c == doomed:
            calls = {"n": 0}
            real_terms = model.loss_terms

            def loss_terms(*args, **kwargs):
                calls["n"] += 1
                if calls["n"] >= 3:
                    raise torch.cuda.OutOfMemoryError(
                        "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.10 GiB total)"
                    )
                return real_terms(*args, **kwargs)

            model.loss_terms = loss_terms
        return model

    monkeypatch.setattr(aecore.train, "init_model", init_model)
    jobs = managers()  # the real runner
    with caplog.at_level(logging.WARNING, logger="aecore.jobs"):
        failed = jobs.submit(doomed, session="a")
        other = jobs.submit(cfg(seed=14), session="b")  # queued behind it
        snap = failed.wait(TIMEOUT)
        assert other.wait(TIMEOUT).status == "done"
    assert snap.status == "failed" and snap.checkpoint is None
    assert "out of memory" in snap.error and "smaller batch size" in snap.error
    assert "Traceback" not in snap.error and "GiB" not in snap.error  # advice, not internals
    assert "ran out of memory" in caplog.text  # the operator sees it in the server log
    assert list(isolated_runs.glob("*.pt")) == [isolated_runs / checkpoint_name(cfg(seed=14))]
    # The same configuration can be asked for again (here it fails again: the model is cursed).
    assert jobs.submit(doomed, session="a").wait(TIMEOUT).status == "failed"


def test_the_runs_folder_can_be_copied_to_another_machine(
    tmp_path, isolated_runs, managers, monkeypatch
):
    """A restart elsewhere (the folder copied, times not kept) finds every finished run."""
    runner = QuickRunner()
    jobs = managers(runner=runner)
    configs = [cfg(seed=s) for s in (21, 22, 23)]
    for c in configs:
        assert jobs.submit(c, session=f"s{c.seed}").wait(TIMEOUT).status == "done"
    copy = tmp_path / "copied"
    shutil.copytree(isolated_runs, copy)
    monkeypatch.setenv("AECORE_RUNS_DIR", str(copy))
    fresh = managers(runner=QuickRunner())
    for c in configs:
        snap = fresh.submit(c, session="x").snapshot()
        assert snap.status == "done" and snap.cached
