"""aecore.cost: a run's estimate grows with its work, and a refusal suggests a run that fits."""

import dataclasses
import re

import pytest

from aecore.config import TrainConfig
from aecore.cost import OverBudget, check_budget, estimate, train_images

BASE = TrainConfig(dataset="digits", model="dense", latent=16, epochs=2, batch_size=64)


def test_the_estimate_counts_images_epochs_and_batches():
    assert train_images(BASE) == 1500 - 150  # the validation hold-out is not trained on
    assert train_images(dataclasses.replace(BASE, limit_train=300)) == 300
    one, ten = (
        estimate(dataclasses.replace(BASE, epochs=1)),
        estimate(dataclasses.replace(BASE, epochs=10)),
    )
    assert ten.steps == 10 * one.steps
    # Training grows with the steps; testing after it costs the same for both.
    assert ten.seconds - one.seconds == pytest.approx(9 * one.steps * one.step_seconds)


def test_a_batch_of_one_costs_more_per_image_than_a_batch_of_64():
    small = estimate(dataclasses.replace(BASE, batch_size=1))
    assert small.step_seconds / 1 > estimate(BASE).step_seconds / 64


def test_over_the_budget_is_refused_with_a_setting_that_fits():
    huge = dataclasses.replace(BASE, model="deep_mlp", width=1024, epochs=200, batch_size=1)
    with pytest.raises(OverBudget) as err:
        check_budget(huge, budget_seconds=20)
    message = str(err.value)
    assert "would take about" in message
    assert re.search(r"it fits|batch size of 64|smaller model", message), message
    epochs = re.search(r"With (\d+) epochs? instead", message)
    if epochs:  # the suggestion really fits the budget
        assert estimate(dataclasses.replace(huge, epochs=int(epochs.group(1)))).seconds <= 20


def test_a_small_run_is_within_the_default_budget():
    assert check_budget(BASE, budget_seconds=300).seconds < 300


def test_a_bf16_run_is_timed_in_bf16_and_its_testing_in_float32(monkeypatch):
    import aecore.cost as cost

    precisions = []
    real = cost.step_autocast

    def spy(cfg, device):
        precisions.append(cfg.precision)
        return real(cfg, device)

    monkeypatch.setattr(cost, "step_autocast", spy)
    monkeypatch.setattr(cost, "_step_seconds", {})
    estimate(dataclasses.replace(BASE, precision="bf16", batch_size=128))
    # The training step at 128 in bf16, the testing's reference step at 128 in float32: two
    # timings, not one shared by both precisions.
    assert sorted(set(precisions)) == ["bf16", "fp32"]
    assert {key[5] for key in cost._step_seconds} == {"bf16", "fp32"}
