"""app_pages/board.py (the Class board) and the Train page's guess: ranking, lines to beat,
guesses against results, the teacher's pin and reset, and attacks on all of them."""

from __future__ import annotations

import shutil

import pytest

from aecore import board
from aecore.checkpoints import runs_dir
from tests.app.conftest import TINY, describe, page, rerun_until, texts, use_runs_dir

TASK = board.task_of(TINY)


@pytest.fixture
def own_runs(trained_dir, tmp_path, monkeypatch):
    """A copy of the trained runs (TINY and a VAE on digits): the board file stays here."""
    folder = tmp_path / "runs"
    shutil.copytree(trained_dir, folder)
    use_runs_dir(folder, monkeypatch)
    monkeypatch.delenv("AECORE_TEACHER_CODE", raising=False)
    board._failures.clear()
    return folder


def ranking(at):
    (table,) = [d.value for d in at.table if "test PSNR (dB)" in d.value.columns]
    return table


def pick(at, task: board.Task):
    at.selectbox(key="board_task").select(task.key).run()
    assert not at.exception
    return at


def test_without_runs_it_says_so(empty_runs):
    at = page("board").run()
    assert not at.exception
    assert "No trained runs yet" in texts(at.info)


def test_a_task_ranks_its_runs_against_the_median_and_pca(own_runs):
    at = pick(page("board").run(), TASK)
    assert TASK.title in at.selectbox(key="board_task").format_func(TASK.key)
    table = ranking(at)
    assert len(table) == 1 and list(table.index) == ["#1"]
    labels = [m.label for m in at.metric]
    assert labels[:2] == ["median filter 3x3", "PCA, 32 components"]
    assert labels[2] == "Runs above every line"
    assert "No guesses yet" in texts(at.info)
    assert "AECORE_TEACHER_CODE" in texts(at.info)  # how a teacher turns the controls on
    assert not [b for b in at.button if "Reset" in b.label]  # and no controls without it


def test_a_guess_made_before_the_result_shows_against_it(own_runs):
    board.add_guess(own_runs, TINY, 12.5, "<i>Ada</i>", "v1", now=1.0)  # long before the run
    board.add_guess(own_runs, TINY, 30.0, "Bob", "v2", result_exists=True)  # a peek: no count
    at = pick(page("board").run(), TASK)
    (guesses,) = [d.value for d in at.table if "guess (dB)" in d.value.columns]
    assert list(guesses.index) == ["Ada", "Bob"]
    assert list(guesses["counts"]) == ["yes", "no: made after the result"]
    assert ranking(at)["guesses (dB)"].iloc[0] == "Ada: 12.5"  # counted ones only
    assert any(c.key == "board_guesses" for c in at.get("plotly_chart"))


def test_a_damaged_board_file_is_an_empty_board(own_runs):
    board.board_path(own_runs).write_text('{"format": "aecore-class-board", "guesses": [1e999')
    at = pick(page("board").run(), TASK)
    assert len(ranking(at)) == 1 and "No guesses yet" in texts(at.info)


def test_the_teacher_pins_and_resets_with_the_code_only(own_runs, monkeypatch):
    monkeypatch.setenv("AECORE_TEACHER_CODE", "owl-42")
    at = pick(page("board").run(), TASK)
    reset = [b for b in at.button if b.label == "Reset this task's board"][0]
    reset.click().run()  # no code typed
    assert "not the teacher code" in texts(at.warning)
    assert len(ranking(at)) == 1  # nothing happened

    at.text_input(key="board_code").input("owl-42").run()
    [b for b in at.button if b.label == "Pin this task first"][0].click().run()
    assert not at.exception
    assert board.read_board(runs_dir()).pinned == TASK.key
    assert at.selectbox(key="board_task").format_func(TASK.key).startswith("📌")
    [b for b in at.button if b.label == "Reset this task's board"][0].click().run()
    assert not at.exception
    assert not [d for d in at.table if "test PSNR (dB)" in d.value.columns]
    assert "No runs of this task yet since the reset" in texts(at.info)
    assert list(own_runs.glob("*.pt"))  # nothing deleted


def test_guessing_on_the_train_page_then_training(own_runs):
    cfg = TINY.__class__(**(TINY.to_dict() | {"seed": 7}))  # not trained yet
    at = page("train", cfg).run()
    assert not at.exception
    assert "class board of the task" in texts(at.caption)
    at.number_input(key=f"board_guess_{cfg.key()}").set_value(11.0)
    at.text_input(key="board_nickname").input("<b>Zoë</b>")
    at.button(key="train").click().run()
    assert not at.exception, describe(at)
    rerun_until(at, lambda at: "Test results" in [s.value for s in at.subheader])
    (saved,) = board.read_board(own_runs).guesses
    assert (saved.guess, saved.nickname, saved.run_key) == (11.0, "Zoë", cfg.key())
    assert saved.before_result

    at = pick(page("board").run(), TASK)
    (guesses,) = [d.value for d in at.table if "guess (dB)" in d.value.columns]
    assert list(guesses.index) == ["Zoë"] and list(guesses["counts"]) == ["yes"]
    assert len(ranking(at)) == 2


def test_a_refused_run_takes_its_guess_back(own_runs, monkeypatch):
    monkeypatch.setenv("AECORE_RUN_BUDGET_S", "1")
    cfg = TINY.__class__(**(TINY.to_dict() | {"epochs": 200, "seed": 8}))
    at = page("train", cfg).run()
    at.number_input(key=f"board_guess_{cfg.key()}").set_value(14.0)
    at.button(key="train").click().run()
    assert not at.exception and at.warning
    assert board.read_board(own_runs).guesses == ()
