"""aecore.evaluate: one forward pass gives the same metrics as two; the baselines' metrics are
cached (in memory and as JSON files) per dataset contents, corruption, level, image count and PCA
size, and a damaged or foreign cache file is ignored and rewritten."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from aecore import evaluate as ev
from aecore import losses
from aecore.baselines import fit_pca
from aecore.config import TrainConfig
from aecore.data import load_dataset, to_float
from aecore.losses import batch_terms
from aecore.models import Autoencoder
from aecore.train import init_model


@pytest.fixture(autouse=True)
def fresh_caches():
    """Each test starts as a new process would: nothing of the baselines in memory."""
    new_process()
    yield
    new_process()


def new_process() -> None:
    """Forget what this process computed, as a restart would; the files stay."""
    ev._baseline_cache.clear()
    ev._pca_cache.clear()
    ev._on_disk.clear()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture
def count_filters(monkeypatch):
    """How many times the median filters ran (each baseline computation runs two)."""
    calls = []
    real = ev.median_filter

    def counting(images, size):
        calls.append(size)
        return real(images, size)

    monkeypatch.setattr(ev, "median_filter", counting)
    return calls


def model_for(digits, **kw) -> Autoencoder:
    cfg = TrainConfig(**({"dataset": "digits", "model": "dense", "latent": 8} | kw))
    return init_model(cfg, digits.shape, torch.device("cpu"))


def two_pass_reference(model, ds, corruption, level, loss, limit=None, batch=1000):
    """What evaluate() computed before: a loss pass, then a separate reconstruction pass."""
    clean, noisy = ev.corrupted_test_set(ds, corruption, level, "cpu", limit)
    model.eval()
    noise = torch.Generator().manual_seed(ev.TEST_SEED + 1)
    sums = {}
    for x, target in zip(noisy.split(batch), clean.split(batch), strict=True):
        for k, v in batch_terms(model, x, target, loss, noise).items():
            sums[k] = sums.get(k, 0.0) + float(v) * len(x)
    out = {f"test_{'loss' if k == 'loss' else k}": v / len(clean) for k, v in sums.items()}
    return out | ev._quality("", ev.reconstruct(model, noisy, batch), clean)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"loss": "bce"},
        {"model": "janet", "regularizer": "sparse", "reg_weight": 1e-3},
        {"regularizer": "contractive", "reg_weight": 1e-3},
        {"model": "unet"},
        {"model": "conv_same", "loss": "bce"},
        {"model": "vae_mlp", "latent": 2, "loss": "bce"},
    ],
    ids=lambda kw: "-".join(str(v) for v in kw.values()) or "dense",
)
def test_one_pass_gives_the_metrics_of_two(digits, kw):
    model = model_for(digits, **kw)
    got = ev.evaluate(model, digits, "gaussian", 0.3, kw.get("loss", "mse"), batch=100)
    want = two_pass_reference(model, digits, "gaussian", 0.3, kw.get("loss", "mse"), batch=100)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    # The caller's model is left as it was: not converted, no generator set.
    assert not hasattr(model, "generator")
    assert all(p.is_contiguous() for p in model.parameters())


def test_conv_models_test_in_training_sized_batches_on_a_cpu(digits):
    conv, mlp = model_for(digits, model="conv_same"), model_for(digits)
    vae = model_for(digits, model="vae_conv", loss="bce")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert losses.inference_batch(conv, cpu) == losses.CPU_CONV_BATCH < losses.BATCH
    assert losses.inference_batch(mlp, cpu) == losses.inference_batch(conv, cuda) == losses.BATCH
    assert losses.inference_batch(vae, cpu) == losses.BATCH  # two passes a batch: large ones pay
    # The batch size changes how fast, not what: the same metrics as in batches of 1,000.
    chosen = ev.evaluate(conv, digits, "gaussian", 0.3, "mse")
    large = ev.evaluate(conv, digits, "gaussian", 0.3, "mse", batch=losses.BATCH)
    assert len(digits.test_images) > losses.CPU_CONV_BATCH  # so the two did batch differently
    for key, value in large.items():
        assert chosen[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


def test_pca_for_gives_fit_pcas_components_for_every_k(digits):
    full = to_float(digits.train_images)
    for k in (1, 7, 64):
        basis, direct = ev.pca_for(digits, k), fit_pca(full, k)
        assert torch.equal(basis.components, direct.components)
        assert torch.equal(basis.mean, direct.mean)
    with pytest.raises(ValueError):
        ev.pca_for(digits, 65)


def test_baselines_come_from_the_disk_cache_in_a_new_process(digits, tmp_path, count_filters):
    first = ev.baseline_metrics(digits, "salt_pepper", 0.2, 8, "cpu", 300, cache_dir=tmp_path)
    assert len(count_filters) == 2
    names = sorted(p.name for p in tmp_path.glob("*.json"))
    assert len(names) == 2 and names[0].startswith("digits-filters-")  # filters, pca8
    ev._baseline_cache.clear()  # a new process
    again = ev.baseline_metrics(digits, "salt_pepper", 0.2, 8, "cpu", 300, cache_dir=tmp_path)
    assert again == first and len(count_filters) == 2  # nothing filtered again
    uncached = ev.baseline_metrics(digits, "salt_pepper", 0.2, 8, "cpu", 300)
    assert uncached == first  # in memory now; and equal to what a fresh computation gives
    ev._baseline_cache.clear()
    assert ev.baseline_metrics(digits, "salt_pepper", 0.2, 8, "cpu", 300) == first


def test_other_level_corruption_count_or_k_never_reuse_a_baseline(digits, tmp_path, count_filters):
    base = {"corruption": "salt_pepper", "level": 0.2, "k": 8, "limit": 300}
    seen = {}
    variants = [
        base,
        base | {"level": 0.25},
        base | {"corruption": "masking"},
        base | {"limit": 200},
        base | {"k": 4},
    ]
    for v in variants:
        ev._baseline_cache.clear()
        seen[json.dumps(v)] = ev.baseline_metrics(
            digits, v["corruption"], v["level"], v["k"], "cpu", v["limit"], cache_dir=tmp_path
        )
    # Filters ran for every variant but the last (the same filters, another PCA size).
    assert len(count_filters) == 2 * 4
    values = [m["test_psnr_noisy"] for m in list(seen.values())[:4]]
    assert len(set(values)) == 4
    pcas = {m["test_psnr_pca"] for m in seen.values()}
    assert len(pcas) == 5
    assert len(list(tmp_path.glob("*.json"))) == 4 + 5  # 4 filter files, 5 PCA files


def test_another_dataset_with_the_same_name_never_reuses_a_baseline(
    digits, tmp_path, count_filters
):
    a = ev.baseline_metrics(digits, "gaussian", 0.3, 0, "cpu", 200, cache_dir=tmp_path)
    other = dataclasses.replace(digits, test_images=digits.test_images.flip(0).contiguous())
    ev._baseline_cache.clear()
    b = ev.baseline_metrics(other, "gaussian", 0.3, 0, "cpu", 200, cache_dir=tmp_path)
    assert len(count_filters) == 4 and a != b
    assert ev.dataset_fingerprint(other) != ev.dataset_fingerprint(digits)
    assert len(list(tmp_path.glob("*.json"))) == 2


def damage(path: Path, how: str) -> None:
    data = json.loads(path.read_text())
    metric = next(iter(data["metrics"]))
    if how == "truncated":
        path.write_text(path.read_text()[: len(path.read_text()) // 2])
    elif how == "random bytes":
        path.write_bytes(bytes(range(256)) * 4)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "other key":  # e.g. another level's file renamed to this name
        data["key"]["level"] = 0.5
        path.write_text(json.dumps(data))
    elif how == "missing metric":
        del data["metrics"][metric]
        path.write_text(json.dumps(data))
    elif how == "not a number":
        data["metrics"][metric] = "12.5"
        path.write_text(json.dumps(data))
    elif how == "nan":
        path.write_text(json.dumps(data).replace(str(data["metrics"][metric]), "NaN", 1))
    elif how == "a list":
        path.write_text("[1, 2, 3]")
    else:
        raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "truncated",
        "random bytes",
        "empty",
        "other key",
        "missing metric",
        "not a number",
        "nan",
        "a list",
    ],
)
def test_a_damaged_cache_file_is_ignored_and_rebuilt(digits, tmp_path, count_filters, how, caplog):
    good = ev.baseline_metrics(digits, "gaussian", 0.3, 0, "cpu", 200, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.json")
    damage(path, how)
    ev._baseline_cache.clear()
    got = ev.baseline_metrics(digits, "gaussian", 0.3, 0, "cpu", 200, cache_dir=tmp_path)
    assert got == good and len(count_filters) == 4  # computed again, same numbers
    assert "ignoring baseline cache file" in caplog.text
    ev._baseline_cache.clear()
    caplog.clear()
    assert ev.baseline_metrics(digits, "gaussian", 0.3, 0, "cpu", 200, cache_dir=tmp_path) == good
    assert len(count_filters) == 4 and not caplog.text  # the rewritten file is good
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_an_unwritable_cache_folder_only_logs(digits, tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    got = ev.baseline_metrics(digits, "gaussian", 0.3, 0, "cpu", 100, cache_dir=blocker / "sub")
    assert set(got) >= {"test_psnr_noisy", "test_ssim_median5"}
    assert "could not write baseline cache file" in caplog.text


def test_the_cache_folder_is_bounded(digits, tmp_path, monkeypatch):
    monkeypatch.setattr(ev, "BASELINE_CACHE_MAX_FILES", 3)
    for level in (0.1, 0.2, 0.3, 0.4, 0.5):
        ev.baseline_metrics(digits, "gaussian", level, 0, "cpu", 50, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 3


def test_evaluate_with_a_cache_dir_gives_the_same_metrics(digits, tmp_path):
    model = model_for(digits)
    plain = ev.evaluate(model, digits, "masking", 0.4, "mse", limit=200)
    ev._baseline_cache.clear()
    cached = ev.evaluate(model, digits, "masking", 0.4, "mse", limit=200, cache_dir=tmp_path)
    ev._baseline_cache.clear()
    from_disk = ev.evaluate(model, digits, "masking", 0.4, "mse", limit=200, cache_dir=tmp_path)
    assert plain == cached == from_disk
    assert {"test_psnr", "test_psnr_noisy", "test_psnr_median3", "test_psnr_pca"} <= set(plain)


def test_write_cache_false_reads_but_writes_nothing(digits, tmp_path, count_filters):
    model = model_for(digits)
    ev.evaluate(model, digits, "gaussian", 0.3, "mse", limit=100, cache_dir=tmp_path)
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 2 and len(count_filters) == 2  # filters and pca8, computed once
    ev._baseline_cache.clear()
    ev.evaluate(
        model, digits, "gaussian", 0.3, "mse", limit=100, cache_dir=tmp_path, write_cache=False
    )
    assert len(count_filters) == 2  # read from the files
    ev.evaluate(
        model, digits, "gaussian", 0.6, "mse", limit=100, cache_dir=tmp_path, write_cache=False
    )
    assert sorted(tmp_path.glob("*.json")) == files  # computed, not written
    ev.baseline_metrics(digits, "gaussian", 0.6, 8, "cpu", 100, cache_dir=tmp_path)
    assert len(count_filters) == 4 and len(list(tmp_path.glob("*.json"))) == 4  # now written


def test_a_saved_run_leaves_its_baselines_for_the_next_run(tmp_path, count_filters, monkeypatch):
    from aecore.runs import BASELINES_SUBDIR, train_and_save

    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path))  # the cache lives in the runs folder

    cfg = TrainConfig(dataset="digits", model="dense", latent=4, corruption="masking", epochs=1)
    assert train_and_save(cfg, device="cpu", out_dir=tmp_path) is not None
    saved = sorted(p.name for p in (tmp_path / BASELINES_SUBDIR).glob("*.json"))
    assert len(saved) == 2 and len(count_filters) == 2
    ev._baseline_cache.clear()  # a new process, another run at the same corruption and level
    other = dataclasses.replace(cfg, latent=4, seed=1)
    ckpt = train_and_save(other, device="cpu", out_dir=tmp_path)
    assert len(count_filters) == 2  # the baselines came from the files
    assert "test_psnr_median5" in ckpt.metrics and "test_psnr_pca" in ckpt.metrics


@pytest.fixture
def count_fits(monkeypatch):
    calls = []
    real = ev.fit_pca

    def counting(images, k):
        calls.append(k)
        return real(images, k)

    monkeypatch.setattr(ev, "fit_pca", counting)
    return calls


def test_the_pca_basis_is_fitted_once_and_kept_on_disk(digits, tmp_path, count_fits):
    first = ev.pca_for(digits, 5, cache_dir=tmp_path)
    assert count_fits == [64] and len(list(tmp_path.glob("digits-pca-*.pt"))) == 1
    assert torch.equal(ev.pca_for(digits, 9).components[:5], first.components)  # memory
    new_process()
    again = ev.pca_for(digits, 5, cache_dir=tmp_path)
    assert count_fits == [64]  # loaded, not fitted
    assert torch.equal(again.components, first.components) and torch.equal(again.mean, first.mean)
    assert torch.equal(again.components, fit_pca(to_float(digits.train_images), 5).components)


def test_pca_for_with_write_false_writes_nothing(digits, tmp_path, count_fits):
    ev.pca_for(digits, 3, cache_dir=tmp_path, write=False)
    assert not list(tmp_path.iterdir())
    ev.baseline_metrics(digits, "gaussian", 0.3, 3, "cpu", 50, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("*.pt"))) == 1 and count_fits == [64]  # the fit, now kept


def test_another_datasets_basis_is_never_used(digits, tmp_path, count_fits):
    ev.pca_for(digits, 4, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.pt")
    other = dataclasses.replace(digits, train_images=digits.train_images.flip(0).contiguous()[:900])
    new_process()
    ev.pca_for(other, 4, cache_dir=tmp_path)
    assert count_fits == [64, 64] and len(list(tmp_path.glob("*.pt"))) == 2
    # Its file renamed to the first one's name: refused (another key), fitted again.
    new_process()
    (mine,) = set(tmp_path.glob("*.pt")) - {path}
    mine.replace(path)
    ev.pca_for(digits, 4, cache_dir=tmp_path)
    assert count_fits == [64, 64, 64]


def flip_a_weight_byte(path: Path) -> None:
    payload = torch.load(path, weights_only=True)
    payload["components"][3, 7] += 1e-3  # as a flipped bit would, with the old SHA-256 kept
    torch.save(payload, path)


class Evil:
    def __reduce__(self):
        return (print, ("this ran",))


@pytest.mark.parametrize(
    "how", ["truncated", "random bytes", "empty", "a weight changed", "a pickle with code"]
)
def test_a_damaged_pca_file_is_ignored_and_rewritten(digits, tmp_path, count_fits, how, caplog):
    good = ev.pca_for(digits, 6, cache_dir=tmp_path)
    (path,) = tmp_path.glob("*.pt")
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif how == "random bytes":
        path.write_bytes(bytes(range(256)) * 40)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "a weight changed":
        flip_a_weight_byte(path)
    else:
        torch.save({"key": Evil(), "mean": torch.zeros(64)}, path)
    new_process()
    got = ev.pca_for(digits, 6, cache_dir=tmp_path)
    assert count_fits == [64, 64] and torch.equal(got.components, good.components)
    assert "ignoring PCA cache file" in caplog.text
    new_process()
    ev.pca_for(digits, 6, cache_dir=tmp_path)
    assert count_fits == [64, 64]  # the rewritten file loads
