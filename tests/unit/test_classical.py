"""aecore.classical and aecore.best_classical: every registered classical method, its tuning on
validation images, and the cached best method of a task."""

from __future__ import annotations

import json

import pytest
import torch

from aecore import best_classical as B
from aecore import classical as C
from aecore.baselines import median_filter
from aecore.corruptions import CORRUPTIONS, corrupt
from aecore.data import load_dataset, to_float
from aecore.metrics import psnr


def _shapes(size: int = 12) -> torch.Tensor:
    """Piecewise-flat test images (N, 1, H, W): a bright square on a mid-gray background."""
    images = torch.full((6, 1, size, size), 0.4)
    for i in range(6):
        images[i, :, 2 + i % 3 : 8 + i % 3, 3:9] = 0.9
    return images


@pytest.mark.parametrize("name", C.CLASSICAL.names())
@pytest.mark.parametrize("channels", [1, 3])
def test_every_method_keeps_shape_range_and_device(name, channels):
    if not C.available(name):
        pytest.skip(f"{C.CLASSICAL[name].meta['needs']} is not installed")  # the fallback path
    images = _shapes().repeat(1, channels, 1, 1)
    noisy = corrupt("salt_pepper", images, 0.2, torch.Generator().manual_seed(0))
    for params in C.settings(name)[:2]:
        out = C.apply(name, noisy, params)
        assert out.shape == images.shape and out.dtype == images.dtype
        assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_every_method_states_its_facts():
    for entry in C.CLASSICAL:
        assert entry.meta["suits"] and set(entry.meta["suits"]) <= set(CORRUPTIONS.names())
        assert C.settings(entry.name), "a grid with at least one setting"
        for params in C.settings(entry.name):  # every setting reads well
            assert C.Tuned(entry.name, params, 0.0).label.startswith(entry.meta["label"] + " (")


def test_adaptive_median_restores_flat_regions_exactly():
    clean = torch.full((2, 1, 16, 16), 0.5)
    noisy = corrupt("salt_pepper", clean, 0.3, torch.Generator().manual_seed(1))
    out = C.apply("adaptive_median", noisy, {"max_size": 7})
    torch.testing.assert_close(out, clean)  # every impulse replaced, every clean pixel kept


def test_adaptive_median_beats_the_plain_median_on_dense_impulses():
    clean = _shapes(20)
    noisy = corrupt("salt_pepper", clean, 0.5, torch.Generator().manual_seed(2))
    plain = float(psnr(median_filter(noisy, 3), clean).mean())
    adaptive = float(psnr(C.apply("adaptive_median", noisy, {"max_size": 7}), clean).mean())
    assert adaptive > plain + 3


def test_tuning_picks_the_best_setting_of_the_grid():
    clean = _shapes()
    noisy = corrupt("salt_pepper", clean, 0.2, torch.Generator().manual_seed(3))
    tuned = C.tune("median", clean, noisy)
    scores = {
        p["size"]: float(psnr(C.apply("median", noisy, p), clean).mean())
        for p in C.settings("median")
    }
    assert tuned.params["size"] == max(scores, key=scores.get)
    assert tuned.val_psnr == pytest.approx(max(scores.values()))
    size = tuned.params["size"]
    assert tuned.label == f"Median filter ({size}x{size})"


def test_a_slow_method_chooses_on_few_images_and_is_scored_on_all(monkeypatch):
    clean = _shapes()
    noisy = corrupt("salt_pepper", clean, 0.2, torch.Generator().manual_seed(4))
    monkeypatch.setitem(C.CLASSICAL["median"].meta, "tune_images", 2)
    tuned = C.tune("median", clean, noisy)
    on_two = {
        p["size"]: float(psnr(C.apply("median", noisy[:2], p), clean[:2]).mean())
        for p in C.settings("median")
    }
    assert tuned.params["size"] == max(on_two, key=on_two.get)
    everyone = float(psnr(C.apply("median", noisy, tuned.params), clean).mean())
    assert tuned.val_psnr == pytest.approx(everyone)


def test_methods_follow_their_corruption_and_skip_missing_packages(monkeypatch):
    assert "adaptive_median" in C.methods_for("salt_pepper")
    assert "adaptive_median" not in C.methods_for("gaussian")
    if C.available("bm3d"):  # 8x8 blocks: no use on 8x8 digits
        assert "bm3d" in C.methods_for("gaussian", 28) and "bm3d" not in C.methods_for(
            "gaussian", 8
        )
    entry = C.CLASSICAL["bm3d"]
    monkeypatch.setitem(entry.meta, "needs", "no_such_package_here")
    assert not C.available("bm3d") and "bm3d" not in C.methods_for("gaussian")


def test_the_mosaic_round_trip_is_exact():
    planes = torch.rand(7, 9, 5).numpy()
    mosaic, cols = C._mosaic(planes)
    assert mosaic.shape == (3 * (9 + 2 * C.MOSAIC_GAP), 3 * (5 + 2 * C.MOSAIC_GAP))
    assert (C._unmosaic(mosaic, planes.shape, cols) == planes).all()


# -- the best classical method of a task ------------------------------------------------------


@pytest.fixture
def digits(tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(B, "VAL_IMAGES", 40)
    return load_dataset("digits")


def test_tuning_never_sees_the_test_images(digits, monkeypatch):
    seen = []
    real_rank = C.rank

    def spy(corruption, clean, noisy, names=None):
        seen.append(clean)
        return real_rank(corruption, clean, noisy, names)

    monkeypatch.setattr(C, "rank", spy)
    result = B.best_classical(digits, "salt_pepper", 0.3, limit=50)
    (clean,) = seen
    test = to_float(digits.test_images)
    assert not any(torch.equal(image, t) for image in clean for t in test[:200])
    assert result.method in C.methods_for("salt_pepper")
    assert [label for label, _ in result.ranking][0] == result.label
    assert result.psnr > 0 and 0 < result.test["ssim"] <= 1


def test_the_result_is_cached_and_a_bad_cache_file_is_recomputed(digits, monkeypatch, tmp_path):
    first = B.best_classical(digits, "salt_pepper", 0.3, limit=50)
    (cached,) = (tmp_path / B.FOLDER).glob("*.json")
    monkeypatch.setattr(B, "_compute", lambda *a: pytest.fail("computed again"))
    assert B.best_classical(digits, "salt_pepper", 0.3, limit=50) == first

    record = json.loads(cached.read_text())
    record["test"]["psnr"] = "NaN"
    cached.write_text(json.dumps(record))
    monkeypatch.undo()
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path))
    monkeypatch.setattr(B, "VAL_IMAGES", 40)
    assert B.best_classical(digits, "salt_pepper", 0.3, limit=50) == first


def test_another_level_or_an_uncorrupted_task(digits):
    assert B.best_classical(digits, "none", 0.0) is None
    low = B.best_classical(digits, "salt_pepper", 0.1, limit=50)
    high = B.best_classical(digits, "salt_pepper", 0.5, limit=50)
    assert low.psnr > high.psnr
