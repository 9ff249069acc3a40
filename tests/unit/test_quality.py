"""aecore.quality: a collapsed run (the same output for every input) and a run worse than its
input get a plain-language warning with advice; a good run gets none."""

import math

import pytest
import torch
from torch import nn

from aecore import quality
from aecore.data import load_dataset
from aecore.evaluate import evaluate
from aecore.models.base import Autoencoder

GOOD = {
    "test_psnr": 18.7,
    "test_psnr_noisy": 9.37,
    "test_psnr_median3": 14.18,
    "test_ssim": 0.78,
    "test_output_std": 0.15,
    "test_clean_std": 0.19,
}
# conv_pool_plain on MNIST, Gaussian 0.5, lr 3e-3: one black image for every input.
COLLAPSED = GOOD | {"test_psnr": 9.73, "test_ssim": 0.24, "test_output_std": 0.0001}


def test_a_good_run_gets_no_warning():
    assert quality.check(GOOD) is None
    assert quality.check(GOOD, corrupted=False) is None


def test_a_collapsed_run_is_named_with_advice():
    text = quality.check(COLLAPSED)
    assert text is not None and "nearly the same image for every input" in text
    assert "collapsed" in text and "BatchNorm" in text and "seed" in text
    assert "less than 1%" in text  # how much the outputs vary, relative to the images
    assert "worse than the corrupted input" not in text  # 9.73 dB beats the 9.37 dB input


def test_a_collapsed_vae_gets_vae_advice():
    text = quality.check(COLLAPSED | {"test_kl": 0.02})
    assert "VAE" in text and "posterior collapse" in text and "BCE" in text
    assert "0.0 nats" in text


def test_worse_than_its_input():
    # conv_pool on stripes in RESULTS.md section 4 (before the fix): 9.73 dB, input 14.34 dB.
    m = GOOD | {"test_psnr": 9.73, "test_psnr_noisy": 14.34}
    text = quality.check(m)
    assert "worse than the corrupted input" in text and "9.73 dB against 14.34 dB" in text
    assert quality.check(m, corrupted=False) is None  # no corruption: the input is the target
    within = GOOD | {"test_psnr": 14.30, "test_psnr_noisy": 14.34}
    assert quality.check(within) is None  # within WORSE_MARGIN_DB


def test_both_warnings_together():
    m = COLLAPSED | {"test_psnr_noisy": 14.34}
    text = quality.check(m)
    assert "nearly the same image" in text and "worse than the corrupted input" in text


@pytest.mark.parametrize(
    "metrics",
    [
        {},
        {"test_psnr": 12.0},  # an old run: no spread keys, no noisy baseline
        GOOD | {"test_output_std": math.nan},
        GOOD | {"test_clean_std": 0.0},  # one test image, or all images alike
        GOOD | {"test_psnr_noisy": math.inf},  # no corruption: PSNR of identical images
        GOOD | {"test_output_std": None},
    ],
)
def test_missing_or_odd_values_give_no_warning(metrics):
    assert quality.check(metrics) is None


def test_output_spread():
    clean = torch.rand(20, 1, 8, 8)
    same = quality.output_spread(clean, clean)
    assert same["test_output_std"] == pytest.approx(same["test_clean_std"])
    assert same["test_clean_std"] > 0.2  # uniform noise: std 0.29
    flat = quality.output_spread(torch.full_like(clean, 0.1), clean)
    assert flat["test_output_std"] == 0.0
    one = quality.output_spread(clean[:1], clean[:1])  # one image: no spread, and no NaN
    assert one == {"test_output_std": 0.0, "test_clean_std": 0.0}


class _Constant(Autoencoder):
    """Outputs sigmoid(-3) everywhere: a collapsed model."""

    def __init__(self, shape):
        super().__init__(shape, 0)
        self.encoder = nn.Conv2d(shape[0], 1, 1)
        self.decoder = nn.Conv2d(1, shape[0], 1)
        with torch.no_grad():
            self.decoder.weight.zero_()
            self.decoder.bias.fill_(-3.0)


class _Identity(Autoencoder):
    """Passes its input through (a leaky-ReLU output is the identity on [0, 1])."""

    output = "leaky_relu"

    def __init__(self, shape):
        super().__init__(shape, 0)
        self.encoder = nn.Identity()
        self.decoder = nn.Identity()
        self.unused = nn.Parameter(torch.zeros(1))  # evaluate() reads the device off a parameter


def test_evaluate_records_the_spread_and_the_check_reads_it():
    ds = load_dataset("digits")
    collapsed = evaluate(_Constant(ds.shape), ds, "gaussian", 0.5, "mse", limit=200)
    assert collapsed["test_output_std"] == pytest.approx(0.0, abs=1e-6)
    assert collapsed["test_clean_std"] > 0.1
    assert "nearly the same image" in quality.check(collapsed)

    identity = evaluate(_Identity(ds.shape), ds, "gaussian", 0.5, "mse", limit=200)
    assert identity["test_psnr"] == pytest.approx(identity["test_psnr_noisy"])
    assert quality.collapse_warning(identity) is None
    assert quality.check(identity) is None  # as good as its input, not worse
