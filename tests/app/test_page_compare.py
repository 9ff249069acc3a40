"""pages/compare.py: saved runs side by side on the same corrupted inputs."""

from tests.app.conftest import page, texts


def test_without_runs_it_says_so(empty_runs):
    at = page("compare").run()
    assert not at.exception
    assert "No trained runs yet" in texts(at.info)


def test_two_runs_get_one_grid_one_table_and_bars(trained_runs):
    at = page("compare").run()
    assert not at.exception
    assert len(at.multiselect(key="cmp_runs_digits").value) == 2
    assert len(at.dataframe) == 1
    assert list(at.dataframe[0].value.index) == ["A", "B"]
    assert len(at.get("plotly_chart")) == 2


def test_other_inputs_rerun(trained_runs):
    at = page("compare").run()
    at.selectbox(key="cmp_corruption").select("salt_pepper").run()
    assert not at.exception
    assert len(at.dataframe) == 1
