"""aecore/sweep.py: the latent-size sweep of a dense AE against PCA."""

import dataclasses

import pytest
import torch

from aecore import pretrain, sweep
from aecore.checkpoints import find_checkpoint, load_checkpoint
from aecore.data import DATASETS, load_dataset
from aecore.runs import train_and_save


def test_mnist_sweep_configs_are_the_bundled_ones():
    names = pretrain.bundled_names()
    assert [names.get(sweep.sweep_config("mnist", k).key()) for k in sweep.LATENTS] == [
        "dense1_mnist",
        "dense2_mnist",
        "dense8_mnist",
        "dense32_mnist",
    ]


def test_points_and_rows_with_some_sizes_missing(tmp_path):
    ds = load_dataset("digits")
    cfg = sweep.sweep_config("digits", 8)
    assert cfg.epochs == DATASETS["digits"].meta["sweep_epochs"] and cfg.corruption == "none"
    ckpt = train_and_save(dataclasses.replace(cfg, epochs=5), out_dir=tmp_path)
    runs = {2: None, 8: ckpt}
    points = sweep.sweep_points(ds, runs)
    assert [p.latent for p in points] == [2, 8]
    assert points[0].ae_mse is None and points[1].ae_mse == ckpt.metrics["test_mse"]
    # The same PCA numbers as the checkpoint's own baseline (evaluate.py computes them too).
    assert points[1].pca_mse == pytest.approx(ckpt.metrics["test_mse_pca"], rel=1e-5)
    assert points[0].pca_mse > points[1].pca_mse  # more components, less error
    rows = sweep.sweep_rows(ds, runs, n=6)
    assert list(rows) == ["Original", "PCA, k = 2", "AE, k = 8", "PCA, k = 8"]
    assert all(x.shape == (6, 1, 8, 8) for x in rows.values())


def test_bundled_mnist_sweep_matches_the_results_document(real_data):
    runs = {k: load_checkpoint(find_checkpoint(sweep.sweep_config("mnist", k))) for k in (1, 32)}
    assert {k: c.config.latent for k, c in runs.items()} == {1: 1, 32: 32}  # the bundled files
    if not real_data:
        return  # the recorded MSEs are about the real MNIST test set
    ds = load_dataset("mnist")
    by_k = {p.latent: p for p in sweep.sweep_points(ds, runs)}
    # experiments/RESULTS.md, section 2: PCA 0.0606 / AE 0.0625 at k = 1; 0.0152 / 0.0132 at 32.
    assert by_k[1].pca_mse == pytest.approx(0.0606, abs=1e-4)
    assert by_k[32].pca_mse == pytest.approx(0.0152, abs=1e-4)
    assert sweep.verdict(list(by_k.values())) == (
        "The shallow AE loses to PCA at k = 1 and beats PCA at k = 32 (test MSE)."
    )


def test_verdict_wording():
    P = sweep.SweepPoint
    assert "No autoencoder" in sweep.verdict([P(1, 0.1, None)])
    assert sweep.verdict([P(1, 0.1, 0.2), P(2, 0.1, 0.3)]) == (
        "The shallow AE loses to PCA at k = 1, 2 (test MSE)."
    )


def test_dead_units_are_the_code_columns_zero_for_every_image():
    codes = torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, -0.0], [0.0, 3.0, 0.0, 0.0]])
    assert sweep.dead_units(codes) == 2  # columns 0 and 3; a unit 0 for some images is alive
    assert sweep.dead_units(torch.zeros(5, 3)) == 3 and sweep.dead_units(torch.ones(5, 3)) == 0


def test_a_trained_point_counts_its_dead_units(tmp_path):
    ds = load_dataset("digits")
    ckpt = train_and_save(
        dataclasses.replace(sweep.sweep_config("digits", 8), epochs=2), out_dir=tmp_path
    )
    with torch.no_grad():  # kill code units 0 and 5: their ReLU input below 0 for every image
        ckpt.model.encoder[1].weight[[0, 5]] = 0.0
        ckpt.model.encoder[1].bias[[0, 5]] = -1.0
    (point,) = sweep.sweep_points(ds, {8: ckpt})
    assert point.dead_units >= 2 and point.ae_mse == ckpt.metrics["test_mse"]
