"""aecore.generalisation: the train-on-A, test-on-B matrix of experiments/RESULTS.md section 7."""

from __future__ import annotations

import math

import pytest

from aecore import generalisation as gen
from aecore.baselines import median_filter
from aecore.config import TrainConfig
from aecore.data import load_dataset
from aecore.evaluate import corrupted_test_set
from aecore.metrics import psnr
from aecore.pretrain import read_manifest
from aecore.train import train


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_the_mnist_rows_are_section_7s_recipe_and_two_are_bundled():
    cols = gen.columns("mnist")
    assert [(c.corruption, c.level) for c in cols] == [
        ("gaussian", 0.5),
        ("salt_pepper", 0.2),
        ("stripes", 10.0),
        ("block", 10.0),
    ]
    cfgs = gen.row_configs("mnist")
    assert all((c.model, c.epochs, c.batch_size, c.lr) == ("unet", 2, 32, 1e-3) for c in cfgs)
    # The bundled inpainting U-Nets were trained with exactly this recipe: same keys.
    bundled = {e.config.key() for e in read_manifest()[1]}
    assert cfgs[2].key() in bundled and cfgs[3].key() in bundled


def test_digits_levels_scale_with_the_image_and_train_longer():
    cols = gen.columns("digits")
    assert [c.level for c in cols] == [0.5, 0.2, 3.0, 3.0]  # 10 of 28 rows -> 3 of 8
    cfgs = gen.row_configs("digits")
    assert all(c.epochs == gen.EPOCHS["small"] > gen.EPOCHS["large"] for c in cfgs)
    assert [c.corruption for c in cfgs] == [c.corruption for c in cols]
    assert cols[0].label == "Gaussian noise 0.5" and cols[3].label == "Gray block 3"


def test_reference_rows_are_the_input_and_the_median_on_the_same_images(digits):
    refs = gen.reference_rows(digits, 100)
    assert list(refs) == [gen.INPUT, gen.MEDIAN]
    clean, noisy = corrupted_test_set(digits, "gaussian", 0.5, "cpu", 100)
    assert refs[gen.INPUT][0] == pytest.approx(float(psnr(noisy, clean).mean()))
    assert refs[gen.MEDIAN][0] == pytest.approx(float(psnr(median_filter(noisy, 3), clean).mean()))
    assert all(math.isfinite(v) for row in refs.values() for v in row)
    assert gen.images_used(digits) == len(digits.test_images) == 297  # fewer than 1,000


@pytest.fixture(scope="module")
def tiny_row(digits):
    """The gaussian row's U-Net, trained for one epoch only (a second or two)."""
    cfg = TrainConfig(**(gen.row_configs("digits")[0].to_dict() | {"epochs": 1}))
    return train(cfg, device="cpu", dataset=digits, snapshots=False).model


def test_a_trained_row_fills_its_cells_and_the_rest_read_not_trained(digits, tiny_row):
    cells = gen.row_cells(tiny_row, digits, 100)
    assert len(cells) == 4 and all(math.isfinite(v) for v in cells)
    col = gen.columns("digits")[0]
    m = gen.assemble("digits", gen.reference_rows(digits, 100), {col: cells}, 100)
    assert m.rows[:3] == (gen.INPUT, gen.MEDIAN, gen.row_name(col))
    assert m.row(gen.row_name(col)) == tuple(cells)
    assert m.row(gen.row_name(gen.columns("digits")[1])) == (None,) * 4
    fig = gen.heatmap(m)
    text = fig.data[0].text
    assert text[3] == ["not trained"] * 4 and text[2][0] == f"{cells[0]:.2f}"
    assert len(fig.layout.shapes) == 4  # the diagonal outlined


def _matrix(values) -> gen.Matrix:
    cols = gen.columns("digits")
    refs = {gen.INPUT: [10.0, 10.0, 10.0, 10.0], gen.MEDIAN: [12.0, 12.0, 9.0, 9.0]}
    return gen.assemble("digits", refs, dict(zip(cols, values, strict=True)), 297)


def test_the_verdict_names_the_cells_worse_than_the_input():
    cols = gen.columns("digits")
    m = _matrix([[20, 9, 11, 11], [11, 20, 11, 11], None, None])
    assert gen.below_input(m) == [(cols[0], cols[1])]
    assert "1 cell(s) do worse" in gen.verdict(m) and "Salt and pepper 0.2" in gen.verdict(m)
    good = _matrix([[20, 11, 11, 11], None, None, None])
    assert gen.verdict(good).startswith("Every trained model improves")
    assert gen.verdict(_matrix([None] * 4)).startswith("No row model is trained")


def test_colour_is_the_gain_over_the_input():
    fig = gen.heatmap(_matrix([[20, 9, 11, 11], None, None, None]))
    z = fig.data[0].z
    assert list(z[0]) == [0.0] * 4  # the input row: no gain over itself
    assert list(z[2]) == [10.0, -1.0, 1.0, 1.0]
    assert fig.data[0].zmid == 0.0  # white = no better than the input
