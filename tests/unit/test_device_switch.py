"""The suite's device switch (AECORE_TEST_DEVICE, tests/conftest.py) and the places where a model
and its tensors meet (aecore.gpu: reconstructions, sweeps, classifier accuracy, uploads, bundles).

A CPU-only machine has no second real device, so a model that lives elsewhere is played by one
whose parameter is on PyTorch's "meta" device (shapes, no data): it records the device of every
input it gets and answers with CPU zeros. A function that forgets to move its images to the
model's device hands it CPU tensors, and the test sees it. On a GPU the same paths run for real
under AECORE_TEST_DEVICE=cuda (bench/gpu_check.sh).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from aecore import bundle, classifier, denoise, gpu, sweep, train
from aecore.config import TrainConfig
from aecore.data import load_dataset, to_float
from aecore.evaluate import reconstruct
from aecore.runs import train_and_save
from tests.conftest import TEST_DEVICE_VAR, parse_test_device

REPO = Path(__file__).resolve().parents[2]
TINY = TrainConfig(dataset="digits", corruption="gaussian", level=0.3, model="dense", latent=2)


class ElsewhereAE(nn.Module):
    """An autoencoder 'on another device' (meta) that records the devices of its inputs."""

    latent = 2

    def __init__(self, shape=(1, 8, 8)) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(3, device="meta"))
        self.shape = shape
        self.seen: list[torch.device] = []

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.device)
        return torch.zeros(x.shape)


class ElsewhereClassifier(ElsewhereAE):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(x.device)
        return torch.zeros(len(x), 10)


META = torch.device("meta")


# -- the switch ---------------------------------------------------------------------------------


def test_the_switch_reaches_the_models_aecore_places(aecore_device):
    assert train.pick_device() == aecore_device
    cfg = dataclasses.replace(TINY, epochs=1, limit_train=200)
    ckpt = train_and_save(cfg, out_dir=None)  # no device given: aecore picks it
    assert gpu.model_device(ckpt.model).type == aecore_device.type


def test_parse_accepts_cpu_and_empty_and_refuses_the_rest():
    assert parse_test_device(None) == torch.device("cpu")
    assert parse_test_device("  ") == torch.device("cpu")
    assert parse_test_device("cpu") == torch.device("cpu")
    with pytest.raises(pytest.UsageError, match="not a device name"):
        parse_test_device("banana")
    with pytest.raises(pytest.UsageError, match="cpu, cuda or mps, not meta"):
        parse_test_device("meta")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(pytest.UsageError, match="CUDA GPU"):
        parse_test_device(f"cuda:{count + 7}")  # one GPU more than this machine has


def _pytest(value: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, TEST_DEVICE_VAR: value}
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_an_unavailable_device_stops_pytest_with_one_clear_error():
    missing = f"cuda:{torch.cuda.device_count() + 7 if torch.cuda.is_available() else 0}"
    done = _pytest(missing, "tests/unit/test_sweep.py")
    assert done.returncode == pytest.ExitCode.USAGE_ERROR, done.stdout + done.stderr
    assert f"{TEST_DEVICE_VAR}={missing}: this machine has" in done.stderr
    assert "passed" not in done.stdout and "failed" not in done.stdout  # nothing was collected


def test_setting_it_to_cpu_runs_and_names_it_in_the_header():
    done = _pytest("cpu", "tests/unit/test_sweep.py::test_verdict_wording")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"aecore test device: cpu ({TEST_DEVICE_VAR}=cpu)" in done.stdout


# -- models and tensors meet on the model's device ----------------------------------------------


def test_reconstruct_feeds_the_model_on_its_device_and_answers_on_the_images():
    model = ElsewhereAE()
    images = torch.rand(7, 1, 8, 8)
    out = reconstruct(model, images, batch=3)
    assert model.seen == [META] * 3  # every batch moved to the model's device
    assert out.device == images.device and out.shape == images.shape


def test_reconstruct_on_one_device_is_the_models_own_reconstruction():
    model = train.init_model(TINY, (1, 8, 8), torch.device("cpu")).eval()
    images = torch.rand(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(reconstruct(model, images, batch=2), model.reconstruct(images))


def test_sweep_rows_feed_a_model_elsewhere():
    ds = load_dataset("digits")
    model = ElsewhereAE()
    rows = sweep.sweep_rows(ds, {2: None, 8: SimpleNamespace(model=model)}, n=4)
    assert model.seen == [META]
    assert all(x.device.type == "cpu" and x.shape == (4, 1, 8, 8) for x in rows.values())


def test_classifier_accuracy_meets_models_elsewhere():
    ds = load_dataset("digits")
    clf, ae = ElsewhereClassifier(), ElsewhereAE()
    images = to_float(ds.test_images[:6])
    assert classifier.predict(clf, images).device == images.device
    assert clf.seen == [META]
    acc = classifier.accuracies(clf, ds, "gaussian", 0.3, {"A": ae}, limit=6)
    assert set(acc) == {"clean", "corrupted", "median 3x3", "A"}
    assert ae.seen == [META] and set(clf.seen) == {META}  # the AE's output reached clf there


def test_an_upload_and_a_bundle_grid_meet_a_model_elsewhere():
    model = ElsewhereAE()
    row = denoise.upload_row(model, torch.rand(1, 1, 8, 8), "gaussian", 0.3, invert=False)
    assert row.shape == (3, 1, 8, 8) and model.seen == [META]
    ckpt = SimpleNamespace(config=TINY, model=ElsewhereAE())
    pngs = bundle.grids(ckpt, load_dataset("digits"), n=4)
    assert ckpt.model.seen == [META] and pngs["images/grid.png"].startswith(b"\x89PNG")


def test_model_device_of_a_module_without_parameters():
    assert gpu.model_device(nn.BatchNorm1d(3, affine=False).to("meta")) == META  # buffers
    assert gpu.model_device(nn.ReLU()) == torch.device("cpu")


def test_worker_policy_per_device():
    assert gpu.job_workers("cpu") == 1
    assert gpu.job_workers("cuda") == gpu.CUDA_WORKERS > 1
    with gpu.worker_stream("cpu"):  # nothing to do off CUDA, and no error
        pass
