"""level_sampling: "uniform" draws each training batch's level from U(0, level); val/test do not."""

import dataclasses

import pytest
import torch

import aecore.train as train_module
from aecore.config import TrainConfig
from aecore.train import batch_level, train

TINY = dict(dataset="digits", model="dense", latent=8, corruption="salt_pepper", level=0.6)


def test_validated_and_normalised():
    with pytest.raises(ValueError, match="level_sampling must be one of"):
        TrainConfig(level_sampling="normal")
    assert TrainConfig(corruption="none", level_sampling="uniform").level_sampling == "fixed"


def test_key_changes_only_when_not_fixed():
    base = TrainConfig(**TINY)
    uniform = dataclasses.replace(base, level_sampling="uniform")
    assert uniform.key() != base.key()
    # "fixed" is left out of the key, so keys made before the field existed still hold.
    assert base.key() == TrainConfig(**TINY, level_sampling="fixed").key()
    assert TrainConfig.from_dict(uniform.to_dict()) == uniform


def test_fixed_always_gives_the_level():
    gen = torch.Generator().manual_seed(0)
    assert {batch_level(TrainConfig(**TINY), gen) for _ in range(20)} == {0.6}


def test_uniform_levels_cover_zero_to_level():
    cfg = TrainConfig(**TINY, level_sampling="uniform")
    gen = torch.Generator().manual_seed(0)
    levels = [batch_level(cfg, gen) for _ in range(4000)]
    assert 0.0 <= min(levels) < 0.01 and 0.59 < max(levels) <= 0.6
    assert sum(levels) / len(levels) == pytest.approx(0.3, abs=0.01)  # U(0, 0.6): mean 0.3
    again = torch.Generator().manual_seed(0)
    assert [batch_level(cfg, again) for _ in range(5)] == levels[:5]


def test_integer_levels_are_rounded():
    cfg = TrainConfig(
        dataset="digits", model="conv_same", corruption="stripes", level=4, level_sampling="uniform"
    )
    gen = torch.Generator().manual_seed(0)
    levels = [batch_level(cfg, gen) for _ in range(500)]
    assert set(levels) == {0.0, 1.0, 2.0, 3.0, 4.0}


def test_training_batches_vary_but_validation_stays_at_the_level(monkeypatch):
    batches, validation = [], []

    def spy(seen, real):
        def corrupt(name, images, level, gen):
            seen.append(level)
            return real(name, images, level, gen)

        return corrupt

    batch_spy = spy(batches, train_module.corrupt_for_training)
    monkeypatch.setattr(train_module, "corrupt_for_training", batch_spy)
    monkeypatch.setattr(train_module, "corrupt", spy(validation, train_module.corrupt))
    cfg = TrainConfig(**TINY, epochs=1, batch_size=100, limit_train=500, level_sampling="uniform")
    train(cfg, device="cpu")
    assert len(batches) == 5  # 500 images, batches of 100
    assert len(set(batches)) == 5 and all(0 <= v <= 0.6 for v in batches)
    assert validation and set(validation) == {0.6}


def test_uniform_runs_repeat_themselves():
    cfg = TrainConfig(**TINY, epochs=1, level_sampling="uniform")
    a, b = train(cfg, device="cpu"), train(cfg, device="cpu")
    assert [h.train_loss for h in a.history] == [h.train_loss for h in b.history]
    fixed = train(dataclasses.replace(cfg, level_sampling="fixed"), device="cpu")
    assert fixed.history[0].train_loss != a.history[0].train_loss
