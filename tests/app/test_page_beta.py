"""app_pages/beta.py: three VAEs that differ only in β, side by side, on the bundled digits."""

from pathlib import Path

import pytest

from aecore.beta import beta_configs
from aecore.runs import train_and_save
from tests.app.conftest import page, rerun_until, texts, use_runs_dir

# The session's configuration on digits: the page compares on the session's dataset (the test
# session has MNIST too, and the page would pick it).
DIGITS = beta_configs("digits")[1.0]


@pytest.fixture(scope="module")
def beta_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The page's three digits runs (the VAE preset at β 0.5, 1 and 4: a few seconds each)."""
    folder = tmp_path_factory.mktemp("beta_runs")
    for cfg in beta_configs("digits").values():
        train_and_save(cfg, device="cpu", out_dir=folder)
    return folder


def charts(at) -> list:
    return at.get("plotly_chart")


def train_buttons(at) -> list[str]:
    return [b.label for b in at.button if b.label.startswith("Train")]


def test_three_trained_runs_show_side_by_side(beta_dir, monkeypatch):
    use_runs_dir(beta_dir, monkeypatch)
    at = page("beta", DIGITS).run()
    assert not at.exception
    assert [b.label for b in at.button] == ["β = 0.5", "β = 1", "β = 4"]
    assert not train_buttons(at)
    # per run: its scatter, samples and reconstructions; then reconstruction against KL
    assert len(charts(at)) == 3 * 3 + 1
    assert len(at.columns) >= 3
    numbers = texts(at.caption)
    assert numbers.count("nats per image") >= 3
    assert "From β = 0.5 to β = 4 the KL falls" in texts(at.markdown)
    table = at.dataframe[0].value
    assert list(table["β"]) == ["0.5", "1", "4"]
    assert table["KL"].is_monotonic_decreasing  # higher β: a code closer to the prior


def test_missing_runs_offer_to_train_them(empty_runs):
    at = page("beta", DIGITS).run()
    assert not at.exception
    assert train_buttons(at).count("Train it") == 3
    assert "Train the 3 missing runs" in train_buttons(at)
    assert texts(at.info).count("Not trained yet") == 3
    assert "Train at least one of the runs" in texts(at.info)
    assert not charts(at)


def test_train_it_trains_that_run_and_shows_it(empty_runs):
    at = page("beta", DIGITS).run()
    at.button(key="beta_train_4").click().run()
    assert not at.exception
    assert train_buttons(at).count("Train it") == 2  # β = 4 trains: its column shows progress
    rerun_until(at, lambda a: len(charts(a)) > 0, timeout=300)
    assert len(charts(at)) == 3 + 1  # the β = 4 run's three views and the comparison
    assert not at.get("progress")
    assert "Train the 2 missing runs" in train_buttons(at)


def test_a_preset_opens_train_with_its_beta(empty_runs):
    at = page("beta", DIGITS).run()
    at.button(key="beta_preset_4").click().run()
    assert not at.exception
    assert at.query_params["beta"] == "4.0"
    assert at.query_params["model"] == "vae_mlp" and at.query_params["latent"] == "2"
    assert at.query_params["dataset"] == "digits"
    assert "Settings loaded" in texts(at.success)


def test_a_dataset_that_is_not_here_says_so(empty_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("AECORE_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("AECORE_OFFLINE", "1")
    at = page("beta").run()
    assert at.selectbox(key="beta_dataset").value == "digits"  # the one that is here
    assert "cifar10" not in at.selectbox(key="beta_dataset").options
    at.selectbox(key="beta_dataset").set_value("mnist").run()
    assert not at.exception
    assert "MNIST is not on this computer" in texts(at.error)
    assert not train_buttons(at)
