"""app_pages/train.py: configuration from widgets and URL, the live panel, a tiny run to the end."""

from __future__ import annotations

import dataclasses
import re
import threading
from functools import partial

import pytest

import aecore.train
import app_pages._ui
from aecore.history import EpochStats
from aecore.jobs import JobManager
from app_pages._config import REG_WEIGHTS, default_config
from tests.app.conftest import TINY, page, rerun_until, texts


def test_defaults_render_the_layer_table_and_a_train_button(empty_runs):
    at = page("train").run()
    assert not at.exception
    assert at.title[0].value == "Train an autoencoder"
    assert at.button(key="train").label == "Train"
    assert [m.label for m in at.metric] == ["Trainable parameters"]
    assert len(at.dataframe) == 1  # the layer table
    # The sidebar's configuration is mirrored into the URL.
    assert at.query_params["model"] == at.selectbox(key="cfg_model").value


def test_changing_the_model_reruns_and_updates_the_url(empty_runs):
    at = page("train").run()
    at.selectbox(key="cfg_model").select("conv_pool").run()
    assert not at.exception
    assert at.query_params["model"] == "conv_pool"
    assert at.query_params["latent"] == "0"  # a conv model has no code size...
    assert not [w for w in at.number_input if w.key == "cfg_latent"]  # ...and no widget for it


def test_a_link_with_settings_opens_them(empty_runs):
    at = page("train", TINY).run()
    assert not at.exception
    assert at.selectbox(key="cfg_dataset").value == "digits"
    assert at.number_input(key="cfg_latent").value == TINY.latent
    assert at.slider(key="cfg_level_gaussian").value == pytest.approx(TINY.level)


@pytest.mark.parametrize("bad", [{"latent": "abc"}, {"model": "nope"}])
def test_a_bad_link_warns_and_falls_back_to_the_defaults(empty_runs, bad):
    at = page("train")
    at.query_params.update(bad)
    at.run()
    assert not at.exception
    assert "showing the default" in texts(at.warning)
    (name,) = bad
    assert at.query_params[name] == str(getattr(default_config(), name))


@pytest.mark.parametrize(
    "link, key, nearest",
    [
        ({"epochs": "500"}, "cfg_epochs", 200),
        ({"batch_size": "65536"}, "cfg_batch_size", 4096),
        ({"latent": "-5"}, "cfg_latent", 1),
        ({"corruption": "gaussian", "level": "99"}, "cfg_level_gaussian", 2.0),
    ],
)
def test_a_link_out_of_range_warns_and_takes_the_nearest_allowed_value(
    empty_runs, link, key, nearest
):
    at = page("train")
    at.query_params.update(link)
    at.run()
    assert not at.exception
    assert "nearest allowed value" in texts(at.warning)
    widget = at.slider(key=key) if key.startswith("cfg_level") else at.number_input(key=key)
    assert widget.value == nearest
    # Everything else the link did not mention keeps the app's defaults.
    assert at.query_params["model"] == default_config().model


def test_a_tiny_run_trains_to_done_and_then_loads_cached(empty_runs):
    at = page("train", TINY).run()
    at.button(key="train").click().run()
    assert not at.exception
    rerun_until(at, lambda at: "Done" in texts(at.success))
    # Training and testing are timed apart: "Done: trained in 1 s and tested in 2 s on cpu." (on
    # the suite's device: AECORE_TEST_DEVICE)
    device = aecore.train.pick_device().type
    done = rf"trained in [\d.]+ s and tested in [\d.]+ s on {device}\."
    assert re.search(done, texts(at.success))
    assert "Test results" in [h.value for h in at.subheader]
    assert [m.label for m in at.metric][1] == "Autoencoder PSNR"
    assert len(at.dataframe) == 2  # layers, then the metrics table
    assert len(at.get("plotly_chart")) >= 2  # the image grid and the training curves
    downloads = [d.proto.label for d in at.get("download_button")]
    assert downloads == [
        "Download this grid (PNG)",
        "Download the trained model (PyTorch file)",  # changed on purpose: no file suffixes
        "Download the run bundle (.zip)",
    ]
    assert list(empty_runs.glob("*.pt"))

    again = page("train", TINY).run()  # another session: no button, the result at once
    assert "Cached" in texts(again.success)


