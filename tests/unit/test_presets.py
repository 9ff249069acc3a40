"""aecore.presets: every preset fits every dataset, and the MNIST and digits ones are bundled."""

import math

import pytest

from aecore.data import DATASETS
from aecore.presets import DEFAULT_KIND, PRESETS, bundled_presets, is_small, preset_config
from aecore.pretrain import check, read_manifest

ENTRIES = {e.name: e for e in read_manifest()[1]}


@pytest.mark.parametrize("dataset", DATASETS.names())
@pytest.mark.parametrize("kind", PRESETS)
def test_a_preset_fits_its_dataset(kind, dataset):
    cfg = preset_config(kind, dataset)
    pixels = math.prod(DATASETS[dataset].meta["shape"])
    assert cfg.dataset == dataset
    assert cfg.latent < pixels  # a code smaller than the image (0 for conv models)
    steps = cfg.epochs * math.ceil((cfg.limit_train or 1500) / cfg.batch_size)
    assert steps >= 700, "enough steps to learn something"


def test_small_images_get_small_settings():
    assert is_small("digits") and not is_small("mnist")
    assert preset_config("sparse", "digits").latent < preset_config("sparse", "mnist").latent


@pytest.mark.parametrize("name", list(bundled_presets()))
def test_every_mnist_and_digits_preset_is_bundled_and_checks_out(name):
    entry = ENTRIES.get(name)
    assert entry is not None, f"{name} is not in checkpoints/manifest.json"
    assert entry.config == bundled_presets()[name]
    assert check(entry) == "ok"


@pytest.mark.parametrize("dataset", ["mnist", "digits"])
@pytest.mark.parametrize("kind", [k for k, (s, _) in PRESETS.items() if s["corruption"] != "none"])
def test_a_bundled_denoising_preset_beats_the_median_filter(kind, dataset):
    metrics = ENTRIES[f"preset_{kind}_{dataset}"].record["metrics"]
    assert metrics["test_psnr"] > metrics["test_psnr_median3"]


def test_the_default_is_a_preset():
    assert DEFAULT_KIND in PRESETS
