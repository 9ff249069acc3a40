"""aecore.beta: the three runs that differ only in β, the figures that compare them, and what β
does to a trained VAE (on the bundled digits, a few seconds)."""

import dataclasses
import math

import numpy as np
import pytest
import torch

from aecore import beta as betas
from aecore.config import TrainConfig
from aecore.data import DATASETS, load_dataset
from aecore.models import build_model
from aecore.presets import preset_config
from aecore.pretrain import read_manifest
from aecore.runs import train_and_save

CLASSES = [str(i) for i in range(10)]


@pytest.mark.parametrize("dataset", ["digits", "mnist"])
def test_the_three_configs_differ_only_in_beta(dataset):
    configs = betas.beta_configs(dataset)
    assert list(configs) == [0.5, 1.0, 4.0]
    assert len({cfg.key() for cfg in configs.values()}) == 3
    for beta, cfg in configs.items():
        assert cfg.beta == beta and cfg.model == "vae_mlp" and cfg.latent == 2
        same = {**cfg.to_dict(), "beta": 1.0}
        assert same == configs[1.0].to_dict()


@pytest.mark.parametrize("dataset", ["digits", "mnist"])
def test_beta_one_is_the_bundled_vae_preset(dataset):
    middle = betas.beta_configs(dataset)[1.0]
    assert middle == preset_config("variational", dataset)
    bundled = {e.config.key() for e in read_manifest()[1]}
    assert middle.key() in bundled


def test_the_comparison_is_offered_for_one_channel_datasets_only():
    offered = betas.beta_datasets()
    assert "digits" in offered and "mnist" in offered
    assert all(DATASETS[n].meta["shape"][0] == 1 for n in offered)
    assert set(DATASETS.names()) - set(offered)  # the colour set is left out


def test_every_scatter_shows_the_prior_and_the_codes():
    assert betas.shared_half_width([np.zeros((5, 2))]) == betas.MIN_HALF_WIDTH
    assert betas.shared_half_width([]) == betas.MIN_HALF_WIDTH
    rng = np.random.default_rng(0)
    wide, narrow = rng.normal(0, 2.0, (1000, 2)), rng.normal(0, 0.1, (1000, 2))
    half = betas.shared_half_width([wide, narrow])
    inside = (np.abs(wide) <= half).all(1).mean()
    assert 0.995 <= inside < 1.0  # the window is set by the wide run, less its outliers
    assert half * 2 == int(half * 2)  # a round window
    stray = np.vstack([narrow, [[50.0, 0.0]]])  # one stray code does not set the window
    assert betas.shared_half_width([stray]) == betas.MIN_HALF_WIDTH


def test_the_scatter_has_fixed_square_axes_prior_circles_and_class_labels():
    points = np.array([[1.0, 1.0], [1.2, 0.8], [-2.0, -1.0]])
    fig = betas.beta_scatter(points, np.array([0, 0, 1]), CLASSES, 3.0)
    assert list(fig.layout.xaxis.range) == [-3.0, 3.0] == list(fig.layout.yaxis.range)
    assert fig.layout.yaxis.scaleanchor == "x" and fig.layout.yaxis.scaleratio == 1
    radii = sorted(shape.x1 for shape in fig.layout.shapes if shape.type == "circle")
    assert radii == [1.0, 2.0]
    labels = {a.text: (a.x, a.y) for a in fig.layout.annotations if "<b>" in a.text}
    assert labels == {"<b>0</b>": (1.1, 0.9), "<b>1</b>": (-2.0, -1.0)}  # medians, shown only
    assert len(fig.data) == 2  # classes with codes
    named = betas.beta_scatter(points, np.array([0, 0, 1]), ["T-shirt", "Trouser"], 3.0)
    assert {a.text for a in named.layout.annotations if "<b>" in a.text} == {"<b>0</b>", "<b>1</b>"}


def test_the_class_key_names_numbers_only_where_names_are_words():
    assert betas.class_key(CLASSES) is None
    assert betas.class_key(["0 - zero", "1 - one"]) is None
    assert betas.class_key(["T-shirt/top", "Trouser"]) == "0 T-shirt/top, 1 Trouser"


METRICS = {
    0.5: {"test_recon": 22.0, "test_kl": 3.0, "test_psnr": 14.0},
    1.0: {"test_recon": 22.5, "test_kl": 2.0, "test_psnr": 13.9},
    4.0: {"test_recon": 26.7, "test_kl": 0.003, "test_psnr": 11.0},
}


def test_the_chart_puts_each_beta_at_its_kl_and_reconstruction():
    fig = betas.recon_kl_chart({**METRICS, 2.0: {"test_psnr": 12.0}})  # no terms: left out
    trace = fig.data[0]
    assert list(trace.x) == [3.0, 2.0, 0.003] and list(trace.y) == [22.0, 22.5, 26.7]
    assert list(trace.text) == ["β = 0.5", "β = 1", "β = 4"]
    assert "nats per image" in fig.layout.xaxis.title.text
    assert "nats per image" in fig.layout.yaxis.title.text.replace("<br>", " ")


def test_the_table_adds_the_elbo_and_each_runs_objective():
    table = betas.beta_table(METRICS).set_index("β")
    assert table.loc["4", "recon + KL"] == pytest.approx(26.703)
    assert table.loc["4", "recon + β·KL"] == pytest.approx(26.7 + 4 * 0.003)
    assert table.loc["0.5", "recon + β·KL"] == pytest.approx(23.5)
    assert math.isnan(betas.beta_table({1.0: {}}).loc[0, "KL"])


def test_the_takeaway_reads_the_numbers_and_names_a_collapse():
    text = betas.takeaway(METRICS)
    assert "falls from 3 to 0.003" in text and "rises from 22.00 to 26.70" in text
    assert "At β = 4 the code collapsed" in text
    healthy = {b: m for b, m in METRICS.items() if b < 4}
    assert "collapsed" not in betas.takeaway(healthy)
    assert betas.takeaway({1.0: METRICS[1.0]}) is None
    assert betas.collapsed({"test_kl": 0.01}) and not betas.collapsed({"test_kl": 0.5})
    assert not betas.collapsed({})


def test_samples_share_their_codes_across_runs():
    cfg = betas.beta_configs("digits")[4.0]
    torch.manual_seed(0)
    model = build_model(cfg, (1, 8, 8))
    images = load_dataset("digits").test_images[:4]
    drawn, pairs = betas.samples_and_reconstructions(model, images, n_samples=6, seed=3)
    again, _ = betas.samples_and_reconstructions(model, images, n_samples=6, seed=3)
    assert drawn.shape == (6, 1, 8, 8) and torch.equal(drawn, again)
    assert pairs.shape == (8, 1, 8, 8) and 0 <= float(pairs.min()) <= float(pairs.max()) <= 1
    assert torch.equal(pairs[:4], images.float() / 255)
    assert model.training  # the model's mode is left as it was


def _short(cfg: TrainConfig) -> TrainConfig:
    return dataclasses.replace(cfg, epochs=15)  # about a second each on the 8x8 digits


def test_a_higher_beta_trades_reconstruction_for_a_smaller_kl(tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path))
    configs = betas.beta_configs("digits")
    metrics = {
        beta: train_and_save(_short(configs[beta]), device="cpu", out_dir=tmp_path).metrics
        for beta in (0.5, 4.0)
    }
    low, high = metrics[0.5], metrics[4.0]
    assert high["test_kl"] < low["test_kl"]
    assert high["test_recon"] > low["test_recon"]
    assert low["test_kl"] > betas.COLLAPSED_KL  # β = 0.5 keeps a code
