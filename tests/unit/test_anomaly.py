"""aecore.anomaly: cases, reconstruction-error scores, thresholds, ROC and the figures."""

import dataclasses

import numpy as np
import pytest
import torch

from aecore import anomaly
from aecore.anomaly import AnomalyCase, Confusion
from aecore.config import TrainConfig
from aecore.data import load_dataset, to_float
from aecore.models import build_model
from aecore.presets import preset_config
from aecore.train import train

RNG = np.random.default_rng(0)


def test_cases_follow_the_registry():
    digits = anomaly.case_configs("digits")
    assert len(digits) == 1  # no other dataset has 8x8 images
    (case,) = digits
    assert case.config.classes == "0,1,2,3,4" and case.other == ""
    assert case.config == dataclasses.replace(
        preset_config("undercomplete", "digits"), classes="0-4"
    )
    assert case.labels == ("normal (classes 0-4)", "anomalous (classes 5-9)")

    mnist = anomaly.case_configs("mnist")
    others = [c.other for c in mnist if c.other]
    assert "fashion_mnist" in others and "cifar10" not in others and "digits" not in others
    against = next(c for c in mnist if c.other == "fashion_mnist")
    assert against.config == preset_config("undercomplete", "mnist")  # the whole of MNIST
    assert against.config.classes == ""
    assert against.labels == ("normal (MNIST)", "anomalous (Fashion-MNIST)")
    assert len({c.key() for c in mnist}) == len(mnist)
    assert anomaly.partner_datasets("cifar10") == []


def test_span_names_class_runs():
    assert anomaly.span([4, 0, 1, 2, 3]) == "0-4"
    assert anomaly.span([0, 2, 3, 5, 6, 7]) == "0, 2-3, 5-7"
    assert anomaly.span([9]) == "9"


def test_the_class_split_keeps_trained_classes_normal():
    case = anomaly.case_configs("digits")[0]
    ds = load_dataset("digits")
    normal, anomalous = anomaly.split_test_set(case, ds)
    assert len(normal) + len(anomalous) == len(ds.test_images)
    labels = ds.test_labels
    assert len(normal) == int((labels < 5).sum()) and len(anomalous) == int((labels >= 5).sum())
    assert torch.equal(normal[0], ds.test_images[int(torch.nonzero(labels < 5)[0])])
    with pytest.raises(ValueError, match="fashion_mnist"):
        anomaly.split_test_set(AnomalyCase("x", case.config, "fashion_mnist"), ds)


def test_scores_are_the_mse_per_pixel_of_each_image():
    cfg = TrainConfig(dataset="digits", corruption="none", model="dense", latent=8)
    model = build_model(cfg, (1, 8, 8))
    images = load_dataset("digits").test_images[:50]
    scores = anomaly.reconstruction_errors(model, images, batch=7)
    x = to_float(images)
    with torch.no_grad():
        expected = (model.reconstruct(x) - x).square().mean((1, 2, 3)).double().numpy()
    assert scores.shape == (50,) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, expected, rtol=1e-5)
    np.testing.assert_allclose(
        anomaly.reconstruction_errors(model, x, batch=1000), scores, rtol=1e-5
    )
    assert model.training  # the mode it was found in
    assert len(anomaly.reconstruction_errors(model, images[:0])) == 0


def test_auc_is_one_for_separate_sets_and_a_half_for_identical_ones():
    normal = RNG.uniform(0.0, 0.1, 500)
    _, _, auc = anomaly.roc(normal, RNG.uniform(0.2, 0.3, 400))
    assert auc == 1.0
    fpr, tpr, auc = anomaly.roc(normal, normal.copy())
    assert auc == pytest.approx(0.5)
    np.testing.assert_allclose(fpr, tpr)  # the diagonal
    with pytest.raises(ValueError, match="at least one image"):
        anomaly.roc(normal, np.array([]))


