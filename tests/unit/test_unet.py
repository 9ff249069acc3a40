"""The U-Net: shapes, parameter count, the code round trip, and that its skips carry detail."""

import pytest
import torch

from aecore.config import TrainConfig
from aecore.models import MODELS, build_model, count_params

UNET = TrainConfig(model="unet")


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (1, 8, 8)])
def test_shapes_and_the_code_round_trip(shape):
    model = build_model(UNET, shape).eval()
    x = torch.rand(3, *shape)
    z = model.encode(x)
    c, h, w = shape
    # x (C, H, W) + enc1 (16, H, W) + enc2 (32, H/2, W/2) + mid (32, H/4, W/4), flattened
    assert z.shape == (3, (c + 16) * h * w + 32 * (h // 2) * (w // 2) + 32 * (h // 4) * (w // 4))
    out = model.decode(z)
    assert out.shape == x.shape
    assert torch.equal(out, model(x))


def test_meta_and_parameter_count():
    meta = MODELS["unet"].meta
    assert meta["family"] == "conv" and meta["uses_latent"] is False and meta["divisible_by"] == 4
    assert count_params(build_model(UNET, (1, 28, 28))) == 39_457
    # 3x3 convs: 1->16, 16->32, 32->32, 64->32, 48->16, then a 1x1 16->1
    weights = 9 * (1 * 16 + 16 * 32 + 32 * 32 + 64 * 32 + 48 * 16) + 16
    biases = 16 + 32 + 32 + 32 + 16 + 1
    assert weights + biases == 39_457


def test_refuses_sides_not_divisible_by_four():
    with pytest.raises(ValueError, match="divisible by 4"):
        build_model(UNET, (1, 30, 30))


def test_output_is_the_input_plus_a_correction():
    """Residual: with the last conv zeroed the model is the identity, so an untrained U-Net
    starts near "change nothing" instead of near a blur."""
    model = build_model(UNET, (1, 28, 28))
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        model.out.weight.zero_()
        model.out.bias.zero_()
    assert torch.equal(model.reconstruct(x), x)


def test_the_direct_path_gives_the_same_output_as_decoding_the_code():
    """Training skips building the code; the numbers must be those of decode(encode(x))."""
    torch.manual_seed(0)
    model = build_model(UNET, (1, 28, 28))
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(model(x), model.decode(model.encode(x)), atol=1e-6)
