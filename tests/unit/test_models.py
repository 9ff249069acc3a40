"""Models over the registry: shapes on every dataset shape, the seed parameter counts, summaries."""

import pytest
import torch

from aecore.models import MODELS, build_model, count_params, summary

SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]


def latent_for(name: str) -> int:
    return 4 if MODELS[name].meta.get("uses_latent", True) else 0


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", SHAPES)
def test_encode_decode_shapes_and_output_range(name, shape):
    model = build_model(name, shape, latent_for(name), width=32)
    x = torch.rand(5, *shape)
    z = model.encode(x)
    assert z.shape[0] == 5
    if latent_for(name):
        assert z.shape == (5, 4)
    x_hat = model.reconstruct(x)
    assert x_hat.shape == x.shape
    assert float(x_hat.min()) >= 0.0 and float(x_hat.max()) <= 1.0


@pytest.mark.parametrize("entry", [e for e in MODELS if "params" in e.meta], ids=lambda e: e.name)
def test_seed_parameter_counts(entry):
    for (shape, latent), expected in entry.meta["params"].items():
        assert count_params(build_model(entry.name, shape, latent)) == expected


def test_pytorch_examples_vae_size():
    # pytorch/examples' VAE: 784-400-(20, 20) | 20-400-784
    assert count_params(build_model("vae_mlp", (1, 28, 28), 20)) == 652_824


@pytest.mark.parametrize("name", MODELS.names())
def test_summary_rows_add_up_and_end_at_the_input_shape(name):
    model = build_model(name, (1, 28, 28), latent_for(name), width=32)
    rows = summary(model)
    assert sum(r.params for r in rows) == count_params(model)
    assert rows[-1].output_shape == (None, 1, 28, 28)
    assert rows[-1].kind in ("Sigmoid", "LeakyReLU")


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_loss_terms_are_finite_and_differentiable(name, loss):
    torch.manual_seed(0)
    model = build_model(name, (1, 28, 28), latent_for(name), width=32)
    clean = torch.rand(4, 1, 28, 28)
    terms = model.loss_terms(clean, clean, loss)
    assert torch.isfinite(terms["loss"])
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    if model.variational:
        assert set(terms) == {"loss", "recon", "kl"} and float(terms["kl"]) >= 0


def test_sparse_penalty_is_weighted_l1_of_the_code():
    model = build_model("dense", (1, 8, 8), 6, regularizer="sparse", reg_weight=0.5)
    x = torch.rand(3, 1, 8, 8)
    terms = model.loss_terms(x, x, "mse")
    expected = 0.5 * model.encode(x).abs().sum(1).mean()
    assert torch.allclose(terms["reg"], expected)
    assert torch.allclose(terms["loss"], terms["recon"] + terms["reg"])


def test_contractive_estimate_matches_the_exact_jacobian_norm():
    from aecore.models.base import jacobian_frobenius_sq

    torch.manual_seed(0)
    model = build_model("janet", (1, 8, 8), 5)
    x = torch.rand(2, 1, 8, 8)
    exact = torch.stack(
        [
            torch.autograd.functional.jacobian(lambda v: model.encode(v[None])[0], xi)
            .square()
            .sum()
            for xi in x
        ]
    )
    draws = []
    for _ in range(2000):
        xr = x.clone().requires_grad_(True)
        z = model.encode(xr)
        draws.append(jacobian_frobenius_sq(z, xr, torch.randn_like(z)).detach())
    estimate = torch.stack(draws).mean(0)
    assert torch.allclose(estimate, exact, rtol=0.1), (estimate, exact)


def test_vae_samples_come_from_the_prior():
    model = build_model("vae_mlp", (1, 28, 28), 2)
    a = model.sample(6, torch.Generator().manual_seed(1))
    b = model.sample(6, torch.Generator().manual_seed(1))
    assert a.shape == (6, 1, 28, 28) and torch.equal(a, b)


def test_pooling_models_refuse_sides_not_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model("conv_pool", (1, 30, 30), 0)
