"""app_pages/denoise.py: the grid and metrics of a trained run, other levels, the severity sweep."""

import io
import json

from PIL import Image, ImageDraw

from tests.app.conftest import TINY, page, texts


def test_an_untrained_configuration_offers_to_train_or_open_a_saved_run(empty_runs):
    at = page("denoise").run()
    assert not at.exception
    assert "not trained yet" in texts(at.info)


def test_a_trained_run_shows_its_grid_and_metrics(trained_runs):
    at = page("denoise", TINY).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 1  # the grid; the sweep waits for its toggle
    assert [m.label for m in at.metric][0] == "Autoencoder PSNR"
    assert "at the trained level" in texts(at.caption)


def test_another_level_is_evaluated_on_the_spot(trained_runs):
    at = page("denoise", TINY).run()
    at.slider(key="dn_level").set_value(1.0).run()
    assert not at.exception
    assert "at level 1" in texts(at.caption)


def test_the_severity_sweep_draws_one_line_per_method(trained_runs):
    at = page("denoise", TINY).run()
    at.toggle(key=f"dn_sweep_{TINY.key()}").set_value(True).run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 2


def test_opening_a_saved_run_loads_its_settings(trained_runs):
    at = page("denoise").run()  # the default config: not among the saved runs
    at.button(key="open_saved_0").click().run()
    assert not at.exception
    assert at.selectbox(key="cfg_dataset").value == "digits"
    assert "PSNR" in at.metric[0].label  # the run's metrics, not the "not trained" note


def test_the_test_level_is_named_apart_from_the_sidebar_level(trained_runs):
    at = page("denoise", TINY).run()
    assert not at.exception
    sidebar = at.slider(key="cfg_level_gaussian").label
    here = at.slider(key="dn_level").label
    assert here.startswith("Test at level: sigma") and "trained at 0.3" in here
    assert here != sidebar
    assert "Changes the test images only" in texts(at.caption)
    at.slider(key="dn_level").set_value(1.0).run()
    assert at.slider(key="cfg_level_gaussian").value == TINY.level  # the model stays


def test_the_caption_names_the_dataset_in_words(trained_runs):
    at = page("denoise", TINY).run()
    assert "All Digits 8x8" in texts(at.caption)
    assert "digits test images" not in texts(at.caption)


def test_the_severity_sweep_includes_the_trained_level_and_shows_ssim(trained_runs):
    at = page("denoise", TINY).run()
    assert "Test levels: " in texts(at.caption)
    levels = next(c.value for c in at.caption if "Test levels: " in c.value)
    assert "0.3," in levels  # the trained level, which the even grid (0.33, 0.67, ...) misses
    at.toggle(key=f"dn_sweep_{TINY.key()}").set_value(True).run()
    assert not at.exception
    (chart,) = [c for c in at.get("plotly_chart") if c.proto.id and "dn_sweep_chart" in c.proto.id]
    fig = json.loads(chart.proto.spec)
    assert 0.3 in fig["data"][0]["x"]
    assert "SSIM" in fig["layout"]["yaxis2"]["title"]["text"]


def test_your_own_image_has_the_same_test_level_control(trained_runs):
    img = Image.new("L", (60, 60), 0)
    ImageDraw.Draw(img).line([(15, 10), (40, 50)], fill=255, width=6)  # a stroke: not blank
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    at = page("denoise", TINY).run()
    at.get("file_uploader")[0].set_value(("mine.png", buf.getvalue(), "image/png")).run()
    assert not at.exception
    label = at.slider(key="dn_up_level").label
    assert label == at.slider(key="dn_level").label
    assert label.startswith("Test at level:")


def test_the_best_tuned_classical_method_stands_beside_the_median(trained_runs):
    """Issue: the strongest classical method, tuned on validation images, wherever the median is
    shown: the metrics table, the headline, the caption that names it, the grid and the sweep."""
    at = page("denoise", TINY).run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "PSNR (dB)" in d.value.columns)
    assert "Best classical, tuned" in table.index and "Median filter 3x3" in table.index
    best_db = table.loc["Best classical, tuned", "PSNR (dB)"]
    assert best_db >= table.loc["Median filter 3x3", "PSNR (dB)"] - 0.5  # tuned on other images
    assert "Best classical: " in texts(at.caption) and "validation images" in texts(at.caption)
    headline = [m for m in at.metric if m.label.startswith("Best classical baseline")]
    assert headline and "dB" in headline[0].value
    at.toggle(key=f"dn_sweep_{TINY.key()}").set_value(True).run()
    assert not at.exception
    sweep = at.get("plotly_chart")[-1].proto.spec
    assert "Best classical" in sweep
