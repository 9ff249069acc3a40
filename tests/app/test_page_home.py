"""app_pages/home.py: a call to action with nothing trained, an instant demo with a saved run."""

from tests.app.conftest import page, texts


def test_without_runs_it_asks_to_train_the_default(empty_runs):
    at = page("home").run()
    assert not at.exception
    assert "No trained model yet" in texts(at.info)
    assert not at.get("image")  # the stored demo picture is taken away again


def test_with_a_saved_run_it_shows_the_demo_picture_at_once(trained_runs):
    at = page("home").run()
    assert not at.exception
    assert len(at.get("image")) == 1
    assert at.selectbox(key="home_run").value.startswith("Dense AE on Digits 8x8, Gaussian noise")
    assert "PSNR after the autoencoder" in texts(at.caption)


def test_changing_the_level_redraws_the_picture(trained_runs):
    at = page("home").run()
    before = at.get("image")[0].proto
    at.slider(key="home_level_gaussian").set_value(1.0).run()
    assert not at.exception
    after = at.get("image")[0].proto
    assert len(at.get("image")) == 1
    assert before != after


def test_the_caption_names_the_dataset_in_words(trained_runs):
    at = page("home").run()
    caption = texts(at.caption)
    assert "The first test images of Digits 8x8" in caption
    assert "corrupted with sigma = 0.3" in caption
