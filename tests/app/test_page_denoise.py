"""pages/denoise.py: the grid and metrics of a trained run, other levels, the severity sweep."""

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
