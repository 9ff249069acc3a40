"""Every entry of every registry: it builds, has the right shapes, and its facts are present and
true. A new dataset, corruption, model or regulariser is covered here with no new test.

The datasets load from synthetic files in torchvision's own layout (tests/datafiles.py), written
for whatever folder an entry's meta names.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aecore.config import TrainConfig
from aecore.corruptions import CORRUPTIONS, check_level, corrupt, has_level
from aecore.data import DATASETS, DatasetUnavailable, available_offline, load_dataset
from aecore.losses import has_conv
from aecore.models import (
    MODELS,
    PENALTIES,
    build_model,
    count_params,
    has_weight,
    is_variational,
    needs_input_grad,
    summary,
)
from tests.datafiles import write_torchvision_layout

SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]
IMAGES = [(64, 1, 28, 28), (16, 3, 32, 32), (32, 1, 8, 8)]
DOWNLOADED = [e.name for e in DATASETS if e.meta["folder"] is not None]


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def config(name: str, shape: tuple[int, int, int], **kw) -> TrainConfig:
    """A TrainConfig of model `name` on the registered dataset whose images have `shape`."""
    dataset = next(e.name for e in DATASETS if tuple(e.meta["shape"]) == shape)
    latent = 4 if MODELS[name].meta["uses_latent"] else 0
    return TrainConfig(**({"dataset": dataset, "model": name, "latent": latent} | kw))


# --- datasets -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", DATASETS.names())
def test_dataset_loads_in_its_registered_shape(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_data_cache: None
) -> None:
    meta = DATASETS[name].meta
    root = tmp_path / "data"
    root.mkdir()
    written = None
    if meta["folder"] is not None:
        assert not available_offline(name, root)  # nothing there yet
        written = write_torchvision_layout(root, meta["folder"])
        for attr, value in written.attrs.items():
            monkeypatch.setattr(written.cls, attr, value)
    assert available_offline(name, root)

    ds = load_dataset(name, root)

    assert ds.name == name and ds.shape == tuple(meta["shape"])
    for images, labels in ((ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels)):
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert images.shape[1:] == tuple(meta["shape"]) and labels.shape == (len(images),)
        assert int(labels.min()) >= 0 and int(labels.max()) < len(ds.classes)
    if written is None:  # bundled: the real data, so the sizes the cost estimate uses are exact
        assert (len(ds.train_images), len(ds.test_images)) == (
            meta["train_size"],
            meta["test_size"],
        )
    else:
        assert torch.equal(ds.train_images, torch.from_numpy(written.train_images))
        assert ds.test_labels.tolist() == written.test_labels.tolist()
        assert meta["train_size"] > 0 and meta["test_size"] > 0


@pytest.mark.parametrize("name", DOWNLOADED)
def test_offline_missing_dataset_says_what_to_do(name: str, use_data_dir, tmp_path: Path) -> None:
    from aecore import data

    label = DATASETS[name].label.split(" (")[0]  # "CIFAR-10 (colour)" -> "CIFAR-10"
    root = use_data_dir(tmp_path / "empty")
    assert not available_offline(name)

    with pytest.raises(DatasetUnavailable) as err:
        load_dataset(name)

    message, detail = str(err.value), err.value.detail
    # Plain words for a page; the folder and the settings go to the log and the CLI.
    assert label in message and "Digits" in message
    assert str(root) not in message and "AECORE" not in message
    assert label in detail and str(root) in detail
    assert "AECORE_OFFLINE" in detail and "AECORE_DATA_DIR" in detail
    assert not data._cache  # a failure is not cached: the next call tries again
    assert not any(root.iterdir())  # offline means nothing was downloaded


# --- corruptions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CORRUPTIONS.names())
def test_corruption_facts_are_consistent(name: str) -> None:
    meta = CORRUPTIONS[name].meta
    assert has_level(name) == (meta["max"] > meta["min"])  # has_level: the one fact pages read
    assert meta["min"] <= meta["default"] <= meta["max"] and meta["step"] > 0
    check_level(name, meta["default"])
    if meta["integer"]:
        assert all(float(meta[k]) == int(meta[k]) for k in ("min", "max", "default", "step"))
    if not has_level(name):  # it changes nothing, so any level leaves the images as they are
        x = torch.rand(2, 1, 8, 8)
        assert torch.equal(corrupt(name, x, meta["default"], gen()), x)
        assert TrainConfig(corruption=name, level=0.7).level == 0.0


@pytest.mark.parametrize("name", CORRUPTIONS.names())
@pytest.mark.parametrize("shape", IMAGES)
def test_shape_range_and_purity(name: str, shape: tuple[int, ...]) -> None:
    x = torch.rand(shape)
    before = x.clone()
    level = CORRUPTIONS[name].meta["default"]
    y = corrupt(name, x, level, gen())
    assert y.shape == x.shape and y.dtype == x.dtype
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.equal(x, before), "a corruption must not modify its input"


@pytest.mark.parametrize("name", CORRUPTIONS.names())
def test_same_seed_same_output(name: str) -> None:
    x = torch.rand(8, 3, 32, 32)
    level = CORRUPTIONS[name].meta["default"]
    assert torch.equal(corrupt(name, x, level, gen(3)), corrupt(name, x, level, gen(3)))
    # `random`: whether it draws from the generator (blur is deterministic by nature).
    differs = not torch.equal(corrupt(name, x, level, gen(3)), corrupt(name, x, level, gen(4)))
    assert differs == CORRUPTIONS[name].meta["random"]


@pytest.mark.parametrize("name", [n for n in CORRUPTIONS.names() if has_level(n)])
def test_out_of_range_level_names_the_range(name: str) -> None:
    meta = CORRUPTIONS[name].meta
    for bad in (meta["max"] + 1, meta["min"] - 1, float("nan")):
        with pytest.raises(ValueError, match=str(meta["max"])):
            check_level(name, bad)


# --- models ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", SHAPES)
def test_encode_decode_shapes_and_output_range(name: str, shape) -> None:
    model = build_model(config(name, shape, width=32), shape)
    x = torch.rand(5, *shape)
    z = model.encode(x)
    assert z.shape[0] == 5
    if MODELS[name].meta["uses_latent"]:
        assert z.shape == (5, 4)
    x_hat = model.reconstruct(x)
    assert x_hat.shape == x.shape
    assert float(x_hat.min()) >= 0.0 and float(x_hat.max()) <= 1.0


@pytest.mark.parametrize("name", MODELS.names())
def test_model_facts_are_consistent(name: str) -> None:
    meta = MODELS[name].meta
    model = build_model(config(name, (1, 8, 8)), (1, 8, 8))
    assert meta["family"] in ("mlp", "conv", "vae")
    assert is_variational(name) == model.variational == (meta["family"] == "vae")
    assert meta["convolutional"] == has_conv(model)
    wider = build_model(config(name, (1, 8, 8), width=64), (1, 8, 8))
    assert (count_params(wider) != count_params(model)) == meta["uses_width"]
    k = meta["divisible_by"]
    if k > 1:
        with pytest.raises(ValueError, match=f"divisible by {k}"):
            build_model(config(name, (1, 8, 8)), (1, 4 * k + 1, 4 * k + 1))


@pytest.mark.parametrize("entry", [e for e in MODELS if "params" in e.meta], ids=lambda e: e.name)
def test_seed_parameter_counts(entry) -> None:
    for (shape, latent), expected in entry.meta["params"].items():
        cfg = config(entry.name, shape, latent=latent)
        assert count_params(build_model(cfg, shape)) == expected


@pytest.mark.parametrize("name", MODELS.names())
def test_summary_rows_add_up_and_end_at_the_input_shape(name: str) -> None:
    model = build_model(config(name, (1, 28, 28), width=32), (1, 28, 28))
    rows = summary(model)
    assert sum(r.params for r in rows) == count_params(model)
    assert rows[-1].output_shape == (None, 1, 28, 28)
    assert rows[-1].kind in ("Sigmoid", "LeakyReLU")


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_loss_terms_are_finite_and_differentiable(name: str, loss: str) -> None:
    torch.manual_seed(0)
    model = build_model(config(name, (1, 28, 28), width=32), (1, 28, 28))
    clean = torch.rand(4, 1, 28, 28)
    terms = model.loss_terms(clean, clean, loss, gen())
    assert torch.isfinite(terms["loss"])
    terms["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    # `variational` models, and only they, return the VAE's extra term.
    extra = {"kl"} if is_variational(name) else set()
    assert set(terms) == {"loss", "recon"} | extra
    if is_variational(name):
        assert float(terms["kl"].detach()) >= 0
        assert model.sample(3, gen()).shape == (3, 1, 28, 28)


# --- regularisers ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", PENALTIES.names())
def test_regularizer_facts_are_consistent(name: str) -> None:
    cfg = TrainConfig(dataset="digits", model="dense", latent=6, regularizer=name, reg_weight=0.5)
    model = build_model(cfg, (1, 8, 8))
    assert model.regularizer == name and model.reg_weight == cfg.reg_weight  # set at build
    assert cfg.reg_weight == (0.5 if has_weight(name) else 0.0)  # TrainConfig drops a dead weight
    x = torch.rand(3, 1, 8, 8)
    terms = model.loss_terms(x, x, "mse", gen(1))
    assert ("reg" in terms) == has_weight(name)
    if has_weight(name):
        assert float(terms["reg"].detach()) > 0
        assert torch.equal(terms["reg"], model.loss_terms(x, x, "mse", gen(1))["reg"])
    with torch.no_grad():  # evaluation without autograd works unless the penalty needs it
        if needs_input_grad(name):
            with pytest.raises(RuntimeError):
                model.loss_terms(x, x, "mse", gen(1))
        else:
            model.loss_terms(x, x, "mse", gen(1))
    vae = next(e.name for e in MODELS if e.meta["variational"])
    on_vae = dict(dataset="digits", model=vae, latent=2, regularizer=name, reg_weight=0.1)
    if has_weight(name):  # a VAE's KL term is its only regulariser
        with pytest.raises(ValueError, match="KL"):
            TrainConfig(**on_vae)
    else:
        assert TrainConfig(**on_vae).regularizer == name
