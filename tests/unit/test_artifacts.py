"""aecore.artifacts: the atomic write and the record envelope that checkpoints, classifiers and
the bundled manifest share."""

from __future__ import annotations

import errno
import json
import os

import pytest
import torch

from aecore import artifacts


def test_an_atomic_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")
    artifacts.write_atomic(path, b"new contents")
    assert path.read_bytes() == b"new contents" and os.listdir(tmp_path) == ["f.bin"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    path.write_bytes(b"old")

    def broken(fd, data):
        os.write(fd, b"par")
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(artifacts, "_write_all", broken)
    with pytest.raises(OSError):
        artifacts.write_atomic(path, b"new")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["f.bin"]


def test_a_full_disk_is_retried_once_after_room_is_made(tmp_path, monkeypatch):
    calls, freed = [0], [0]
    real = artifacts._write_all

    def full_once(fd, data):
        calls[0] += 1
        if calls[0] == 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd, data)

    def on_full():
        freed[0] += 1
        return True

    monkeypatch.setattr(artifacts, "_write_all", full_once)
    artifacts.write_atomic(tmp_path / "f", b"x", on_full=on_full)
    assert (tmp_path / "f").read_bytes() == b"x" and calls[0] == 2 and freed[0] == 1

    def always_full(fd, data):
        calls[0] += 1
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(artifacts, "_write_all", always_full)
    calls[0] = 0
    with pytest.raises(OSError) as caught:  # nothing could be freed: no second try
        artifacts.write_atomic(tmp_path / "g", b"x", on_full=lambda: False)
    assert caught.value.errno == errno.ENOSPC and calls[0] == 1
    assert sorted(os.listdir(tmp_path)) == ["f"]


def test_a_sealed_record_refuses_any_change():
    state = {"w": torch.arange(4.0)}
    record = artifacts.envelope("t", 1, "k", weights_sha256=artifacts.weights_digest(state))
    payload = artifacts.seal(record, state)
    assert artifacts.verify(payload) and payload["state_dict"] is state
    assert not artifacts.verify({**payload, "key": "other"})
    assert not artifacts.verify({**payload, "extra": 1})
    assert artifacts.weights_digest({"w": torch.arange(4.0) + 1}) != record["weights_sha256"]


def test_records_hold_plain_data_only():
    import numpy as np

    assert artifacts.plain({"a": (np.float64(1.5), np.str_("s"), True)}) == {"a": [1.5, "s", True]}
    with pytest.raises(TypeError):
        artifacts.plain({"a": object()})
    shared = [0] * 1000
    with pytest.raises(artifacts.NotPlain):
        artifacts.canonical([shared] * 1000)  # a million values unfolded from one list


def test_half_state_rounds_and_refuses_what_float16_cannot_hold():
    model = torch.nn.Linear(3, 2)
    half = artifacts.half_state(model.state_dict())
    assert all(v.dtype == torch.float16 for v in half.values())
    artifacts.round_half_(model)
    assert all(torch.equal(v, half[k].float()) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="float16"):
        artifacts.half_state({"w": torch.tensor([1e6])})


def test_json_records_round_trip_and_say_when_edited(tmp_path):
    path = tmp_path / "m.json"
    artifacts.write_json(path, "aecore-manifest", 1, "models", {"models": [{"x": 0.1}]})
    fields, intact = artifacts.read_json(path)
    assert intact is True and fields["models"] == [{"x": 0.1}] and fields["format"]
    data = json.loads(path.read_text())
    data["models"][0]["x"] = 0.2
    path.write_text(json.dumps(data))
    assert artifacts.read_json(path)[1] is False
    path.write_text(json.dumps({"models": []}))  # written before the envelope
    assert artifacts.read_json(path) == ({"models": []}, None)
