"""app_pages/compare.py: saved runs side by side on the same corrupted inputs; the code-size sweep
against PCA; and the runs' outputs as a classifier's input."""

import json
import shutil

import pytest

import app_pages._classify
from aecore.data import DATASETS
from tests.app.conftest import page, rerun_until, texts, use_runs_dir


@pytest.fixture
def own_runs(trained_dir, tmp_path, monkeypatch):
    """A copy of the trained runs: what a test trains here stays out of the shared folder."""
    folder = tmp_path / "runs"
    shutil.copytree(trained_dir, folder)
    use_runs_dir(folder, monkeypatch)
    return folder


def test_without_runs_it_says_so(empty_runs):
    at = page("compare").run()
    assert not at.exception
    assert "No trained runs yet" in texts(at.info)


def test_two_runs_get_one_grid_one_table_and_bars(trained_runs):
    at = page("compare").run()
    assert not at.exception
    assert at.segmented_control(key="cmp_view").value == "Side by side"
    assert len(at.multiselect(key="cmp_runs_digits").value) == 2
    assert len(at.dataframe) == 1
    assert list(at.dataframe[0].value.index) == ["A", "B"]
    assert len(at.get("plotly_chart")) == 2


def test_other_inputs_rerun(trained_runs):
    at = page("compare").run()
    at.selectbox(key="cmp_corruption_digits").select("salt_pepper").run()
    assert not at.exception
    assert len(at.dataframe) == 1


def sweep_table(at):
    (table,) = [d.value for d in at.dataframe if "PCA MSE" in d.value.columns]
    return table


def test_the_sweep_shows_pca_alone_then_trains_the_missing_sizes(own_runs, monkeypatch):
    monkeypatch.setitem(DATASETS["digits"].meta, "sweep_epochs", 2)  # seconds, not minutes
    at = page("compare").run()
    at.segmented_control(key="cmp_view").set_value("Code size vs PCA").run()
    assert not at.exception
    assert "No autoencoder of the sweep is trained yet" in texts(at.markdown)
    assert list(sweep_table(at).index) == [1, 2, 8, 32]
    assert set(sweep_table(at)["dense AE MSE"]) == {"not trained"}
    assert set(sweep_table(at)["dead units"]) == {"-"}
    assert {c.key for c in at.get("plotly_chart")} >= {"sweep_chart", "sweep_grid"}
    assert "loses to PCA" in texts(at.markdown)  # the honest explanation is always there

    at.button(key="sweep_train_digits").click().run()
    assert not at.exception
    rerun_until(at, lambda at: "not trained" not in set(sweep_table(at)["dense AE MSE"]))
    assert "The shallow AE" in texts(at.markdown)
    assert not [b for b in at.button if b.key == "sweep_train_digits"]
    for k, dead in sweep_table(at)["dead units"].items():  # "d of k", counted per run
        count, of = dead.split(" of ")
        assert int(of) == k and 0 <= int(count) <= k


def test_the_sweep_on_mnist_uses_the_bundled_runs(tmp_path, monkeypatch, real_data):
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path))  # nothing trained; the bundle is seen
    at = page("compare").run()
    labels = at.multiselect(key=f"cmp_runs_{at.selectbox(key='cmp_dataset').value}").options
    assert any(label.endswith("(bundled)") for label in labels)  # the manifest's names
    at.selectbox(key="cmp_dataset").select("mnist").run()
    at.segmented_control(key="cmp_view").set_value("Code size vs PCA").run()
    assert not at.exception
    assert not [b for b in at.button if b.key == "sweep_train_mnist"]  # nothing to train
    assert "not trained" not in set(sweep_table(at)["dense AE MSE"])
    if real_data:  # experiments/RESULTS.md, section 2
        verdict = "The shallow AE loses to PCA at k = 1, 2, 8 and beats PCA at k = 32"
        assert verdict in texts(at.markdown)
        # The bundled ReLU codes: units that are 0 for every test image (RESULTS.md, section 2)
        assert list(sweep_table(at)["dead units"]) == ["0 of 1", "1 of 2", "4 of 8", "7 of 32"]


def test_the_classifier_view_trains_a_digits_classifier_at_once(own_runs):
    at = page("compare").run()
    at.segmented_control(key="cmp_view").set_value("As classifier input").run()
    at.selectbox(key="cmp_corruption_digits").select("gaussian").run()
    assert not at.exception
    (table,) = [d.value for d in at.dataframe if "accuracy (%)" in d.value.columns]
    runs = sorted(table.index[4:])
    assert list(table.index[:4]) == ["clean", "corrupted", "median 3x3", "best classical"]
    assert runs == ["A: dense", "B: vae_mlp"] or runs == ["A: vae_mlp", "B: dense"]
    assert table["accuracy (%)"]["clean"] > 50  # ten classes: chance is 10%
    assert [c.key for c in at.get("plotly_chart")] == ["clf_bars"]
    assert "trained on *clean*" in texts(at.caption)

    at.selectbox(key="cmp_corruption_digits").select("none").run()  # no corruption: no such rows
    (table,) = [d.value for d in at.dataframe if "accuracy (%)" in d.value.columns]
    assert list(table.index[:1]) == ["clean"] and len(table) == 3


def test_a_big_dataset_trains_its_classifier_in_the_background(own_runs, monkeypatch):
    monkeypatch.setattr(app_pages._classify, "QUICK_TRAIN_IMAGES", 0)  # digits counts as big
    monkeypatch.setitem(DATASETS["digits"].meta, "classifier", {"epochs": 2})
    at = page("compare").run()
    at.segmented_control(key="cmp_view").set_value("As classifier input").run()
    assert "No classifier for Digits 8x8 (bundled, offline) yet" in texts(at.info)  # its label
    at.button(key="clf_train_digits").click().run()
    assert not at.exception
    rerun_until(at, lambda at: any(c.key == "clf_bars" for c in at.get("plotly_chart")))


@pytest.mark.parametrize("view", ["Code size vs PCA", "As classifier input"])
def test_changing_the_dataset_keeps_the_view_working(trained_runs, view):
    at = page("compare").run()
    at.segmented_control(key="cmp_view").set_value(view).run()
    at.selectbox(key="cmp_dataset").select("digits").run()
    assert not at.exception
    assert at.segmented_control(key="cmp_view").value == view


def test_runs_are_named_in_full_and_datasets_in_words(trained_runs):
    at = page("compare").run()
    assert not at.exception
    assert at.selectbox(key="cmp_dataset").options == ["Digits 8x8 (bundled, offline)"]
    (runs,) = at.table  # static: long names wrap instead of being cut off
    assert set(runs.value["model"]) == {"Dense AE (shallow, undercomplete)", "VAE, MLP (784-400-N)"}
    assert set(runs.value["trained on"]) == {"Gaussian noise, sigma = 0.3", "no corruption"}
    (grid,) = [c for c in at.get("plotly_chart") if "cmp_grid" in c.proto.id]
    ticks = json.loads(grid.proto.spec)["layout"]["yaxis"]["ticktext"]
    names = {t.replace("<br>", " ")[3:] for t in ticks[2:]}  # after Original and Corrupted
    assert names == {"Dense AE (shallow, undercomplete)", "VAE, MLP (784-400-N)"}
