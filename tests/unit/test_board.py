"""aecore.board: tasks, guesses (checked, bounded, kept under concurrent writes), the ranking,
what counts as a guess, and the teacher's code, pin and reset. Attacks included: huge, NaN and
text guesses, long and HTML nicknames, an edited or oversized file, resets without the code."""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import pytest

from aecore import board, settings
from aecore.config import TrainConfig
from aecore.data import load_dataset
from aecore.runindex import RunEntry

CFG = TrainConfig(dataset="digits", corruption="salt_pepper", level=0.5, model="dense", latent=8)
TASK = board.task_of(CFG)


def entry(cfg: TrainConfig, psnr: float | None, trained_at: float, **metrics) -> RunEntry:
    values = {} if psnr is None else {"test_psnr": psnr}
    return RunEntry(Path(f"{cfg.key()}.pt"), cfg, values | metrics, trained_at=trained_at)


def other(**changes) -> TrainConfig:
    return TrainConfig(**(CFG.to_dict() | changes))


@pytest.fixture(autouse=True)
def no_lockouts():
    board._failures.clear()
    yield
    board._failures.clear()


# -- tasks, guesses, nicknames -------------------------------------------------------------------


def test_a_task_has_a_readable_title_and_a_key_that_round_trips():
    assert TASK.title == "Denoise Digits 8x8: Salt and pepper, probability p = 0.5"
    assert board.Task.from_key(TASK.key) == TASK
    plain = board.task_of(other(corruption="none", level=0.0))
    assert plain.title.startswith("Reconstruct Digits 8x8")
    for bad in ("digits/salt_pepper/7", "nope/gaussian/0.5", "a/b", None, "digits/x/1", 5):
        assert board.Task.from_key(bad) is None


@pytest.mark.parametrize(
    "text, shown",
    [
        ("<script>alert(1)</script>", "alert 1"),
        ("  Ada   L.  ", "Ada L."),
        ("x" * 500, "x" * board.NICK_MAX),
        ("\x00\x1b[31mred\u202e", "31mred"),
        ("**bold** [link](http://e.vil)", "bold link http e.vil"),
        (None, ""),
        ("Zoë 3-B", "Zoë 3-B"),
    ],
)
def test_nicknames_are_plain_and_short(text, shown):
    cleaned = board.clean_nickname(text)
    assert cleaned == shown[: board.NICK_MAX]
    assert len(cleaned) <= board.NICK_MAX and "<" not in cleaned and "[" not in cleaned


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 1e300, 100.01, "abc", None, [1]])
def test_a_guess_must_be_a_sane_number_of_db(bad):
    with pytest.raises(ValueError, match="dB"):
        board.check_guess(bad)


def test_a_guess_is_kept_with_its_run_and_one_per_visitor_and_run(tmp_path):
    first = board.add_guess(tmp_path, CFG, 18.456, "<b>Ada</b>", "v1", now=100.0)
    assert (first.guess, first.nickname, first.before_result) == (18.46, "Ada", True)
    board.add_guess(tmp_path, CFG, 20, "Ada", "v1", now=101.0)  # replaces v1's guess
    board.add_guess(tmp_path, CFG, 15, "", "v2", now=102.0)
    late = board.add_guess(tmp_path, other(seed=1), 17, "", "v1", result_exists=True, now=103.0)
    state = board.read_board(tmp_path)
    assert [(g.guess, g.run_key) for g in state.guesses] == [
        (20.0, CFG.key()),
        (15.0, CFG.key()),
        (17.0, other(seed=1).key()),
    ]
    assert not late.before_result
    assert all("v1" not in g.visitor for g in state.guesses)  # stored hashed
    board.withdraw(tmp_path, late)
    assert len(board.read_board(tmp_path).guesses) == 2


def test_a_refused_guess_writes_nothing(tmp_path):
    with pytest.raises(ValueError):
        board.add_guess(tmp_path, CFG, float("nan"))
    assert not board.board_path(tmp_path).exists()