def test_threshold_counts_add_up_and_move_the_right_way():
    normal, anomalous = RNG.gamma(2.0, 0.01, 300), RNG.gamma(4.0, 0.01, 200)
    previous = None
    for threshold in np.linspace(0.0, 0.15, 16):
        c = anomaly.confusion(normal, anomalous, threshold)
        assert c.tp + c.fn == 200 and c.fp + c.tn == 300
        assert c.tp == int((anomalous > threshold).sum())
        if previous is not None:  # a higher threshold flags fewer images of both sets
            assert c.tp <= previous.tp and c.fp <= previous.fp
        previous = c
    start = anomaly.default_threshold(normal)
    assert anomaly.confusion(normal, anomalous, start).false_alarm_rate == pytest.approx(
        0.05, abs=0.01
    )


def test_rates_follow_their_definitions():
    c = Confusion(tp=30, fn=10, fp=5, tn=55)
    assert (c.recall, c.false_alarm_rate) == (0.75, 5 / 60)
    assert c.precision == 30 / 35 and c.accuracy == 0.85
    assert np.isnan(Confusion(tp=0, fn=4, fp=0, tn=6).precision)
    text = anomaly.rates_text(c)
    assert "- **75.0%** of the anomalies are flagged (detection rate, recall)" in text
    assert "**8.3%** of the normal images are flagged" in text
    assert "n/a (nothing flagged)" in anomaly.rates_text(Confusion(tp=0, fn=4, fp=0, tn=6))
    cm = anomaly.confusion_table(c)
    assert cm.loc["normal", "flagged"] == 5 and cm.loc["anomalous", "passed"] == 10


def test_slider_range_covers_the_default_threshold():
    normal, anomalous = RNG.gamma(2.0, 0.01, 300), RNG.gamma(4.0, 0.01, 200)
    low, high, step = anomaly.slider_range(normal, anomalous)
    assert low == 0.0 and step > 0 and high > anomaly.default_threshold(normal)
    assert 100 <= high / step <= 300


def test_extremes_rank_both_sets_together():
    highest, lowest = anomaly.extremes(np.array([0.1, 0.5, 0.2]), np.array([0.9, 0.05]), 2)
    assert highest == [("anomalous", 0, 0.9), ("normal", 1, 0.5)]
    assert lowest == [("anomalous", 1, 0.05), ("normal", 0, 0.1)]


def test_the_histograms_share_bins_and_show_the_threshold():
    normal, anomalous = RNG.gamma(2.0, 0.01, 300), RNG.gamma(4.0, 0.01, 200)
    fig = anomaly.histograms(normal, anomalous, ("normal (a)", "anomalous (b)"), 0.04)
    bars = [t for t in fig.data if t.type == "bar"]
    assert [b.name for b in bars] == ["normal (a)", "anomalous (b)"]
    assert list(bars[0].x) == list(bars[1].x)
    for bar in bars:  # percent of each set, the tail folded into the last bar
        assert sum(bar.y) == pytest.approx(100.0)
    assert fig.layout.shapes[0].x0 == 0.04
    roc = anomaly.roc_figure(
        *anomaly.roc(normal, anomalous), anomaly.confusion(normal, anomalous, 0.04)
    )
    assert roc.layout.title.text.startswith("ROC curve, AUC = 0.")
    assert len(roc.data) == 3


def test_a_digits_model_of_classes_0_to_4_flags_5_to_9():
    """The page's digits case, trained for a third of its epochs: its errors still tell the
    classes it never saw apart (the full run measured AUC 0.90)."""
    case = anomaly.case_configs("digits")[0]
    result = train(dataclasses.replace(case.config, epochs=20), device="cpu", snapshots=False)
    normal, anomalous = anomaly.split_test_set(case, load_dataset("digits"))
    scores = [anomaly.reconstruction_errors(result.model, x) for x in (normal, anomalous)]
    _, _, auc = anomaly.roc(*scores)
    assert auc > 0.75
    assert np.median(scores[1]) > np.median(scores[0])
