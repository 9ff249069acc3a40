"""precision "bf16": bfloat16 matrix products in training, float32 weights, losses and testing."""

import contextlib
import dataclasses
import json
import math

import pytest
import torch

from aecore import train as train_module
from aecore.cli import UsageError, build_parser, main
from aecore.config import TrainConfig, describe_run
from aecore.data import load_dataset
from aecore.models.base import reconstruction_sum
from aecore.train import native_bf16, split_indices, step_autocast, train

TINY = dict(dataset="digits", model="dense", latent=8, epochs=3)


def test_validated_and_in_the_key_only_when_not_fp32():
    with pytest.raises(ValueError, match="precision must be one of fp32, bf16"):
        TrainConfig(precision="fp16")
    base = TrainConfig(**TINY)
    bf16 = dataclasses.replace(base, precision="bf16")
    assert bf16.key() != base.key()
    # fp32 is left out of the key: checkpoints named before the field existed keep their names.
    assert base.key() == TrainConfig(**TINY, precision="fp32").key()
    assert TrainConfig.from_dict(bf16.to_dict()) == bf16
    assert "bfloat16 mixed" in describe_run(bf16, base)


def test_the_command_line_takes_it_and_refuses_others():
    args = build_parser().parse_args(["train", "--dataset", "digits", "--precision", "bf16"])
    assert args.precision == "bf16"
    with pytest.raises(UsageError, match="invalid choice: 'half'"):
        build_parser().parse_args(["train", "--precision", "half"])


def test_training_steps_run_in_bf16_and_validation_in_fp32(monkeypatch):
    """A hook on the first layer records its output's dtype: bfloat16 in each of the epoch's
    training steps, float32 in the validation after them; the weights stay float32."""
    dtypes: list[torch.dtype] = []
    real = train_module.init_model

    def hooked(cfg, shape, device):
        model = real(cfg, shape, device)
        first = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
        first.register_forward_hook(lambda mod, inputs, out: dtypes.append(out.dtype))
        return model

    monkeypatch.setattr(train_module, "init_model", hooked)
    cfg = TrainConfig(**TINY | {"epochs": 1}, precision="bf16")
    result = train(cfg, device="cpu", snapshots=False)
    train_images = len(split_indices(len(load_dataset("digits").train_images))[0])
    steps = math.ceil(train_images / cfg.batch_size)
    assert dtypes[:steps] == [torch.bfloat16] * steps
    assert dtypes[steps:] and set(dtypes[steps:]) == {torch.float32}  # validation
    assert all(p.dtype == torch.float32 for p in result.model.parameters())


def test_the_loss_is_float32_whatever_the_decoder_gives():
    raw = torch.randn(4, 1, 8, 8).bfloat16()
    clean = torch.rand(4, 1, 8, 8)
    for loss in ("mse", "bce"):
        for output in ("sigmoid", "leaky_relu"):
            total = reconstruction_sum(raw, clean, loss, output)
            assert total.dtype == torch.float32
            exact = reconstruction_sum(raw.float(), clean, loss, output)
            assert total.item() == pytest.approx(exact.item(), rel=1e-6)


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"model": "janet", "corruption": "salt_pepper", "level": 0.2},
        {"model": "vae_mlp", "corruption": "none", "loss": "bce"},
        {"model": "conv_same"},
        {"model": "vae_conv", "corruption": "none", "loss": "bce"},
        {"model": "unet"},
        {"regularizer": "sparse", "reg_weight": 1e-3},
        {"regularizer": "contractive", "reg_weight": 1e-3},
    ],
)
def test_bf16_learns_as_fp32_does(changes):
    """Same seed, 3 epochs of digits: every epoch's training loss within 2% of float32's. Were
    the bfloat16 weights cached across steps (one autocast context around the epoch), each step
    would train on the first step's weights and the losses would part after the first epoch."""
    fp32 = TrainConfig(**TINY | changes)
    bf16 = dataclasses.replace(fp32, precision="bf16")
    want = [h.train_loss for h in train(fp32, device="cpu", snapshots=False).history]
    got = [h.train_loss for h in train(bf16, device="cpu", snapshots=False).history]
    assert got[-1] < got[0]
    assert got == pytest.approx(want, rel=0.02)


def test_one_context_per_step_without_the_weight_cache():
    ctx = step_autocast(TrainConfig(**TINY, precision="bf16"), torch.device("cpu"))
    assert ctx.fast_dtype == torch.bfloat16 and ctx._enabled and not ctx._cache_enabled
    fp32 = step_autocast(TrainConfig(**TINY), torch.device("cpu"))
    assert isinstance(fp32, contextlib.nullcontext)


def test_native_bf16_reads_the_cpu_flags(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    monkeypatch.setattr(train_module, "Path", lambda _: cpuinfo)
    cpuinfo.write_text("flags\t\t: fpu sse avx2 avx512f\n")
    assert not native_bf16("cpu")
    cpuinfo.write_text("flags\t\t: fpu avx512f avx512_bf16\n")
    assert native_bf16("cpu")
    cpuinfo.write_text("flags\t\t: fpu amx_bf16 amx_tile\n")
    assert native_bf16("cpu")
    cpuinfo.unlink()
    assert not native_bf16("cpu")  # no /proc: cannot tell, so no promise
    assert not native_bf16("mps")


def test_the_command_line_trains_in_bf16_and_says_where_it_is_emulated(capsys, monkeypatch):
    argv = ["train", "--dataset", "digits", "--model", "dense", "--latent", "4", "--epochs", "1"]
    argv += ["--device", "cpu", "--precision", "bf16", "--json"]
    monkeypatch.setattr(train_module, "native_bf16", lambda device: False)
    assert main(argv) == 0
    out, err = capsys.readouterr()
    report = json.loads(out.strip().splitlines()[-1])
    assert "no bfloat16 arithmetic on this device" in err
    fp32 = TrainConfig(dataset="digits", model="dense", latent=4, epochs=1)
    assert report["config_hash"] == dataclasses.replace(fp32, precision="bf16").key()
    monkeypatch.setattr(train_module, "native_bf16", lambda device: True)
    assert main(argv) == 0  # the run is cached now: no note where bf16 is native
    assert "no bfloat16" not in capsys.readouterr().err


def test_native_bf16_on_cuda_asks_the_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert not native_bf16("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert native_bf16("cuda:0")
