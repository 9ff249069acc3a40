"""app_pages/learn.py: seven kinds, each with a preset that opens Train."""

from tests.app.conftest import page, texts


def test_seven_kinds_each_with_a_button(empty_runs):
    at = page("learn").run()
    assert not at.exception
    assert len(at.button) == 7


def test_a_preset_puts_its_settings_in_the_url(empty_runs):
    at = page("learn").run()
    at.button(key="learn_6").click().run()  # variational
    assert not at.exception
    # Run alone there is no Train page to switch to; the settings still land in the URL.
    assert at.query_params["model"] == "vae_mlp"
    assert at.query_params["latent"] == "2"
    assert "Settings loaded" in texts(at.success)