def test_the_file_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(board, "MAX_GUESSES", 5)
    for i in range(12):
        board.add_guess(tmp_path, CFG, 10 + i, f"s{i}", f"visitor{i}", now=float(i))
    kept = board.read_board(tmp_path).guesses
    assert [g.nickname for g in kept] == [f"s{i}" for i in range(7, 12)]


def test_concurrent_guesses_are_all_kept(tmp_path):
    def guess(i: int) -> None:
        board.add_guess(tmp_path, CFG, 10 + i / 10, f"n{i}", f"visitor{i}")

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(board.read_board(tmp_path).guesses) == 24


def test_a_damaged_edited_or_huge_file_reads_as_an_empty_board(tmp_path):
    board.add_guess(tmp_path, CFG, 18, "Ada", "v1")
    path = board.board_path(tmp_path)
    data = json.loads(path.read_text())
    data["guesses"][0]["guess"] = 99.0  # edited by hand: the seal no longer matches
    path.write_text(json.dumps(data))
    assert board.read_board(tmp_path) == board.BoardState()
    path.write_text("{not json")
    assert board.read_board(tmp_path) == board.BoardState()
    path.write_bytes(b" " * (board.MAX_FILE_BYTES + 1))
    assert board.read_board(tmp_path) == board.BoardState()
    board.add_guess(tmp_path, CFG, 18, "Ada", "v1")  # and the board works again
    assert len(board.read_board(tmp_path).guesses) == 1


def test_unsealed_bad_items_are_dropped_one_by_one(tmp_path):
    good = board.add_guess(tmp_path, CFG, 18, "Ada", "v1", now=5.0)
    record = {"format": board.FORMAT, "version": board.VERSION, "key": "class-board"}
    bad = [
        {**good.__dict__, "guess": float("nan")},
        {**good.__dict__, "nickname": "<img src=x>" * 40},
        {**good.__dict__, "task": "digits/../../etc"},
        {**good.__dict__, "run_key": "not-a-key"},
        {"what": "ever"},
        "text",
    ]
    record |= {"guesses": [good.__dict__, *bad], "pinned": "nope/none/0", "resets": {"x": 1}}
    board.board_path(tmp_path).write_text(json.dumps(record))
    state = board.read_board(tmp_path)
    assert [g.nickname for g in state.guesses] == ["Ada", "img"]  # a cut-off tag is text
    assert state.pinned is None and state.resets == {}


# -- the ranking and what counts ------------------------------------------------------------------


def test_runs_of_the_task_are_ranked_once_best_first():
    runs = [
        entry(CFG, 15.0, 10.0),
        entry(other(seed=1), 19.5, 11.0),
        entry(other(level=0.3), 30.0, 12.0),  # another task
        entry(other(dataset="mnist", latent=8), 31.0, 12.0),  # another task
        entry(other(seed=2), None, 13.0),  # no score
        entry(other(seed=1), 19.5, 11.0),  # listed twice (runs folder and bundled)
    ]
    placed = board.ranking(TASK, runs, board.BoardState())
    assert [(p.rank, p.psnr) for p in placed] == [(1, 19.5), (2, 15.0)]


def test_a_guess_counts_only_if_made_before_the_result():
    runs = [entry(CFG, 15.0, 100.0), entry(other(seed=1), 19.0, 100.0)]
    placed = board.ranking(TASK, runs, board.BoardState())
    g = [
        board.Guess(CFG.key(), TASK.key, 17.0, "early", 50.0, True),
        board.Guess(CFG.key(), TASK.key, 15.0, "after", 150.0, True),  # made after the run
        board.Guess(other(seed=1).key(), TASK.key, 19.0, "peek", 60.0, False),  # result existed
        board.Guess(other(seed=3).key(), TASK.key, 12.0, "waiting", 70.0, True),  # not trained
    ]
    points = board.guess_points(TASK, placed, board.BoardState(tuple(g)))
    assert [(p.guess.nickname, p.counts, p.result) for p in points] == [
        ("early", True, 15.0),
        ("after", False, 15.0),
        ("peek", False, 19.0),
        ("waiting", True, None),
    ]
    assert points[0].error == pytest.approx(2.0) and points[3].error is None
    fig = board.guess_chart(points, {"median filter 3x3": 8.0})
    names = [t.name for t in fig.data]
    assert names == ["guess = result", "guess", "not counted"]
    assert list(fig.data[1].x) == [17.0] and len(fig.layout.shapes) == 1  # the median line


