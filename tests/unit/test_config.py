"""TrainConfig: validation with clear messages, normalisation, and a key stable across processes."""

import dataclasses
import os
import subprocess
import sys

import pytest

from aecore.config import TrainConfig


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
