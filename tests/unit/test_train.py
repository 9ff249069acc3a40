"""The training loop on the bundled digits: it learns, it stops when told, it repeats itself."""

import math

import pytest
import torch

from aecore import losses
from aecore.config import TrainConfig
from aecore.train import TrainingDiverged, augment, init_model, split_indices, train, validate

TINY = dict(dataset="digits", model="dense", latent=16, corruption="gaussian", level=0.2)


def test_loss_falls():
    result = train(TrainConfig(**TINY, epochs=6, batch_size=32), device="cpu")
    losses = [h.val_loss for h in result.history]
    assert len(losses) == 6
    assert losses[-1] < 0.7 * losses[0]
    assert result.history[-1].val_psnr_db > result.history[0].val_psnr_db


def test_same_seed_same_numbers_other_seed_other_numbers():
    cfg = TrainConfig(**TINY, epochs=2)
    a, b = train(cfg, device="cpu"), train(cfg, device="cpu")
    assert [h.train_loss for h in a.history] == [h.train_loss for h in b.history]
    assert all(
        torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True)
    )
    c = train(TrainConfig(**TINY, epochs=2, seed=1), device="cpu")
    assert c.history[0].train_loss != a.history[0].train_loss


def test_should_stop_is_obeyed_within_one_step():
    calls = []
    result = train(
        TrainConfig(**TINY, epochs=5, batch_size=16),
        should_stop=lambda: len(calls) >= 3,
        on_batch=calls.append,
        device="cpu",
    )
    assert result.cancelled and len(calls) == 3 and result.history == []


def test_progress_reaches_one_and_epochs_are_reported():
    fractions, epochs = [], []
    cfg = TrainConfig(**TINY, epochs=2, batch_size=100, limit_train=300)
    train(cfg, on_epoch=epochs.append, on_batch=fractions.append, device="cpu")
    assert len(fractions) == 2 * math.ceil(300 / 100)
    assert fractions[-1] == pytest.approx(1.0) and fractions == sorted(fractions)
    assert [e.epoch for e in epochs] == [1, 2] and all(e.seconds > 0 for e in epochs)


def test_vae_reports_kl_separately_and_regularisers_report_their_term():
    vae = train(
        TrainConfig(
            dataset="digits", model="vae_mlp", latent=2, corruption="none", loss="bce", epochs=1
        ),
        device="cpu",
    )
    h = vae.history[0]
    assert h.val_kl is not None and h.val_kl > 0
    assert h.val_loss == pytest.approx(h.val_recon + h.val_kl, rel=1e-5)
    sparse = train(
        TrainConfig(**TINY, epochs=1, regularizer="sparse", reg_weight=1e-3), device="cpu"
    )
    assert sparse.history[0].val_reg > 0 and sparse.history[0].val_kl is None


def test_divergence_is_reported_with_advice(monkeypatch):
    from aecore.models.base import Autoencoder

    def nan_loss(self, noisy, clean, loss, generator=None):
        out = self.forward(noisy).mean() * float("nan")
        return {"loss": out, "recon": out}

    monkeypatch.setattr(Autoencoder, "loss_terms", nan_loss)
    with pytest.raises(TrainingDiverged, match="lower the learning rate"):
        train(TrainConfig(**TINY, epochs=1), device="cpu")


def test_validation_split_is_fixed_and_disjoint():
    train_a, val_a = split_indices(1500)
    train_b, val_b = split_indices(1500)
    assert torch.equal(train_a, train_b) and torch.equal(val_a, val_b)
    assert len(val_a) == 150 and not set(train_a.tolist()) & set(val_a.tolist())
    assert len(split_indices(60000)[1]) == 2000  # capped


def test_augment_flips_and_rotates_per_image():
    x = torch.zeros(64, 1, 28, 28)
    x[..., :, :4] = 1.0  # a bar on the left edge
    y = augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape
    right_heavy = y[..., :, 14:].sum((1, 2, 3)) > y[..., :, :14].sum((1, 2, 3))
    assert 10 < int(right_heavy.sum()) < 54  # about half were flipped
    assert not torch.equal(y[~right_heavy], x[~right_heavy])  # the rest were rotated


def test_an_epoch_sees_each_image_once_in_shuffled_order_in_its_memory_format():
    """Batches come from blocks of GATHER_BATCHES batches gathered into one reused buffer: every
    image once, in the shuffle's order, a short last block included, and channels-last images
    stay channels-last (the layout the conv models train in)."""
    from aecore import train as training
    from aecore.models import build_model

    cfg = TrainConfig(dataset="digits", model="conv_same", corruption="none", batch_size=4)
    n = training.GATHER_BATCHES * cfg.batch_size + 6  # two blocks, the second short
    images = torch.rand(n, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    model = build_model(cfg, (3, 8, 8)).to(memory_format=torch.channels_last)
    seen = []
    loss_terms = model.loss_terms

    def record(noisy, clean, *args):
        assert clean.is_contiguous(memory_format=torch.channels_last)
        seen.append(clean.clone())
        return loss_terms(noisy, clean, *args)

    model.loss_terms = record
    gens = training._Generators(cfg, torch.device("cpu"))
    opt = training.make_optimizer(cfg, model)
    losses = torch.zeros(math.ceil(n / cfg.batch_size))
    training._train_epoch(model, opt, images, cfg, gens, lambda: False, lambda f: None, losses)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed))
    assert [len(b) for b in seen] == [4] * (n // 4) + [2]
    assert torch.equal(torch.cat(seen), images[order])


def test_validation_batches_change_the_speed_not_the_numbers():
    """A conv model validates in batches of 128 on a CPU (losses.inference_batch): the same loss
    and PSNR as in batches of 1,000."""
    cfg = TrainConfig(dataset="digits", model="conv_same", corruption="gaussian", level=0.3)
    model = init_model(cfg, (1, 8, 8), torch.device("cpu"))
    clean = torch.rand(300, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert losses.inference_batch(model, clean.device) < len(clean) < losses.BATCH
    chosen, large = validate(model, clean, cfg), validate(model, clean, cfg, losses.BATCH)
    assert chosen.keys() == large.keys()
    for key, value in large.items():
        assert chosen[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
