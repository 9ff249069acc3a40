"""The model registry. Every model is built as MODELS[name].fn(shape, latent, **options)."""

from __future__ import annotations

# Registration order is the order the app lists models in, so these imports are not sorted.
# isort: off
from aecore.models import mlp, conv, unet, vae  # noqa: F401

# isort: on
from aecore.models.base import REGULARIZERS, Autoencoder, LayerRow, count_params, summary
from aecore.models.registry import MODELS

__all__ = ["MODELS", "REGULARIZERS", "Autoencoder", "LayerRow", "build_model", "count_params"]
__all__ += ["summary", "check_shape"]


def check_shape(name: str, shape: tuple[int, int, int]) -> None:
    """Raise ValueError if a model cannot take images of this (C, H, W)."""
    k = MODELS[name].meta.get("divisible_by", 1)
    if shape[1] % k or shape[2] % k:
        raise ValueError(
            f"{MODELS[name].label} needs image sides divisible by {k}; got {shape[1]}x{shape[2]}"
        )


def build_model(
    name: str,
    shape: tuple[int, int, int],
    latent: int,
    width: int = 256,
    regularizer: str = "none",
    reg_weight: float = 0.0,
) -> Autoencoder:
    check_shape(name, shape)
    model = MODELS[name].fn(tuple(shape), latent, width=width)
    model.regularizer = regularizer
    model.reg_weight = reg_weight
    return model
