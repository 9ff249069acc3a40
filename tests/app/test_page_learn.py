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


def test_every_lesson_links_the_views_that_show_it(empty_runs):
    from app_pages.learn import TRY, USES
    from tests.app.conftest import ROOT

    at = page("learn").run()
    shown = texts(at.markdown)
    links = [link for views in TRY.values() for link in views] + list(USES)
    for path, text in links:
        assert (ROOT / path).is_file(), path
        assert text in shown, f"no link {text!r} on Learn"
    # Every page the issue added is linked from some lesson.
    for new in ("explore", "draw", "beta", "anomaly", "board"):
        assert any(path == f"app_pages/{new}.py" for path, _ in links), new
