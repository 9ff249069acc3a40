"""aecore/classifier.py: the small CNN, its files, its accuracy table, the background trainer; and
the bundled classifiers (aecore/pretrain.py) are there, small, and reproduce their accuracy."""

import dataclasses
import json
import time

import pytest
import torch

from aecore import classifier as C
from aecore import pretrain
from aecore.config import TrainConfig
from aecore.data import DATASETS, load_dataset, to_float
from aecore.jobs import JobManager
from aecore.runs import train_and_save

DIGITS = C.default_spec("digits")
QUICK = dataclasses.replace(DIGITS, epochs=3)  # a second on a CPU; well above chance


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def quick(digits, tmp_path_factory):
    return C.build_classifier(digits, QUICK, out_dir=tmp_path_factory.mktemp("clf"))


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 8, 8), (3, 32, 32)])
def test_small_cnn_gives_logits_and_stays_small(shape):
    model = C.SmallCNN(shape[0], shape[1], 10)
    assert model(torch.rand(5, *shape)).shape == (5, 10)
    assert sum(p.numel() for p in model.parameters()) < 100_000  # float16 file < 200 KB


def test_specs_name_their_files_and_differ_by_every_field():
    assert C.default_spec("mnist") == C.ClassifierSpec("mnist")
    assert DIGITS.file_name == f"classifier-digits-{DIGITS.key()}.pt"
    keys = {DIGITS.key()} | {
        dataclasses.replace(DIGITS, **{f: v}).key()
        for f, v in [("epochs", 7), ("limit", 10), ("seed", 1), ("batch_size", 5), ("lr", 0.1)]
    }
    assert len(keys) == 6


def test_built_classifier_learns_saves_half_and_loads_back(quick, digits, tmp_path):
    assert quick.info["test_accuracy"] > 0.5  # ten classes: chance is 0.1
    path = C.save_classifier(tmp_path / QUICK.file_name, quick)
    raw = torch.load(path, weights_only=True)
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values())
    back = C.load_classifier(path)
    assert back.spec == QUICK and back.info["classes"] == list(digits.classes)
    x = to_float(digits.test_images)
    assert C.accuracy(back.model, x, digits.test_labels) == pytest.approx(
        quick.info["test_accuracy"]
    )


def test_a_file_of_another_spec_or_format_is_refused(quick, tmp_path):
    path = C.save_classifier(tmp_path / "c.pt", quick)
    payload = torch.load(path, weights_only=True)
    payload["spec"]["epochs"] = 99  # the key no longer matches
    torch.save(payload, path)
    with pytest.raises(ValueError, match="another version"):
        C.load_classifier(path)
    torch.save({"format": "something"}, path)
    with pytest.raises(ValueError, match="not an aecore classifier"):
        C.load_classifier(path)


def test_get_classifier_trains_once_then_loads(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path))
    first = C.get_classifier(digits, QUICK)
    assert (tmp_path / "classifiers" / QUICK.file_name).is_file()
    monkeypatch.setattr(C, "build_classifier", lambda *a, **k: pytest.fail("trained again"))
    again = C.get_classifier(digits, QUICK)
    assert again.info["test_accuracy"] == first.info["test_accuracy"]


def test_accuracies_cover_every_input_and_a_good_denoiser_helps(quick, digits, tmp_path):
    cfg = TrainConfig(
        dataset="digits", corruption="salt_pepper", level=0.3, model="dense", latent=32, epochs=30
    )
    ae = train_and_save(cfg, device="cpu", out_dir=tmp_path).model
    acc = C.accuracies(quick.model, digits, "salt_pepper", 0.3, {"A: dense": ae})
    assert list(acc) == ["clean", "corrupted", "median 3x3", "A: dense"]
    assert all(0 <= v <= 1 for v in acc.values())
    assert acc["corrupted"] < acc["clean"]
    only = C.accuracies(quick.model, digits, "none", 0.0, {}, limit=50)
    assert list(only) == ["clean"]


def test_the_job_runner_trains_a_classifier_in_the_background(digits, tmp_path, monkeypatch):
    """Classifiers share the training runs' runner: one queue, the same limits and cancel."""
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path))
    manager = JobManager()
    try:
        assert manager.result(QUICK) is None
        job = manager.submit(QUICK, session="s")
        assert manager.submit(QUICK, session="t") is job  # already training: no second run
        snap = job.wait(120)
        assert snap.status == "done" and snap.fraction == 1.0
        assert snap.checkpoint.info["test_accuracy"] > 0.5
        assert manager.result(QUICK) is snap.checkpoint
        assert C.find_classifier(QUICK).parent == tmp_path / C.FOLDER  # saved for the next start

        failed = manager.submit(C.ClassifierSpec("no_such_dataset"), session="s").wait(60)
        assert failed.status == "failed" and "no_such_dataset" in failed.error
    finally:
        manager.shutdown()


def test_a_cancelled_classifier_saves_nothing(digits, tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path))
    slow = C.ClassifierSpec("digits", epochs=200)
    manager = JobManager()
    try:
        job = manager.submit(slow, session="s")
        while job.snapshot().fraction == 0:
            time.sleep(0.01)
        assert manager.cancel(job.key, "s")
        assert job.wait(60).status == "cancelled"
        assert C.find_classifier(slow) is None
    finally:
        manager.shutdown()


def test_pretrain_classifiers_writes_files_and_records(tmp_path, monkeypatch):
    monkeypatch.setitem(
        DATASETS["digits"].meta, "classifier", {"epochs": QUICK.epochs, "lr": QUICK.lr}
    )
    (tmp_path / QUICK.file_name.replace(QUICK.key(), "0" * 16)).write_bytes(b"stale")
    old = {"dataset": "digits", "file": QUICK.file_name.replace(QUICK.key(), "0" * 16)}
    (tmp_path / "manifest.json").write_text(json.dumps({"classifiers": [old]}))
    (record,) = pretrain.pretrain_classifiers(["digits"], folder=tmp_path)
    assert record["file"] == QUICK.file_name and record["test_accuracy"] > 0.5
    assert pretrain.check_classifier(record, tmp_path) == "ok"
    assert pretrain.classifier_manifest(tmp_path) == [record]
    assert not (tmp_path / old["file"]).exists()  # the old spec's file went


@pytest.mark.parametrize("name", pretrain.BUNDLED_CLASSIFIERS)
def test_bundled_classifiers_are_small_and_reproduce_their_accuracy(name, real_data):
    (record,) = [r for r in pretrain.classifier_manifest() if r["dataset"] == name]
    assert pretrain.check_classifier(record) == "ok"
    assert record["bytes"] < 200_000 and record["spec"] == dataclasses.asdict(C.default_spec(name))
    clf = C.load_classifier(pretrain.CLASSIFIER_DIR / record["file"])
    if not real_data:
        return  # the recorded accuracy is about the real test set
    ds = load_dataset(name)
    got = C.accuracy(clf.model, to_float(ds.test_images), ds.test_labels)
    assert got == pytest.approx(record["test_accuracy"], abs=1e-4)
