"""Is a trained run worth looking at? A plain-language warning, with advice, when it is not.

Two failures are common with small models, and a table of PSNRs hides both:

- **Collapse.** The model gives (nearly) the same image whatever the input: training stalled on
  one constant output. The plain conv models do this with a sigmoid output and MSE (their logits
  run away to about -10, where the sigmoid is flat; aecore/models/conv.py has the measurements),
  and a VAE does it when its code carries nothing about the input (posterior collapse), so its
  decoder draws one average image.
- **Worse than its input.** The reconstructions are further from the clean images than the
  corrupted input itself: the model damages the images it was meant to repair.

Collapse is measured on the reconstructions themselves: `output_spread` gives how much each output
pixel varies across the test images (`test_output_std`), next to how much the clean test images
vary (`test_clean_std`); aecore.evaluate stores both in the run's metrics. Runs evaluated before
these keys existed are checked for "worse than its input" only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

# A run whose outputs vary across images less than this fraction of what the clean images do is
# called collapsed. Measured (bench/collapse.py, MNIST, 1 epoch, Gaussian 0.5), as that fraction:
# plain conv models stuck on a black image 0.000-0.017, vae_conv with its code collapsed
# 0.000-0.028, the BatchNorm conv models and the U-Net 0.58-0.91, and plain conv_same runs that
# escaped but stayed below the median filter 0.38-0.39.
COLLAPSE_RATIO = 0.2
# PSNR below the corrupted input's by more than this (dB) counts as worse than the input.
WORSE_MARGIN_DB = 0.1


def output_spread(recon: torch.Tensor, clean: torch.Tensor) -> dict[str, float]:
    """How much the reconstructions and the clean images vary across images: the standard
    deviation over the image axis of each value, averaged over pixels and channels."""
    return {
        "test_output_std": float(recon.float().std(0, correction=0).mean()),
        "test_clean_std": float(clean.float().std(0, correction=0).mean()),
    }


def _number(metrics: Mapping[str, float], key: str) -> float | None:
    value = metrics.get(key)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def collapse_warning(metrics: Mapping[str, float]) -> str | None:
    """The collapse warning, or None (also when the metrics lack the spread keys)."""
    out, ref = _number(metrics, "test_output_std"), _number(metrics, "test_clean_std")
    if out is None or ref is None or ref <= 0 or out >= COLLAPSE_RATIO * ref:
        return None
    share = f"{100 * out / ref:.0f}%" if out / ref >= 0.01 else "less than 1%"
    text = (
        "**The reconstructions are nearly the same image for every input** (they vary "
        f"{share} as much as the test images do). "
    )
    if "test_kl" in metrics:
        kl = _number(metrics, "test_kl")
        kl_text = f" (KL {kl:.1f} nats per image)" if kl is not None else ""
        return text + (
            "The VAE's code carries almost nothing about its input" + kl_text + ", so its "
            "decoder draws one average image: posterior collapse, common in a VAE's first "
            "epochs. Train it longer (more epochs or images), or use BCE loss, which weighs "
            "the reconstruction more against the KL term than MSE does."
        )
    return text + (
        "Training stalled on one constant output: the model collapsed. Try another seed, a "
        "lower learning rate, or more epochs; a conv model with BatchNorm (conv_same, "
        "conv_pool, conv_transpose, not their _plain originals) avoids this."
    )


def worse_than_input_warning(metrics: Mapping[str, float]) -> str | None:
    """The warning for reconstructions further from the clean images than the corrupted input
    is, or None. Only meaningful for a corrupted input: pass metrics with `_noisy` keys."""
    model, noisy = _number(metrics, "test_psnr"), _number(metrics, "test_psnr_noisy")
    if model is None or noisy is None or model >= noisy - WORSE_MARGIN_DB:
        return None
    return (
        f"**The reconstructions are worse than the corrupted input** ({model:.2f} dB against "
        f"{noisy:.2f} dB for the input left alone): the model damages the images more than "
        "the corruption did. Train it longer or with another learning rate, or pick a model "
        "that can pass what it sees through (the U-Net, with skips and a residual output)."
    )


def check(metrics: Mapping[str, float], corrupted: bool = True) -> str | None:
    """A plain-language warning with advice if the run collapsed or made its input worse, else
    None. `metrics`: a run's test metrics (Checkpoint.metrics, aecore.evaluate.evaluate's
    keys); `corrupted`: whether the run's input was corrupted (without corruption the input is
    the target, and "worse than the input" means nothing)."""
    found = [collapse_warning(metrics)]
    if corrupted:
        found.append(worse_than_input_warning(metrics))
    found = [w for w in found if w]
    return "\n\n".join(found) if found else None
