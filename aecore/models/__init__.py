"""The model registry. Every model is built as MODELS[name].fn(shape, latent, **options);
build_model builds the one a TrainConfig names."""

from __future__ import annotations

from typing import TYPE_CHECKING

# Registration order is the order the app lists models in, so these imports are not sorted.
# isort: off
from aecore.models import mlp, conv, unet, vae  # noqa: F401

# isort: on
from aecore.models.base import REGULARIZERS, Autoencoder, LayerRow, count_params, summary
from aecore.models.registry import MODELS
from aecore.models.regularizers import PENALTIES, has_weight, needs_input_grad

if TYPE_CHECKING:  # aecore.config imports this package: a runtime import would be circular
    from aecore.config import TrainConfig

__all__ = ["MODELS", "PENALTIES", "REGULARIZERS", "Autoencoder", "LayerRow", "build_model"]
__all__ += ["count_params", "summary", "check_shape", "is_variational", "has_weight"]
__all__ += ["needs_input_grad"]


def is_variational(name: str) -> bool:
    """Whether the model is a VAE: its loss is a negative ELBO in nats per image, with a KL term,
    and it can sample from its prior."""
    return bool(MODELS[name].meta["variational"])


def check_shape(name: str, shape: tuple[int, int, int]) -> None:
    """Raise ValueError if a model cannot take images of this (C, H, W)."""
    k = MODELS[name].meta["divisible_by"]
    if shape[1] % k or shape[2] % k:
        raise ValueError(
            f"{MODELS[name].label} needs image sides divisible by {k}; got {shape[1]}x{shape[2]}"
        )


def build_model(cfg: TrainConfig, shape: tuple[int, int, int]) -> Autoencoder:
    """cfg's model for images of shape (C, H, W), its regulariser set at construction. The shape
    is apart from cfg because a checkpoint records the shape its weights were trained on."""
    check_shape(cfg.model, shape)
    return MODELS[cfg.model].fn(
        tuple(shape),
        cfg.latent,
        width=cfg.width,
        regularizer=cfg.regularizer,
        reg_weight=cfg.reg_weight,
        beta=cfg.beta,
    )