def fake_runner(release: threading.Event, cfg, on_epoch, should_stop, on_batch):
    """A run that reports one epoch, then waits to be released or cancelled; saves nothing."""
    on_batch(0.5)
    on_epoch(EpochStats(1, cfg.epochs, 0.05, 0.05, 0.06, 0.06, 12.0, 0.1))
    while not release.wait(0.05):
        if should_stop():
            return None
    return None


def test_the_live_panel_shows_progress_and_cancels(empty_runs, monkeypatch):
    release = threading.Event()
    manager = JobManager(runner=partial(fake_runner, release))
    monkeypatch.setattr(app_pages._ui, "jobs", lambda: manager)
    at = page("train", TINY).run()
    at.button(key="train").click().run()
    rerun_until(at, lambda at: any("1 of 1 epochs" in p.proto.text for p in at.get("progress")))
    assert len(at.get("plotly_chart")) == 2  # live loss and PSNR curves
    at.button(key=f"cancel_{TINY.key()}").click().run()
    rerun_until(at, lambda at: "cancelled" in texts(at.info))
    assert at.button(key="train")  # offered again
    release.set()
    manager.shutdown()


def runner_now_testing(release: threading.Event, cfg, on_epoch, should_stop, on_batch):
    """A run whose training is over (last batch, last epoch) and that is now testing."""
    on_batch(1.0)
    on_epoch(EpochStats(1, 1, 0.05, 0.05, 0.06, 0.06, 12.0, 0.1))
    while not release.wait(0.05):
        if should_stop():
            return None
    return None


def test_while_testing_the_panel_times_training_and_testing_apart(empty_runs, monkeypatch):
    release = threading.Event()
    manager = JobManager(runner=partial(runner_now_testing, release))
    monkeypatch.setattr(app_pages._ui, "jobs", lambda: manager)
    at = page("train", TINY).run()
    at.button(key="train").click().run()
    rerun_until(at, lambda at: any("testing" in p.proto.text for p in at.get("progress")))
    (text,) = [p.proto.text for p in at.get("progress")]
    assert re.fullmatch(
        r"Trained in [\d.]+ s\. Now testing against the baselines: [\d.]+ s so far\.\.\.", text
    )
    release.set()
    manager.shutdown()


def test_a_second_session_over_its_limit_is_told_why(empty_runs, monkeypatch):
    release = threading.Event()
    manager = JobManager(per_session=1, runner=partial(fake_runner, release))
    monkeypatch.setattr(app_pages._ui, "jobs", lambda: manager)
    at = page("train", TINY).run()
    at.button(key="train").click().run()
    at.number_input(key="cfg_latent").set_value(3).run()  # another config, same session
    at.button(key="train").click().run()
    assert not at.exception
    assert "limit is 1" in texts(at.warning)
    release.set()
    manager.shutdown()


@pytest.mark.parametrize("kind, weight", [("sparse", 1e-4), ("contractive", 1e-3)])
def test_a_regulariser_switched_on_gets_a_useful_weight(empty_runs, kind, weight):
    at = page("train").run()
    at.selectbox(key="cfg_regularizer").select(kind).run()
    assert not at.exception
    assert at.number_input(key="cfg_reg_weight").value == pytest.approx(weight)
    assert float(at.query_params["reg_weight"]) == pytest.approx(weight)
    other = "contractive" if kind == "sparse" else "sparse"  # the other default follows
    at.selectbox(key="cfg_regularizer").select(other).run()
    assert at.number_input(key="cfg_reg_weight").value == pytest.approx(REG_WEIGHTS[other])


def test_a_weight_the_user_chose_is_kept(empty_runs):
    at = page("train").run()
    at.selectbox(key="cfg_regularizer").select("sparse").run()
    at.number_input(key="cfg_reg_weight").set_value(0.05).run()
    at.selectbox(key="cfg_regularizer").select("contractive").run()
    assert at.number_input(key="cfg_reg_weight").value == pytest.approx(0.05)


@pytest.mark.parametrize(("epochs", "words"), [(1, "1 epoch,"), (3, "3 epochs,")])
def test_the_run_line_counts_epochs_in_words(empty_runs, epochs, words):
    at = page("train", dataclasses.replace(TINY, epochs=epochs)).run()
    line = next(m.value for m in at.markdown if "training images of" in m.value)
    assert words in line and "epoch(s)" not in line
