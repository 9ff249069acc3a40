"""Issue #12's attacks on checkpoints and the runs folder, each one a regression test.

- item 4: a load that fails for lack of memory (or file handles) is retried once, then reported
  as temporary; the file is never moved aside. Only real corruption is quarantined, and damaged
  files never push a good run out of the size bound.
- item 5: temporary files of saves count against the size bound and are swept as soon as no live
  save holds them; room is made before a save; a full disk evicts old runs, then says so plainly.
- item 8: a checkpoint evicted after being listed is skipped, never a FileNotFoundError.
- item 9: messages are plain words; paths, errno and library messages go to the log.
- item 10: a flipped byte anywhere in the record (metrics, history, info...) is refused.
- item 12: a ZIP that declares more than a checkpoint can hold is refused before inflating.
"""

from __future__ import annotations

import errno
import io
import logging
import os
import struct
import time
import zipfile
from pathlib import Path

import pytest
import torch

import aecore.checkpoints as checkpoints
from aecore import artifacts, runcache
from aecore.checkpoints import (
    CheckpointCorrupt,
    CheckpointError,
    CheckpointMissing,
    CheckpointSaveError,
    CheckpointUnavailable,
    DiskFullError,
    checkpoint_mtime,
    checkpoint_name,
    list_checkpoints,
    load_checkpoint,
    load_for,
    read_checkpoint_bytes,
    save_checkpoint,
    stat_checkpoint,
)
from aecore.config import TrainConfig
from aecore.history import EpochStats
from aecore.jobs import JobManager
from aecore.models import build_model

PSNR = 21.123456789  # a metric whose 8 stored bytes are easy to find in the file


