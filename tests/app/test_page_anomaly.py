"""app_pages/anomaly.py: histograms, threshold, confusion and ROC of a digits class-subset run."""

from pathlib import Path

import pytest

from aecore.anomaly import case_configs
from aecore.runs import train_and_save
from tests.app.conftest import TINY, page, rerun_until, texts, use_runs_dir
from tests.datafiles import write_idx_dataset

CASE = case_configs("digits")[0]  # the undercomplete preset on digits 0-4 (5 s on a CPU)
SLIDER = f"anom_threshold_{CASE.key()}"


@pytest.fixture(scope="module")
def anomaly_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("anomaly_runs")
    train_and_save(CASE.config, device="cpu", out_dir=folder)
    return folder


def charts(at) -> list:
    return at.get("plotly_chart")


def counts(at) -> dict[str, int]:
    """The confusion table's four counts."""
    table = at.dataframe[0].value
    normal, anomalous = table.index
    return {
        "tn": int(table.loc[normal, "passed"]),
        "fp": int(table.loc[normal, "flagged"]),
        "fn": int(table.loc[anomalous, "passed"]),
        "tp": int(table.loc[anomalous, "flagged"]),
    }


def test_a_trained_case_shows_histograms_confusion_and_roc(anomaly_dir, monkeypatch):
    use_runs_dir(anomaly_dir, monkeypatch)
    at = page("anomaly", TINY).run()  # the session's dataset is digits
    assert not at.exception
    assert at.selectbox(key="anom_dataset").value == "digits"
    assert not [b for b in at.button if b.label == "Train it"]
    # histogram, ROC, then the most and the least anomalous images
    assert len(charts(at)) == 4
    table = at.dataframe[0].value
    assert list(table.index) == ["normal", "anomalous"]
    assert "normal (classes 0-4) or anomalous (classes 5-9)" in texts(at.caption)
    before = counts(at)
    assert sum(before.values()) == 297  # every digits test image, once
    # the slider starts at the 95th percentile of the normal errors: about 5% false alarms
    assert before["fp"] / (before["fp"] + before["tn"]) == pytest.approx(0.05, abs=0.02)

    slider = at.slider(key=SLIDER)
    slider.set_value(slider.max).run()
    assert not at.exception
    after = counts(at)
    assert after["fp"] + after["tp"] < before["fp"] + before["tp"]  # fewer flagged
    assert after["tn"] + after["fp"] == before["tn"] + before["fp"]  # the same normal images
    assert "of the anomalies are flagged (detection rate, recall)" in texts(at.markdown)


def test_the_roc_title_holds_the_auc(anomaly_dir, monkeypatch):
    use_runs_dir(anomaly_dir, monkeypatch)
    at = page("anomaly", TINY).run()
    roc = next(c for c in charts(at) if "ROC curve" in c.proto.spec)
    assert "AUC = 0.8" in roc.proto.spec or "AUC = 0.9" in roc.proto.spec


def test_a_missing_run_offers_to_train_it(empty_runs):
    at = page("anomaly", TINY).run()
    assert not at.exception
    assert "This run is not trained yet" in texts(at.info)
    assert "classes 0,1,2,3,4 only" in texts(at.caption)
    assert not charts(at)
    at.button(key="anom_train").click().run()
    assert not at.exception
    rerun_until(at, lambda a: SLIDER in [s.key for s in a.slider], timeout=300)
    assert len(charts(at)) == 4
    assert not [b for b in at.button if b.label == "Train it"]
    assert sum(counts(at).values()) == 297
    assert at.radio(key="anom_case_digits").value == 0  # still the case that was picked


def test_open_on_train_carries_the_classes(empty_runs):
    at = page("anomaly", TINY).run()
    at.button(key="anom_open_train").click().run()
    assert not at.exception
    assert at.query_params["classes"] == "0,1,2,3,4"
    assert at.query_params["dataset"] == "digits" and at.query_params["corruption"] == "none"


def test_a_dataset_that_is_not_here_says_so(empty_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("AECORE_OFFLINE", "1")
    at = page("anomaly").run()
    assert at.selectbox(key="anom_dataset").value == "digits"  # the one that is here
    at.selectbox(key="anom_dataset").set_value("mnist").run()
    assert not at.exception
    assert "MNIST is not on this computer" in texts(at.error)
    assert not charts(at)


def test_a_missing_partner_dataset_says_so(empty_runs, tmp_path, monkeypatch, fresh_data_cache):
    """MNIST is here, Fashion-MNIST is not: the MNIST-against-Fashion case explains itself."""
    data = tmp_path / "only-mnist"
    write_idx_dataset(data, "MNIST", n_train=200, n_test=50)
    monkeypatch.setenv("AECORE_DATA_DIR", str(data))
    monkeypatch.setenv("AECORE_OFFLINE", "1")
    at = page("anomaly").run()
    at.selectbox(key="anom_dataset").set_value("mnist").run()
    titles = at.radio(key="anom_case_mnist").options
    fashion = next(t for t in titles if "Fashion-MNIST anomalous" in t)
    assert fashion.endswith("(Fashion-MNIST not downloaded)")
    at.radio(key="anom_case_mnist").set_value(titles.index(fashion)).run()
    assert not at.exception
    assert "takes its anomalies from Fashion-MNIST" in texts(at.info)
    assert "Fashion-MNIST is not on this computer" in texts(at.error)
    assert not charts(at)
