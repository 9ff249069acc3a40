"""app_pages/compare.py, "Across corruptions": the generalisation matrix of RESULTS.md section 7
from the saved runs, with the missing rows trained in the background (one epoch here)."""

from __future__ import annotations

import json
import shutil

import pytest

from aecore import generalisation as gen
from tests.app.conftest import page, rerun_until, texts, use_runs_dir

ACROSS = "Generalisation"


@pytest.fixture
def own_runs(trained_dir, tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    shutil.copytree(trained_dir, folder)
    use_runs_dir(folder, monkeypatch)
    return folder


def heatmap_text(at) -> list[list[str]]:
    (chart,) = [c for c in at.get("plotly_chart") if c.key == "gen_heatmap"]
    return json.loads(chart.proto.spec)["data"][0]["text"]


def open_matrix(at):
    at.run()
    at.segmented_control(key="cmp_view").set_value(ACROSS).run()
    assert not at.exception
    return at


def test_missing_rows_are_listed_then_trained_and_the_matrix_fills_in(own_runs, monkeypatch):
    monkeypatch.setitem(gen.EPOCHS, "small", 1)  # seconds, not minutes
    at = open_matrix(page("compare"))
    cells = heatmap_text(at)
    assert len(cells) == 6 and cells[2:] == [["not trained"] * 4] * 4
    assert all(v.replace(".", "").isdigit() for v in cells[0] + cells[1])  # the references
    info = texts(at.info)
    assert "U-Net trained on Black stripes 3" in info and "not trained" in info
    assert "first 297 test images" in texts(at.markdown)  # says how many, fewer than 1,000
    assert "No row model is trained yet" in texts(at.markdown)

    at.button(key="gen_train_digits").click().run()
    assert not at.exception
    rerun_until(at, lambda at: not [b for b in at.button if b.key == "gen_train_digits"]
                and "not trained" not in str(heatmap_text(at)), timeout=240)  # fmt: skip
    cells = heatmap_text(at)
    assert all(v.replace(".", "").replace("-", "").isdigit() for row in cells for v in row)
    verdict = texts(at.markdown)
    assert "Every trained model improves" in verdict or "do worse than leaving" in verdict
    # The rows are ordinary saved runs, named by their configs' keys.
    saved = {p.name for p in own_runs.glob("unet-digits-*.pt")}
    assert saved == {f"unet-digits-{c.key()}.pt" for c in gen.row_configs("digits")}


def test_a_refused_run_is_explained_not_raised(own_runs, monkeypatch):
    monkeypatch.setenv("AECORE_RUN_BUDGET_S", "1")
    monkeypatch.setitem(gen.EPOCHS, "small", 200)  # far over a 1-second budget
    at = open_matrix(page("compare"))
    at.button(key="gen_train_digits").click().run()
    assert not at.exception
    assert at.warning, "the refusal should be shown"
    assert at.button(key="gen_train_digits")  # still offered: nothing was queued
    assert "not trained" in str(heatmap_text(at))


def test_switching_dataset_and_back_keeps_the_view(trained_runs):
    at = open_matrix(page("compare"))
    at.selectbox(key="cmp_dataset").select("digits").run()
    assert not at.exception
    assert at.segmented_control(key="cmp_view").value == ACROSS
    assert any(c.key == "gen_heatmap" for c in at.get("plotly_chart"))
