"""The Learn page's presets: one configuration per kind of autoencoder, sized per dataset.

A preset is a lesson, so its settings must fit the images it runs on: a code smaller than the
image, and enough images and epochs to learn in under a minute on a 2-core CPU. The 28x28 sets
(MNIST, Fashion-MNIST) train 5 epochs on 20,000 images; the bundled 8x8 digits (1,500 training
images, 64 pixels) needs smaller codes and many more epochs for the same number of steps.
Every preset is bundled for MNIST and for digits (checkpoints/manifest.json), so Learn, Train
and the other pages show its result at once, offline too.
"""

from __future__ import annotations

import math

from aecore.config import TrainConfig
from aecore.data import DATASETS

# kind -> settings for 28x28 (and larger) images, then what changes for small images.
PRESETS: dict[str, tuple[dict, dict]] = {
    "undercomplete": (
        {"model": "dense", "latent": 32, "corruption": "none"},
        {"latent": 16},
    ),
    "denoising": (
        {"model": "dense", "latent": 64, "corruption": "gaussian", "level": 0.5},
        {"latent": 32},
    ),
    "sparse": (
        {
            "model": "dense",
            "latent": 128,
            "corruption": "none",
            "regularizer": "sparse",
            "reg_weight": 1e-4,
        },
        {"latent": 24},
    ),
    "deep": (
        {"model": "deep_mlp", "width": 128, "latent": 32, "corruption": "none"},
        {"width": 64, "latent": 16},
    ),
    "contractive": (
        {
            "model": "dense",
            "latent": 64,
            "corruption": "none",
            "regularizer": "contractive",
            "reg_weight": 1e-3,
        },
        {"latent": 16},
    ),
    "convolutional": (  # convolutions cost more per image: fewer epochs keep it under a minute
        {"model": "conv_pool", "corruption": "gaussian", "level": 0.5, "epochs": 3},
        {"epochs": 30},
    ),
    "variational": (
        {"model": "vae_mlp", "latent": 2, "corruption": "none", "loss": "bce", "lr": 1e-3},
        {},
    ),
}
# Shared by every preset: 28x28 images, then small ones (digits: 1,500 images of 64 pixels).
LARGE = {"lr": 3e-3, "epochs": 5, "limit_train": 20000, "batch_size": 64}
SMALL = {"lr": 3e-3, "epochs": 60, "limit_train": 0, "batch_size": 64}
SMALL_PIXELS = 256  # images with at most this many values count as small
DEFAULT_KIND = "denoising"  # the app's default configuration


def is_small(dataset: str) -> bool:
    return math.prod(DATASETS[dataset].meta["shape"]) <= SMALL_PIXELS


def preset_config(kind: str, dataset: str) -> TrainConfig:
    """The preset `kind` sized for `dataset`."""
    settings, small = PRESETS[kind]
    shared = SMALL if is_small(dataset) else LARGE
    values = {"dataset": dataset} | shared | settings
    if is_small(dataset):
        values |= small
    return TrainConfig(**values)


def bundled_presets(datasets: tuple[str, ...] = ("mnist", "digits")) -> dict[str, TrainConfig]:
    """Manifest name -> config of every preset that is bundled."""
    return {
        f"preset_{kind}_{dataset}": preset_config(kind, dataset)
        for dataset in datasets
        for kind in PRESETS
    }
