"""app_pages/latent.py: scatter of codes, the picked image, interpolation, manifold, VAE samples."""

import json

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


def test_picking_tsne_for_a_2d_code_says_why_it_is_not_used(trained_runs):
    at = page("latent", TINY).run()
    assert "distort" not in texts(at.info)  # auto: nothing to explain
    at.radio(key="lat_method").set_value("tsne").run()
    assert not at.exception
    assert "t-SNE would only distort it" in texts(at.info)
    assert "the code itself" in texts(at.caption)


def code_chart(at) -> dict:
    (chart,) = [c for c in at.get("plotly_chart") if "lat_code" in c.proto.id]
    return json.loads(chart.proto.spec)


def test_every_code_is_drawn_on_one_scale_with_zero_white(trained_runs):
    at = page("latent", TINY).run()
    first = code_chart(at)["data"][0]
    at.session_state["lat_picked"] = 7  # as a click on another point would
    at.run()
    assert not at.exception
    other = code_chart(at)["data"][0]
    assert other["z"] != first["z"]
    assert (other["zmin"], other["zmax"]) == (first["zmin"], first["zmax"])
    assert "0 = white" in first["colorbar"]["title"]["text"]
    assert "white is" in texts(at.caption)
