"""pages/latent.py: scatter of codes, the picked image, interpolation, manifold, VAE samples."""

from tests.app.conftest import TINY, TINY_VAE, page, texts


def test_a_2d_code_gets_scatter_pick_walk_and_manifold(trained_runs):
    at = page("latent", TINY).run()
    assert not at.exception
    # scatter, picked image, its code, the walk, the manifold grid
    assert len(at.get("plotly_chart")) == 5
    assert "the code itself" in texts(at.caption)


def test_changing_the_projection_reruns(trained_runs):
    at = page("latent", TINY).run()
    at.radio(key="lat_method").set_value("pca").run()
    assert not at.exception


def test_a_vae_also_samples_from_its_prior(trained_runs):
    at = page("latent", TINY_VAE).run()
    assert not at.exception
    assert "New images from the prior" in [h.value for h in at.subheader]
    at.number_input(key="lat_seed").set_value(3).run()
    assert not at.exception


def test_an_untrained_configuration_stops_with_a_message(empty_runs):
    at = page("latent").run()
    assert not at.exception
    assert "not trained yet" in texts(at.info)
