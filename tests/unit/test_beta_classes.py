"""The two settings #15's views train with: beta (the VAE's KL weight) and classes (train on a
subset). Both are left out of the run key at their defaults, so every older checkpoint keeps its
name."""

import pytest
import torch

from aecore.config import TrainConfig, config_from_strings, describe_run
from aecore.data import load_dataset, select_classes
from aecore.models import build_model
from aecore.train import train

VAE = TrainConfig(dataset="digits", corruption="none", model="vae_mlp", latent=2, epochs=1)


def test_defaults_leave_the_key_of_older_runs_unchanged():
    # The key the bundled conv_same checkpoint was saved under, before either field existed.
    assert TrainConfig().key() == "9cd0753dff51ff43"
    assert TrainConfig(beta=1.0, classes="").key() == TrainConfig().key()


def test_beta_names_a_new_run_for_a_vae_and_is_ignored_elsewhere():
    four = TrainConfig(**{**VAE.to_dict(), "beta": 4.0})
    assert four.key() != VAE.key()
    dense = TrainConfig(model="dense", beta=4.0)
    assert dense.beta == 1.0 and dense.key() == TrainConfig(model="dense").key()
    assert "β 4" in describe_run(four)


@pytest.mark.parametrize("beta", [-0.5, 16.5, float("nan")])
def test_beta_out_of_range_is_refused(beta):
    with pytest.raises(ValueError, match="beta"):
        TrainConfig(**{**VAE.to_dict(), "beta": beta})


def test_beta_weighs_the_kl_term_in_the_loss():
    images = torch.rand(16, 1, 8, 8)
    terms = {}
    for beta in (0.5, 4.0):
        cfg = TrainConfig(**{**VAE.to_dict(), "beta": beta})
        torch.manual_seed(0)
        model = build_model(cfg, (1, 8, 8))
        gen = torch.Generator().manual_seed(1)
        terms[beta] = model.loss_terms(images, images, "mse", gen)
    for beta, t in terms.items():
        assert torch.allclose(t["loss"], t["recon"] + beta * t["kl"])
    assert torch.allclose(terms[0.5]["kl"], terms[4.0]["kl"])  # same weights, same draw


@pytest.mark.parametrize(
    ("text", "stored"),
    [("", ""), ("4, 0-2", "0,1,2,4"), ("7,7,7", "7"), ("0-9", ""), (" 3 ", "3")],
)
def test_classes_are_normalised(text, stored):
    assert TrainConfig(dataset="digits", classes=text).classes == stored


@pytest.mark.parametrize(("text", "message"), [("0-12", "between 0 and 9"), ("a,b", "numbers")])
def test_bad_classes_are_refused_clearly(text, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(dataset="digits", classes=text)


def test_a_link_with_bad_classes_keeps_the_base_value_with_a_note():
    base = TrainConfig(dataset="digits")
    cfg, notes = config_from_strings({"classes": "0-99"}, base)
    assert cfg == base and notes


def test_select_classes_keeps_the_whole_test_set():
    ds = load_dataset("digits")
    some = select_classes(ds, "0,1,2,3,4")
    assert set(some.train_labels.tolist()) == {0, 1, 2, 3, 4}
    assert len(some.train_images) == len(some.train_labels) < len(ds.train_images)
    assert torch.equal(some.test_images, ds.test_images)
    assert select_classes(ds, "") is ds


def test_a_class_subset_run_trains_only_on_those_classes(monkeypatch):
    import aecore.train as training

    split = training.split_indices
    sizes = []
    monkeypatch.setattr(training, "split_indices", lambda n: sizes.append(n) or split(n))
    cfg = TrainConfig(
        dataset="digits", corruption="none", model="dense", latent=8, epochs=1, classes="0-4"
    )
    ds = load_dataset("digits")
    train(cfg, dataset=ds, device="cpu")
    assert sizes == [int((ds.train_labels < 5).sum())]