@pytest.fixture(autouse=True)
def isolated_runs(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.delenv("AECORE_RUNS_MAX_MB", raising=False)
    monkeypatch.setattr("aecore.checkpoints.BUNDLED_DIR", tmp_path / "bundled")
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


def cfg(seed: int = 0, **kw) -> TrainConfig:
    base = dict(dataset="digits", model="dense", latent=2, epochs=1, seed=seed)
    return TrainConfig(**(base | kw))


def save(c: TrainConfig, folder: Path, age: float = 0.0) -> Path:
    """An untrained checkpoint of c with one epoch of history and a PSNR, used `age` s ago."""
    model = build_model(c, (1, 8, 8))
    history = [EpochStats(1, 1, 0.1, 0.09, 0.11, 0.1, 20.5, 0.5)]
    metrics = {"test_psnr": PSNR, "test_mse": 0.0123}
    info = {"shape": [1, 8, 8], "hardware": "test CPU", "device": "cpu"}
    path = save_checkpoint(folder / checkpoint_name(c), c, model, history, metrics, info)
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def plain(message: str, folder: Path) -> None:
    """A message for a visitor: no folder path, no errno, no library internals."""
    for technical in (str(folder), "Errno", "enforce fail", "inline_container", ".tmp", "Pytorch"):
        assert technical not in message, (technical, message)


# -- item 4: memory is not corruption --------------------------------------------------------

ALLOC = (
    "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: "
    "you tried to allocate 1679360000 bytes. Error code 12 (Cannot allocate memory)"
)
FAILURES = {  # name: (where it is raised, the error, what the message says)
    "MemoryError": ("torch.load", lambda: MemoryError(), "short of memory"),
    "cpu_alloc": ("torch.load", lambda: RuntimeError(ALLOC), "short of memory"),
    "cuda_oom": (
        "build_model",
        lambda: torch.cuda.OutOfMemoryError("CUDA out of memory."),
        "short of memory",
    ),
    "EMFILE": ("os.open", lambda: OSError(errno.EMFILE, "Too many open files"), "too many files"),
    "ENOMEM": ("os.open", lambda: OSError(errno.ENOMEM, "Cannot allocate memory"), "short of"),
    "EIO": ("torch.load", lambda: OSError(errno.EIO, "Input/output error"), "did not answer"),
}


def inject(monkeypatch, where: str, error, path: Path, times: int) -> list[int]:
    """Make `where` raise error() for the next `times` loads of path; returns the call count."""
    calls = [0]

    def failing(real):
        def wrapper(*args, **kwargs):
            if where != "os.open" or Path(args[0]) == path:  # os.open: this file's opens only
                calls[0] += 1
                if calls[0] <= times:
                    raise error()
            return real(*args, **kwargs)

        return wrapper

    if where == "torch.load":
        monkeypatch.setattr(torch, "load", failing(torch.load))
    elif where == "build_model":
        monkeypatch.setattr(checkpoints, "build_model", failing(checkpoints.build_model))
    else:
        monkeypatch.setattr(os, "open", failing(os.open))
    return calls


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_load_short_of_memory_is_retried_once_and_never_quarantines(
    failure, isolated_runs, monkeypatch, caplog
):
    c = cfg(seed=1)
    path = save(c, isolated_runs)
    where, error, _ = FAILURES[failure]
    calls = inject(monkeypatch, where, error, path, times=1)
    with caplog.at_level(logging.WARNING, logger="aecore.checkpoints"):
        ckpt = load_for(c)  # fails once, then loads
    assert ckpt is not None and ckpt.metrics["test_psnr"] == PSNR and calls[0] == 2
    assert "trying once more" in caplog.text
    assert path.exists() and not path.with_name(path.name + ".bad").exists()


@pytest.mark.parametrize("failure", sorted(FAILURES))
def test_a_load_that_stays_short_of_memory_is_a_temporary_failure(
    failure, isolated_runs, monkeypatch, caplog
):
    c = cfg(seed=2)
    path = save(c, isolated_runs)
    before = path.read_bytes()
    where, error, says = FAILURES[failure]
    calls = inject(monkeypatch, where, error, path, times=2)
    with (
        caplog.at_level(logging.WARNING, logger="aecore.checkpoints"),
        pytest.raises(CheckpointUnavailable) as caught,
    ):
        load_for(c)
    assert calls[0] == 2  # tried twice, not more
    assert "try again" in str(caught.value) and says in str(caught.value)
    plain(str(caught.value), isolated_runs)
    assert caught.value.technical and str(path) in caplog.text  # the details are in the log
    # The file is where it was, unchanged, and nothing was moved aside.
    assert path.read_bytes() == before and sorted(isolated_runs.iterdir()) == [path]
    # Once memory is back, the same file loads: the run was never lost.
    assert load_for(c).metrics["test_psnr"] == PSNR


def test_the_job_manager_reports_it_and_trains_nothing(isolated_runs, monkeypatch):
    c = cfg(seed=3)
    path = save(c, isolated_runs)
    inject(monkeypatch, "torch.load", MemoryError, path, times=2)
    jobs = JobManager(runner=lambda *a, **k: pytest.fail("nothing should train"))
    try:
        with pytest.raises(CheckpointUnavailable):
            jobs.result(c)
        assert path.exists()
        assert jobs.result(c).metrics["test_psnr"] == PSNR  # memory is back
    finally:
        jobs.shutdown()


def test_damaged_files_never_push_a_good_run_out(isolated_runs):
    """Policy: a .bad file is not a run. It counts against the limit (it is on the disk) but is
    deleted before any run when room is needed."""
    older, newer = save(cfg(seed=4), isolated_runs, 300), save(cfg(seed=5), isolated_runs, 200)
    size = older.stat().st_size
    bad = isolated_runs / (checkpoint_name(cfg(seed=6)) + ".bad")
    bad.write_bytes(b"x" * size)
    os.utime(bad, (0, time.time()))  # used "now": still goes first
    assert runcache.evict(isolated_runs, limit=2 * size + 10) == [bad]
    assert older.exists() and newer.exists()
    assert list_checkpoints(isolated_runs) == [newer, older]  # never listed as a run


def test_only_a_few_damaged_files_are_kept(isolated_runs):
    bad = []
    for i in range(runcache.MAX_BAD_FILES + 2):
        path = isolated_runs / (checkpoint_name(cfg(seed=10 + i)) + ".bad")
        path.write_bytes(b"junk")
        os.utime(path, (1000 + i, 1000 + i))
        bad.append(path)
    assert runcache.evict(isolated_runs, limit=None) == bad[:2]  # the oldest beyond the cap
    assert all(p.exists() for p in bad[2:])


# -- item 5: temporary files, room before a save, a full disk ----------------------------------


def test_a_live_saves_temporary_file_counts_against_the_limit(isolated_runs):
    old, new = save(cfg(seed=20), isolated_runs, 300), save(cfg(seed=21), isolated_runs, 100)
    size = old.stat().st_size
    live = isolated_runs / f".{checkpoint_name(cfg(seed=22))}.x1.tmp"
    fd = os.open(live, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        assert runcache.hold_temp(fd)
        os.write(fd, b"\0" * size)
        assert runcache.evict(isolated_runs, limit=2 * size + 10) == [old]
        assert live.exists() and new.exists()
    finally:
        os.close(fd)


def test_saves_killed_three_times_do_not_outgrow_the_limit(isolated_runs):
    """Three dead writers' files (their lock is gone) as large as the limit: the next save's
    room-making sweeps them, however young, and the folder ends within its limit."""
    first = save(cfg(seed=30), isolated_runs)
    size = first.stat().st_size
    limit = 3 * size
    for i in range(3):
        (isolated_runs / f".{checkpoint_name(cfg(seed=31))}.k{i}.tmp").write_bytes(b"\0" * limit)
    runcache.make_room(isolated_runs, limit, incoming=size)
    assert [p.name for p in isolated_runs.iterdir() if p.name.endswith(".tmp")] == []
    save(cfg(seed=32), isolated_runs)
    assert sum(p.stat().st_size for p in isolated_runs.iterdir()) <= limit


def test_room_is_made_before_the_save_is_written(isolated_runs, monkeypatch):
    old, recent = save(cfg(seed=40), isolated_runs, 300), save(cfg(seed=41), isolated_runs, 100)
    size = old.stat().st_size
    monkeypatch.setenv("AECORE_RUNS_MAX_MB", str((2 * size + size // 2) / 2**20))
    seen = []
    real = artifacts._write_all

    def watching(fd, data):
        seen.append(sorted(p.name for p in isolated_runs.glob("*.pt")))
        real(fd, data)

    monkeypatch.setattr(artifacts, "_write_all", watching)
    new = save(cfg(seed=42), isolated_runs)
    assert seen == [[recent.name]]  # the least recently used run was gone before the write
    assert sorted(isolated_runs.glob("*.pt")) == sorted([recent, new])


def disk_full(monkeypatch, times: int) -> list[int]:
    calls = [0]
    real = artifacts._write_all

    def full(fd, data):
        calls[0] += 1
        if calls[0] <= times:
            os.write(fd, b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    monkeypatch.setattr(artifacts, "_write_all", full)
    return calls


def test_a_full_disk_says_so_in_plain_words(isolated_runs, monkeypatch, caplog):
    disk_full(monkeypatch, times=99)
    c = cfg(seed=50)
    with (
        caplog.at_level(logging.ERROR, logger="aecore.checkpoints"),
        pytest.raises(DiskFullError) as caught,
    ):
        save(c, isolated_runs)
    err = caught.value
    assert isinstance(err, OSError) and isinstance(err, CheckpointError)
    assert err.errno == errno.ENOSPC and "disk is full" in str(err)
    plain(str(err), isolated_runs)
    assert "No space left" in caplog.text and str(isolated_runs) in caplog.text
    assert list(isolated_runs.iterdir()) == []  # no temporary file, no checkpoint


def test_a_full_disk_evicts_the_least_recently_used_runs_and_saves(
    isolated_runs, monkeypatch, caplog
):
    """No size limit at all, and the disk is full: the save frees the size it needs from the
    least recently used runs, then succeeds."""
    monkeypatch.setenv("AECORE_RUNS_MAX_MB", "0")
    big = dict(model="deep_mlp", width=512)
    oldest = save(cfg(seed=51, **big), isolated_runs, 300)
    recent = save(cfg(seed=52, **big), isolated_runs, 100)
    calls = disk_full(monkeypatch, times=1)
    c = cfg(seed=53)
    with caplog.at_level(logging.WARNING, logger="aecore.runcache"):
        path = save(c, isolated_runs)
    assert calls[0] == 2 and not oldest.exists() and recent.exists()
    assert load_checkpoint(path, key=c.key()).metrics["test_psnr"] == PSNR
    assert "full disk" in caplog.text
    assert [p for p in isolated_runs.iterdir() if p.name.endswith(".tmp")] == []


def test_a_read_only_folder_says_so_in_plain_words(isolated_runs, monkeypatch, caplog):
    def read_only(dir, prefix, suffix):
        name = os.path.join(dir, prefix + "abc" + suffix)
        raise OSError(errno.EROFS, "Read-only file system", name)

    monkeypatch.setattr(artifacts.tempfile, "mkstemp", read_only)
    with (
        caplog.at_level(logging.ERROR, logger="aecore.checkpoints"),
        pytest.raises(CheckpointSaveError) as caught,
    ):
        save(cfg(seed=54), isolated_runs)
    assert "read-only" in str(caught.value) and caught.value.errno == errno.EROFS
    plain(str(caught.value), isolated_runs)
    assert "Read-only file system" in caplog.text


# -- item 8: a file evicted after it was listed ------------------------------------------------


def test_a_checkpoint_evicted_after_being_listed_is_skipped(isolated_runs, caplog):
    c = cfg(seed=60)
    path = save(c, isolated_runs)
    assert list_checkpoints(isolated_runs) == [path]
    assert stat_checkpoint(path) is not None and checkpoint_mtime(path) is not None
    assert read_checkpoint_bytes(path) == path.read_bytes()
    path.unlink()  # another session's save evicts it
    assert stat_checkpoint(path) is None and checkpoint_mtime(path) is None
    assert read_checkpoint_bytes(path) is None
    with pytest.raises(CheckpointMissing, match="no checkpoint"):
        load_checkpoint(path)
    with caplog.at_level(logging.WARNING):
        assert load_for(c) is None
    assert list(isolated_runs.iterdir()) == [] and caplog.text == ""


@pytest.mark.parametrize("half", [False, True])
def test_download_of_an_evicted_run_is_served_from_memory(half, isolated_runs, tmp_path):
    """'Download the checkpoint' after eviction: the bytes are made again from the loaded run."""
    c = cfg(seed=63)
    model = build_model(c, (1, 8, 8))
    path = isolated_runs / checkpoint_name(c)
    save_checkpoint(path, c, model, [], {"test_psnr": PSNR}, {"shape": [1, 8, 8]}, half=half)
    ckpt = load_for(c)
    assert checkpoints.download_bytes(ckpt) == path.read_bytes()  # the file, while it exists
    path.unlink()
    data = checkpoints.download_bytes(ckpt)
    copy = tmp_path / checkpoint_name(c)
    copy.write_bytes(data)
    again = load_checkpoint(copy, key=c.key())
    assert again.metrics == ckpt.metrics and again.info["dtype"] == ckpt.info["dtype"]
    x = torch.rand(3, 1, 8, 8)
    assert torch.equal(again.model.reconstruct(x), ckpt.model.reconstruct(x))


def test_listing_skips_a_file_that_vanishes_while_it_is_listed(isolated_runs, monkeypatch):
    first, second = save(cfg(seed=61), isolated_runs, 100), save(cfg(seed=62), isolated_runs)
    real = checkpoints.checkpoint_mtime

    def evicting(path):
        if Path(path) == first:
            first.unlink(missing_ok=True)  # evicted between the glob and the stat
        return real(path)

    monkeypatch.setattr(checkpoints, "checkpoint_mtime", evicting)
    assert list_checkpoints(isolated_runs) == [second]


def test_only_regular_files_are_read(tmp_path):
    assert read_checkpoint_bytes(tmp_path) is None and stat_checkpoint(tmp_path) is None
    with pytest.raises(CheckpointMissing, match="no checkpoint"):
        load_checkpoint(tmp_path)  # a folder
    fifo = tmp_path / "fifo.pt"
    os.mkfifo(fifo)
    assert read_checkpoint_bytes(fifo) is None and stat_checkpoint(fifo) is None
    with pytest.raises(CheckpointMissing):
        load_checkpoint(fifo)


# -- item 9: messages --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["truncated", "garbage"])
def test_refusals_are_plain_words_and_the_details_are_logged(kind, isolated_runs, caplog):
    path = save(cfg(seed=70), isolated_runs)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if kind == "truncated" else os.urandom(2048))
    with (
        caplog.at_level(logging.WARNING, logger="aecore.checkpoints"),
        pytest.raises(CheckpointCorrupt, match="not a readable checkpoint") as caught,
    ):
        load_checkpoint(path)
    plain(str(caught.value), isolated_runs)
    assert caught.value.technical and str(path) in caplog.text


# -- item 10: the whole record is checksummed --------------------------------------------------


def flip_stored_psnr(path: Path) -> None:
    """Flip one bit of the PSNR's exponent where it sits in the file (pickle stores a float as 8
    big-endian bytes), as a bad disk or a hostile edit would: 21.1 dB becomes 1.4 million dB."""
    data = bytearray(path.read_bytes())
    at = data.index(struct.pack(">d", PSNR))
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


def as_version_1(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    del payload["record_sha256"]
    payload["version"] = 1
    torch.save(payload, path)


@pytest.mark.parametrize("version", [2, 1])
def test_a_flipped_byte_in_the_stored_metrics_is_refused_and_quarantined(
    version, isolated_runs, caplog
):
    c = cfg(seed=80)
    path = save(c, isolated_runs)
    if version == 1:  # an older file: its ZIP's CRC-32s still cover every byte
        as_version_1(path)
        assert load_checkpoint(path).metrics["test_psnr"] == PSNR
    flip_stored_psnr(path)
    with pytest.raises(CheckpointCorrupt, match="checksum"):
        load_checkpoint(path, key=c.key())
    with caplog.at_level(logging.WARNING, logger="aecore.checkpoints"):
        assert load_for(c) is None
    assert "ignoring checkpoint" in caplog.text
    assert not path.exists() and path.with_name(path.name + ".bad").exists()


def edit(payload: dict, what: str) -> None:
    if what == "metrics":
        payload["metrics"]["test_psnr"] = 735619.56
    elif what == "history":
        payload["history"][0]["val_psnr_db"] = 99.0
    elif what == "info":
        payload["info"]["hardware"] = "a GPU it never saw"
    elif what == "extra_field":
        payload["note"] = "added"
    elif what == "weights_checksum_removed":
        del payload["weights_sha256"]
    elif what == "record_checksum_removed":
        del payload["record_sha256"]
    elif what == "record_checksum_wrong":
        payload["record_sha256"] = "0" * 64


@pytest.mark.parametrize(
    "what",
    [
        "metrics",
        "history",
        "info",
        "extra_field",
        "weights_checksum_removed",
        "record_checksum_removed",
        "record_checksum_wrong",
    ],
)
def test_every_part_of_the_record_is_covered_by_the_checksum(what, isolated_runs):
    """Edited and saved again by torch.save, so every ZIP CRC is right: the record's own
    checksum still refuses it."""
    c = cfg(seed=81)
    path = save(c, isolated_runs)
    payload = torch.load(path, weights_only=True)
    edit(payload, what)
    torch.save(payload, path)
    with pytest.raises(CheckpointCorrupt, match="checksum"):
        load_checkpoint(path, key=c.key())


def test_a_record_that_unfolds_into_billions_of_values_is_refused(isolated_runs):
    """Pickle can share one list many times: 40 levels of [x, x] are a few hundred bytes on disk
    and 2**40 values when walked."""
    c = cfg(seed=82)
    path = save(c, isolated_runs)
    payload = torch.load(path, weights_only=True)
    bomb: list = []
    for _ in range(40):
        bomb = [bomb, bomb]
    payload["info"]["bomb"] = bomb
    torch.save(payload, path)
    assert path.stat().st_size < 100_000
    with pytest.raises(CheckpointCorrupt, match="unexpected kind or size"):
        load_checkpoint(path, key=c.key())


def test_a_stored_image_shape_cannot_ask_for_a_huge_model(isolated_runs):
    c = cfg(seed=83)
    path = save(c, isolated_runs)
    payload = torch.load(path, weights_only=True)
    payload["info"]["shape"] = [3, 4096, 4096]  # a dense layer of 50 million inputs
    del payload["record_sha256"]
    payload["version"] = 1
    torch.save(payload, path)
    with pytest.raises(CheckpointCorrupt, match="does not match its config"):
        load_checkpoint(path, key=c.key())


# -- item 12: ZIP bombs ------------------------------------------------------------------------


def with_extra_entry(good: bytes, data: bytes, method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A checkpoint's entries plus one more, compressed with `method`."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good)) as src, zipfile.ZipFile(out, "w") as dst:
        prefix = src.namelist()[0].split("/")[0]
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr(f"{prefix}/data/999", data, compress_type=method)
    return out.getvalue()


def declare_size(data: bytes, name_end: str, size: int) -> bytes:
    """Rewrite the uncompressed size an entry declares, in its local and central headers."""
    data = bytearray(data)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        info = next(i for i in z.infolist() if i.filename.endswith(name_end))
        start = z.start_dir
    struct.pack_into("<I", data, info.header_offset + 22, size)
    pos = start
    while True:
        pos = data.index(b"PK\x01\x02", pos)
        length = struct.unpack_from("<H", data, pos + 28)[0]
        if bytes(data[pos + 46 : pos + 46 + length]).decode().endswith(name_end):
            struct.pack_into("<I", data, pos + 24, size)
            return bytes(data)
        pos += 4


@pytest.fixture
def no_inflating(monkeypatch):
    """Call it once the crafted file is written: from then on, the test fails if any entry is
    opened for reading (to inflate it) or the file is handed to torch.load. A BaseException, so
    that no `except Exception` in the loader can swallow it."""

    class Inflated(BaseException):
        pass

    def refuse(*args, **kwargs):
        raise Inflated("opened an entry of a file that should have been refused first")

    def forbid() -> None:
        monkeypatch.setattr(zipfile, "_get_decompressor", refuse)
        monkeypatch.setattr(torch, "load", refuse)

    return forbid


def test_a_small_file_that_inflates_far_beyond_its_size_is_refused_unread(
    isolated_runs, no_inflating
):
    path = isolated_runs / "bomb.pt"
    good = save(cfg(seed=90), isolated_runs).read_bytes()
    path.write_bytes(with_extra_entry(good, bytes(16 << 20)))  # 16 MB of zeros: ~16 kB packed
    no_inflating()
    assert path.stat().st_size < 100_000
    with pytest.raises(CheckpointCorrupt, match="would unpack to 16 MB") as caught:
        load_checkpoint(path)
    plain(str(caught.value), isolated_runs)


def test_a_declared_size_beyond_the_largest_model_is_refused_unread(isolated_runs, no_inflating):
    """The attack's file: under 1 MB, declaring 1.67 GB."""
    path = isolated_runs / "bomb.pt"
    good = save(cfg(seed=91), isolated_runs).read_bytes()
    crafted = declare_size(with_extra_entry(good, bytes(1 << 20)), "/data/999", 1_670_000_000)
    path.write_bytes(crafted)
    no_inflating()
    assert path.stat().st_size < 1 << 20
    with pytest.raises(CheckpointCorrupt, match="would unpack to 1,5"):
        load_checkpoint(path)


def test_the_bound_comes_from_the_largest_model_of_the_app():
    with torch.device("meta"):  # 480 MB of weights, none of them allocated
        widest = TrainConfig("cifar10", model="deep_mlp", latent=1024, width=4096)
        largest = build_model(widest, (3, 32, 32))  # CIFAR-10, widest, most code
    weights = sum(t.numel() * 4 for t in largest.state_dict().values())
    assert weights <= checkpoints.max_record_bytes() < weights + (64 << 20) < 1_670_000_000


def test_a_file_larger_than_any_model_is_refused_unread(isolated_runs, monkeypatch, no_inflating):
    path = save(cfg(seed=92), isolated_runs)
    monkeypatch.setattr(checkpoints, "max_record_bytes", lambda: 1000)
    no_inflating()
    with pytest.raises(CheckpointCorrupt, match="larger than any model"):
        load_checkpoint(path)


def test_an_entry_longer_than_it_declares_is_cut_at_its_declared_size(isolated_runs):
    """The bytes actually inflated stop at the declared size, and the CRC then fails."""
    path = isolated_runs / "liar.pt"
    good = save(cfg(seed=93), isolated_runs).read_bytes()
    path.write_bytes(declare_size(with_extra_entry(good, bytes(8 << 20)), "/data/999", 1000))
    with pytest.raises(CheckpointCorrupt):
        load_checkpoint(path)


@pytest.mark.parametrize("method", [zipfile.ZIP_LZMA, zipfile.ZIP_BZIP2])
def test_compression_methods_checkpoints_never_use_are_refused(method, isolated_runs, no_inflating):
    path = isolated_runs / "odd.pt"
    good = save(cfg(seed=94), isolated_runs).read_bytes()
    path.write_bytes(with_extra_entry(good, b"x" * 1000, method))
    no_inflating()
    with pytest.raises(CheckpointCorrupt, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_a_zip_bomb_in_the_runs_folder_is_quarantined(isolated_runs):
    c = cfg(seed=95)
    path = save(c, isolated_runs)
    path.write_bytes(with_extra_entry(path.read_bytes(), bytes(16 << 20)))
    assert load_for(c) is None
    assert path.with_name(path.name + ".bad").exists() and not path.exists()
