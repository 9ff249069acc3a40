"""Regularisers on the code: each a penalty per image, (N,), that the loss adds at its weight.

Each entry's meta says what the rest of the code needs to know without naming it:
- `has_weight`: False only for "none", which penalises nothing (its weight is stored as 0, and a
  model need not build a code for it);
- `needs_input_grad`: the penalty differentiates the code with respect to the input, so its loss
  needs autograd on even where nothing trains (evaluation).
"""

from __future__ import annotations

import torch

from aecore.registry import Registry

PENALTIES = Registry(
    "regularizer", required=("label",), defaults={"has_weight": True, "needs_input_grad": False}
)


def has_weight(name: str) -> bool:
    """Whether the regulariser adds a (weighted) penalty; False: the plain reconstruction loss."""
    return bool(PENALTIES[name].meta["has_weight"])


def needs_input_grad(name: str) -> bool:
    """Whether the penalty needs the gradient of the code with respect to the input."""
    return bool(PENALTIES[name].meta["needs_input_grad"])


def noise_like(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, I) noise shaped like t, drawn from the caller's generator (None: torch's global one).
    The generator is always passed in, never kept on a model: a cached model is shared by every
    session, and a generator stored on it would interleave their draws."""
    return torch.randn(t.shape, generator=generator, device=t.device, dtype=t.dtype)


@PENALTIES.register("none", label="None", has_weight=False)
def no_penalty(z: torch.Tensor | None, x: torch.Tensor, generator: torch.Generator | None):
    return torch.zeros(len(x), device=x.device)


@PENALTIES.register("sparse", label="Sparse (L1 on the code)")
def sparse(z: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return z.flatten(1).abs().sum(1)


@PENALTIES.register("contractive", label="Contractive (encoder Jacobian)", needs_input_grad=True)
def contractive(z: torch.Tensor, x: torch.Tensor, generator: torch.Generator | None):
    return jacobian_frobenius_sq(z, x, noise_like(z, generator))


def jacobian_frobenius_sq(z: torch.Tensor, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Unbiased one-sample estimate of ||dz/dx||_F^2 per image, (N,), with v ~ N(0, I) like z.

    For v ~ N(0, I) in code space, E ||v^T J||^2 = trace(J J^T) = ||J||_F^2, so one extra
    backward pass replaces the latent-size many that the exact Jacobian needs (Rifai et al. 2011
    define the penalty; the estimator is Hutchinson's).
    """
    (vjp,) = torch.autograd.grad(z, x, grad_outputs=v, create_graph=True)
    return vjp.flatten(1).square().sum(1)
