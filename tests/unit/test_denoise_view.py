"""aecore.denoise: what the Denoise page shows, computed without a UI."""

from __future__ import annotations

import math

import pytest
import torch

from aecore import denoise
from aecore.baselines import median_filter, pca_reconstruct
from aecore.config import TrainConfig
from aecore.corruptions import CORRUPTIONS
from aecore.data import load_dataset, to_float
from aecore.evaluate import corrupted_test_set, pca_for, reconstruct
from aecore.models import build_model

CFG = TrainConfig(dataset="digits", corruption="gaussian", level=0.3, model="dense", latent=4)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def model(digits):
    torch.manual_seed(0)
    return build_model(CFG, digits.shape)


def test_comparison_rows_are_the_model_and_the_baselines_on_the_same_inputs(digits, model):
    clean, noisy = corrupted_test_set(digits, "gaussian", 0.5, "cpu", limit=6)
    rows = denoise.comparison_rows(model, digits, clean, noisy)
    assert list(rows) == ["Original", "Corrupted", "Autoencoder", "Median 3x3", "PCA (4)"]
    assert all(x.shape == clean.shape for x in rows.values())
    torch.testing.assert_close(rows["Autoencoder"], reconstruct(model, noisy))
    torch.testing.assert_close(rows["Median 3x3"], median_filter(noisy, 3))
    torch.testing.assert_close(rows["PCA (4)"], pca_reconstruct(pca_for(digits, 4), noisy))
    assert not torch.equal(rows["Corrupted"], rows["Original"])


def test_an_upload_is_inverted_corrupted_with_a_fixed_seed_and_reconstructed(digits, model):
    image = to_float(digits.test_images[:1])
    row = denoise.upload_row(model, image, "gaussian", 0.5, invert=True)
    assert row.shape == (3, *image.shape[1:])
    torch.testing.assert_close(row[:1], 1.0 - image)
    assert not torch.equal(row[1], row[0])  # corrupted
    torch.testing.assert_close(row[2:], reconstruct(model, row[1:2]))
    again = denoise.upload_row(model, image, "gaussian", 0.5, invert=True)
    assert torch.equal(again, row)  # the same picture on every rerun


def test_an_upload_without_corruption_is_left_as_it_is(digits, model):
    image = to_float(digits.test_images[:1])
    row = denoise.upload_row(model, image, "none", 0.0, invert=False)
    assert torch.equal(row[0], image[0]) and torch.equal(row[1], image[0])


@pytest.mark.parametrize(("name", "trained"), [("gaussian", 0.37), ("stripes", 3), ("masking", 0)])
def test_sweep_levels_span_the_range_on_the_sliders_grid_with_the_trained_level(name, trained):
    meta = CORRUPTIONS[name].meta
    levels = denoise.sweep_levels(name, trained)
    assert levels == sorted(set(levels)) and levels[0] > 0 and levels[-1] <= meta["max"]
    assert len(levels) >= denoise.SWEEP_LEVELS - 1  # rounding to the grid may merge two
    if trained:
        assert trained in levels
    else:
        assert 0 not in levels  # level 0 scores the metric's cap: left out
    off_grid = [
        x
        for x in levels
        if x != trained
        and not math.isclose(round(x / meta["step"]) * meta["step"], x, abs_tol=1e-9)
    ]
    assert off_grid == []
    if meta.get("integer"):
        assert all(isinstance(x, int) for x in levels)


def test_sweep_series_names_each_method_once_per_metric():
    results = [
        {"test_psnr": 20.0 + i, "test_psnr_noisy": 10.0 + i, "test_ssim": 0.5} for i in range(3)
    ]
    assert denoise.sweep_series(results, "psnr") == {
        "Autoencoder": [20.0, 21.0, 22.0],
        "Corrupted input": [10.0, 11.0, 12.0],
    }
    assert denoise.sweep_series(results, "ssim") == {"Autoencoder": [0.5, 0.5, 0.5]}
    assert denoise.sweep_series([], "psnr") == {}
