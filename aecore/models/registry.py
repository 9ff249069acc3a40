"""MODELS: every model is one registered class, built as MODELS[name].fn(shape, latent, **options).

Facts each entry's meta gives: `label`, `family` ("mlp", "conv" or "vae"), `convolutional` (it has
convolutions, so it is slower per image and runs channels-last on a CPU); where they differ from
the defaults, `uses_latent`, `uses_width` and `divisible_by` (image sides). `variational` is the
class's own attribute (a VAE's loss samples its code), copied into meta at registration so that
it is written in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aecore.registry import Registry


class _ModelRegistry(Registry):
    def register(
        self, name: str, **meta: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def add(cls: Callable[..., Any]) -> Callable[..., Any]:
            facts = {"variational": bool(cls.variational), **meta}
            return Registry.register(self, name, **facts)(cls)

        return add


MODELS = _ModelRegistry(
    "model",
    required=("label", "family", "convolutional"),
    defaults={"uses_latent": True, "uses_width": False, "divisible_by": 1},
)