def test_tasks_list_the_pinned_one_first(tmp_path):
    runs = [entry(other(level=0.3), 20.0, 1.0), entry(other(level=0.3, seed=1), 21.0, 1.0)]
    state = board.BoardState(pinned=TASK.key)
    assert board.tasks(runs, state) == [TASK, board.task_of(other(level=0.3))]
    assert board.tasks(runs, board.BoardState()) == [board.task_of(other(level=0.3))]


# -- the teacher ---------------------------------------------------------------------------------


def test_without_a_teacher_code_nobody_can_reset(monkeypatch):
    monkeypatch.delenv("AECORE_TEACHER_CODE", raising=False)
    assert settings.current().teacher_code == ""
    with pytest.raises(board.TeacherRefused, match="AECORE_TEACHER_CODE"):
        board.check_code("", settings.current().teacher_code, "student")
    monkeypatch.setenv("AECORE_TEACHER_CODE", "abc")  # too short to resist guessing: off
    assert settings.current().teacher_code == ""
    monkeypatch.setenv("AECORE_TEACHER_CODE", "  owl-42  ")
    assert settings.current().teacher_code == "owl-42"
    assert "owl-42" not in repr(settings.current())  # a logged Settings keeps the secret


def test_wrong_codes_are_refused_and_a_guesser_is_locked_out():
    board.check_code("owl-42", "owl-42", "teacher")  # no exception
    for _ in range(board.WRONG_CODES):
        with pytest.raises(board.TeacherRefused, match="not the teacher code"):
            board.check_code("guess", "owl-42", "student", now=1000.0)
    with pytest.raises(board.TeacherRefused, match="Too many wrong codes"):
        board.check_code("owl-42", "owl-42", "student", now=1001.0)  # even the right one
    board.check_code("owl-42", "owl-42", "student", now=1000.0 + board.LOCKOUT_S + 1)


def test_pin_and_reset_hide_older_runs_and_guesses(tmp_path):
    board.add_guess(tmp_path, CFG, 14.0, "old", "v1", now=50.0)
    board.pin(tmp_path, TASK)
    state = board.reset(tmp_path, TASK, now=200.0)
    board.add_guess(tmp_path, other(seed=5), 16.0, "new", "v2", now=210.0)
    state = board.read_board(tmp_path)
    assert state.pinned == TASK.key and state.reset_at(TASK) == 200.0
    runs = [entry(CFG, 15.0, 100.0), entry(other(seed=5), 17.0, 300.0)]
    placed = board.ranking(TASK, runs, state)
    assert [p.psnr for p in placed] == [17.0]
    assert [p.guess.nickname for p in board.guess_points(TASK, placed, state)] == ["new"]
    assert len(state.guesses) == 2  # nothing deleted
    assert board.pin(tmp_path, None).pinned is None


def test_the_lines_to_beat_are_the_median_and_pca_on_the_whole_test_set(tmp_path):
    ds = load_dataset("digits")
    lines = board.lines_to_beat(ds, TASK, tmp_path)
    assert list(lines) == ["median filter 3x3", "PCA, 32 components"]
    assert all(math.isfinite(v) and 0 < v < 60 for v in lines.values())
    clean = board.lines_to_beat(ds, board.task_of(other(corruption="none", level=0.0)))
    assert list(clean) == ["PCA, 32 components"]
    runs = [
        entry(other(latent=32), 15.0, 1.0, test_psnr_median3=8.1, test_psnr_pca=9.5),
        entry(CFG, 14.0, 1.0, test_psnr_median3=8.1, test_psnr_pca=7.0),  # code 8: not the line
    ]
    placed = board.ranking(TASK, runs, board.BoardState())
    lines = {"median filter 3x3": 8.1, "PCA, 32 components": 9.5}
    assert board.recorded_lines(TASK, placed) == lines
    plain = board.task_of(other(corruption="none", level=0.0, latent=32))
    assert board.recorded_lines(plain, placed) == {"PCA, 32 components": 9.5}
