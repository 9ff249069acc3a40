"""Models one by one: the tutorials' sizes, the penalties' values, VAE sampling. What every model
must do (shapes, seed counts, summaries, loss terms, facts) is in test_registries.py."""

import threading

import pytest
import torch
import torch.nn.functional as F

from aecore.config import TrainConfig
from aecore.models import build_model, count_params
from aecore.models.regularizers import jacobian_frobenius_sq


def make(model: str, shape=(1, 28, 28), **kw):
    dataset = {(1, 28, 28): "mnist", (1, 8, 8): "digits"}.get(shape, "mnist")
    return build_model(TrainConfig(dataset=dataset, model=model, **kw), shape)


def test_pytorch_examples_vae_size():
    # pytorch/examples' VAE: 784-400-(20, 20) | 20-400-784
    assert count_params(make("vae_mlp", latent=20)) == 652_824


def test_sparse_penalty_is_weighted_l1_of_the_code():
    model = make("dense", (1, 8, 8), latent=6, regularizer="sparse", reg_weight=0.5)
    x = torch.rand(3, 1, 8, 8)
    terms = model.loss_terms(x, x, "mse")
    expected = 0.5 * model.encode(x).abs().sum(1).mean()
    assert torch.allclose(terms["reg"], expected)
    assert torch.allclose(terms["loss"], terms["recon"] + terms["reg"])


def test_contractive_estimate_matches_the_exact_jacobian_norm():
    torch.manual_seed(0)
    model = make("janet", (1, 8, 8), latent=5)
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
    model = make("vae_mlp", latent=2)
    a = model.sample(6, torch.Generator().manual_seed(1))
    b = model.sample(6, torch.Generator().manual_seed(1))
    assert a.shape == (6, 1, 28, 28) and torch.equal(a, b)


def test_pooling_models_refuse_sides_not_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        make("conv_pool", (1, 30, 30))


def test_threads_sharing_one_vae_each_get_their_own_seeds_numbers():
    """A cached model is shared by every session: the noise its loss and its samples draw must
    come from the caller's generator, so two threads at once each get what their seed gives
    alone (a generator kept on the model would interleave their draws)."""
    torch.manual_seed(0)
    model = make("vae_mlp", (1, 8, 8), latent=2).eval()
    x = torch.rand(16, 1, 8, 8)

    def draw(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.no_grad():
            loss = model.loss_terms(x, x, "bce", torch.Generator().manual_seed(seed))["loss"]
        return loss, model.sample(4, torch.Generator().manual_seed(seed))

    alone = {seed: draw(seed) for seed in (1, 2)}
    assert not torch.equal(alone[1][0], alone[2][0])  # the seeds do differ
    start, got = threading.Barrier(2), {1: [], 2: []}

    def worker(seed: int) -> None:
        start.wait()
        got[seed].extend(draw(seed) for _ in range(200))

    threads = [threading.Thread(target=worker, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for seed, results in got.items():
        assert len(results) == 200
        for loss, images in results:
            assert torch.equal(loss, alone[seed][0]) and torch.equal(images, alone[seed][1])


@pytest.mark.parametrize("scale", [1.0, 30.0, 200.0])
def test_bce_on_logits_matches_torch_in_value_and_gradient(scale):
    """aecore's vectorised BCE on logits against F.binary_cross_entropy_with_logits, logits up
    to +-600 included (where exp overflows if taken naively)."""
    from aecore.models.base import reconstruction_sum

    gen = torch.Generator().manual_seed(0)
    logits = (torch.randn((16, 1, 8, 8), generator=gen) * scale).requires_grad_(True)
    target = torch.rand((16, 1, 8, 8), generator=gen)
    ours = reconstruction_sum(logits, target, "bce", "sigmoid")
    (ours_grad,) = torch.autograd.grad(ours, logits)
    theirs = F.binary_cross_entropy_with_logits(logits, target, reduction="sum")
    (their_grad,) = torch.autograd.grad(theirs, logits)
    assert torch.isfinite(ours)
    assert torch.allclose(ours, theirs, rtol=1e-5)
    assert torch.allclose(ours_grad, their_grad, atol=1e-6)


def test_bce_on_logits_has_a_second_derivative():
    from aecore.models.base import _BCEWithLogits

    gen = torch.Generator().manual_seed(1)
    logits = torch.randn((3, 5), generator=gen, dtype=torch.float64).requires_grad_(True)
    target = torch.rand((3, 5), generator=gen, dtype=torch.float64)
    assert torch.autograd.gradcheck(_BCEWithLogits.apply, (logits, target))
    assert torch.autograd.gradgradcheck(_BCEWithLogits.apply, (logits, target))


@pytest.mark.parametrize(("loss", "output"), [("mse", "sigmoid"), ("bce", "leaky_relu")])
def test_reconstruction_sum_is_the_sum_of_the_per_value_losses(loss, output):
    from aecore.models.base import reconstruction_sum

    gen = torch.Generator().manual_seed(2)
    raw, target = torch.randn((4, 1, 6, 6), generator=gen), torch.rand((4, 1, 6, 6), generator=gen)
    if output == "sigmoid":
        expected = (torch.sigmoid(raw) - target).square().sum()
    else:
        x_hat = F.leaky_relu(raw).clamp(1e-6, 1 - 1e-6)
        expected = -(target * x_hat.log() + (1 - target) * (1 - x_hat).log()).sum()
    assert torch.allclose(reconstruction_sum(raw, target, loss, output), expected, rtol=1e-5)
