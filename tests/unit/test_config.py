"""TrainConfig: validation with clear messages, normalisation, and a key stable across processes."""

import dataclasses
import os
import subprocess
import sys

import pytest

from aecore.config import RANGES, TrainConfig, config_from_strings, describe_run
from aecore.corruptions import CORRUPTIONS


def test_key_is_stable_across_processes_and_hash_seeds():
    code = "from aecore.config import TrainConfig; print(TrainConfig(model='dense').key())"
    keys = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        keys.add(out.stdout.strip())
    assert keys == {TrainConfig(model="dense").key()}


CHANGES = {
    "dataset": "fashion_mnist",
    "corruption": "salt_pepper",
    "level": 0.2,
    "model": "janet",
    "latent": 8,
    "loss": "bce",
    "optimizer": "adadelta",
    "lr": 0.5,
    "batch_size": 64,
    "epochs": 3,
    "seed": 7,
    "limit_train": 100,
    "augment": True,
}


@pytest.mark.parametrize("field", list(CHANGES))
def test_key_changes_with_every_field(field):
    base = TrainConfig(model="dense", latent=4)
    assert dataclasses.replace(base, **{field: CHANGES[field]}).key() != base.key()


def test_key_changes_with_width_and_regulariser():
    base = TrainConfig(model="deep_mlp", latent=4, width=64)
    assert dataclasses.replace(base, width=32).key() != base.key()
    sparse = dataclasses.replace(base, regularizer="sparse", reg_weight=1e-3)
    assert sparse.key() != base.key()
    assert dataclasses.replace(sparse, reg_weight=1e-2).key() != sparse.key()


def test_ignored_fields_are_normalised_so_identical_runs_share_a_key():
    assert TrainConfig(model="conv_same", latent=3).key() == TrainConfig(model="conv_same").key()
    assert TrainConfig(model="dense", width=99).width == 0
    assert TrainConfig(model="dense", reg_weight=5.0).reg_weight == 0.0
    assert TrainConfig(corruption="none", level=0.3).level == 0.0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"lr": "0.1"}, "lr must be a float"),
        ({"epochs": 2.5}, "epochs must be a int"),
        ({"augment": "yes"}, "augment must be a bool"),
        ({"epochs": True}, "epochs must be a int"),
        ({"lr": float("inf")}, "lr must be a float"),
        ({"level": 3.0}, "between 0.0 and 2.0"),
        ({"corruption": "salt_pepper", "level": -0.1}, "between 0.0 and 1.0"),
        ({"corruption": "stripes", "level": 2.5}, "whole number"),
        ({"model": "dense", "latent": 0}, "latent must be between 1 and 1024"),
        ({"batch_size": 0}, "batch_size"),
        ({"epochs": 10**6}, "epochs"),
        ({"dataset": "../../etc"}, "unknown dataset"),
        ({"model": "vae_mlp", "regularizer": "sparse", "reg_weight": 0.1}, "KL"),
        ({"loss": "l1"}, "loss must be one of"),
        ({"nonsense": 1}, "unknown setting"),
    ],
)
def test_bad_values_raise_a_clear_value_error(values, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig.from_dict(values)


def test_round_trip_through_a_dict():
    cfg = TrainConfig(model="vae_conv", latent=16, dataset="digits", corruption="none")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        TrainConfig().epochs = 3


# -- links and names -----------------------------------------------------------------------------


def test_a_link_out_of_range_takes_the_nearest_allowed_value_and_says_so():
    base = TrainConfig(dataset="digits", model="dense", latent=16)
    cfg, notes = config_from_strings({"epochs": "500", "batch_size": "65536"}, base)
    assert (cfg.epochs, cfg.batch_size) == (RANGES["epochs"][1], RANGES["batch_size"][1])
    assert len(notes) == 2 and all("nearest allowed value" in n for n in notes)


def test_a_link_code_larger_than_the_image_is_clamped_to_the_pixels():
    base = TrainConfig(dataset="digits", model="dense", latent=16)
    cfg, notes = config_from_strings({"latent": "100"}, base)
    assert cfg.latent == 64 and notes


def test_a_link_value_that_is_no_number_or_name_keeps_the_base_value():
    base = TrainConfig(dataset="digits", model="dense", latent=16)
    cfg, notes = config_from_strings({"latent": "abc", "model": "nope", "lr": "inf"}, base)
    assert (cfg.latent, cfg.model, cfg.lr) == (16, "dense", base.lr)
    assert len(notes) == 3


def test_a_link_level_outside_its_corruption_is_clamped():
    base = TrainConfig(dataset="digits", model="dense", latent=16)
    cfg, notes = config_from_strings({"corruption": "salt_pepper", "level": "5"}, base)
    assert cfg.level == CORRUPTIONS["salt_pepper"].meta["max"] and notes


def test_unknown_link_names_are_ignored():
    base = TrainConfig(dataset="digits", model="dense", latent=16)
    assert config_from_strings({"path": "/etc/passwd"}, base) == (base, [])


def test_a_config_is_checked_against_its_dataset_up_front():
    with pytest.raises(ValueError, match="at most 64"):
        TrainConfig(dataset="digits", model="dense", latent=65)


def test_a_run_name_says_what_differs_from_the_defaults():
    base = TrainConfig(dataset="mnist", model="dense", latent=64, corruption="gaussian")
    assert describe_run(base, base) == "Dense AE on MNIST, Gaussian noise 0.5, code 64"
    sparse = TrainConfig(
        dataset="mnist",
        model="dense",
        latent=128,
        corruption="none",
        regularizer="sparse",
        reg_weight=1e-4,
        epochs=10,
    )
    name = describe_run(sparse, base)
    assert "no corruption" in name and "code 128" in name and "sparse 0.0001" in name
    assert name.endswith("(10 epochs)")
    janet = TrainConfig(dataset="fashion_mnist", model="janet", latent=50)
    assert describe_run(janet).startswith("JANet-50 on Fashion-MNIST")
    assert describe_run(TrainConfig(dataset="mnist", model="unet")).startswith("U-Net")
