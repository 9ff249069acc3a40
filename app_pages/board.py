"""Class board: the class's runs of one task ranked on the fixed test set, against the median
filter and PCA, and each guess of a run's PSNR against its result. A teacher can pin a task and
reset its board (aecore.board)."""

from __future__ import annotations

import datetime

import pandas as pd
import streamlit as st

from aecore import board, settings
from aecore.checkpoints import runs_dir
from aecore.config import TrainConfig
from aecore.data import DATASETS, DatasetUnavailable, data_dir, load_dataset
from app_pages import _ui as ui

PIN = "📌 "


@st.cache_data(max_entries=32, show_spinner="Filtering the test set for the lines to beat...")
def _lines(key: str, where: str) -> dict[str, float] | None:
    """The median and PCA lines of the task (None: the dataset is not on this computer)."""
    task = board.Task.from_key(key)
    try:
        ds = load_dataset(task.dataset, where)
    except DatasetUnavailable:
        return None
    return board.lines_to_beat(ds, task, runs_dir() / "baselines")


def _own_task(tasks: list[board.Task]) -> int:
    """Where the list starts: at the task of this session's newest training run (a student who
    just trained sees their own board), else at the first (the pinned task)."""
    own = [
        j.config for j in ui.jobs().jobs_for(ui.session_id()) if isinstance(j.config, TrainConfig)
    ]
    mine = board.task_of(own[-1]) if own else None
    return tasks.index(mine) if mine in tasks else 0


def _when(seconds: float) -> str:
    """ "14:05" today, "26 Nov" before: short enough for a narrow column."""
    when = datetime.datetime.fromtimestamp(seconds)
    today = when.date() == datetime.date.today()
    return when.strftime("%H:%M" if today else "%d %b")


def ranking_table(placed: list[board.Placed], points: list[board.GuessPoint], lines) -> None:
    guessed: dict[str, list[str]] = {}
    for p in points:
        if p.counts:
            name = p.guess.nickname or "anonymous"
            guessed.setdefault(p.guess.run_key, []).append(f"{name}: {p.guess.guess:.1f}")
    best_line = max(lines.values(), default=None)
    rows = [
        {
            "place": f"#{p.rank}",  # text: st.table may hide a plain number index
            "run": ui.run_label(p.entry.config),
            "test PSNR (dB)": f"{p.psnr:.2f}",
            "vs best line (dB)": "—" if best_line is None else f"{p.psnr - best_line:+.2f}",
            "guesses (dB)": ", ".join(guessed.get(p.entry.config.key(), [])) or "—",
            "trained": _when(p.entry.trained_at),
        }
        for p in placed
    ]
    # A static table wraps long run names instead of cutting them off (a 1024-pixel projector).
    st.table(pd.DataFrame(rows).set_index("place"))


def lines_row(task: board.Task, lines: dict[str, float], placed: list[board.Placed]) -> None:
    if not lines:
        st.info(f"{DATASETS[task.dataset].label} is not on this computer: no lines to beat.")
        return
    st.markdown("**Lines to beat** (test PSNR on the same images)")
    columns = st.columns(len(lines) + 1)
    for column, (name, value) in zip(columns, lines.items(), strict=False):
        column.metric(name, f"{value:.2f} dB")
    beating = sum(p.psnr > max(lines.values()) for p in placed)
    columns[-1].metric("Runs above every line", f"{beating} of {len(placed)}")


def guesses_view(points: list[board.GuessPoint], lines: dict[str, float]) -> None:
    st.subheader("Guesses against results")
    if not points:
        st.info(
            "No guesses yet. On the Train page, write your guess of the test PSNR before you "
            "press Train: it appears here against the result."
        )
        return
    st.plotly_chart(board.guess_chart(points, lines), key="board_guesses")
    rows = [
        {
            "who": p.guess.nickname or "anonymous",
            "guess (dB)": f"{p.guess.guess:.1f}",
            "result (dB)": "training..." if p.result is None else f"{p.result:.2f}",
            "off by (dB)": "—" if p.error is None else f"{p.error:+.2f}",
            "counts": "yes" if p.counts else "no: made after the result",
        }
        for p in points
    ]
    st.table(pd.DataFrame(rows).set_index("who"))
    st.caption(
        "On the dashed line a guess was exact; above it the run did better than guessed. A "
        "guess counts only if it was made before the run's result existed."
    )


def teacher_controls(task: board.Task, state: board.BoardState) -> None:
    code = settings.current().teacher_code
    with st.expander("Teacher: pin this task, reset its board"):
        if not code:
            st.info(
                "The teacher controls are off: start the server with the environment variable "
                "AECORE_TEACHER_CODE set to a code of at least "
                f"{settings.MIN_TEACHER_CODE} characters, and type it here. Students who do not "
                "know it cannot pin or reset a board."
            )
            return
        given = st.text_input("Teacher code", type="password", key="board_code")
        pinned = state.pinned == task.key
        left, right = st.columns(2)
        pin_clicked = left.button("Unpin this task" if pinned else "Pin this task first")
        reset_clicked = right.button("Reset this task's board", icon=":material/restart_alt:")
        st.caption(
            "Reset: runs trained and guesses made before now are no longer shown here (no file "
            "is deleted). A configuration trained before counts again only once it is trained "
            "anew, for example with another seed."
        )
        if pin_clicked or reset_clicked:
            _teacher_action(task, given, pin_clicked, pinned)


def _teacher_action(task: board.Task, given: str, pin_clicked: bool, pinned: bool) -> None:
    try:
        board.check_code(given, settings.current().teacher_code, ui.visitor_id())
        if pin_clicked:
            board.pin(runs_dir(), None if pinned else task)
        else:
            board.reset(runs_dir(), task)
    except board.TeacherRefused as err:
        st.warning(str(err))
        return
    except OSError:
        st.warning("The board could not be saved just now; try again in a moment.")
        return
    st.rerun()


st.title("Class board")
state = board.read_board(runs_dir())
entries = ui.saved_runs()
tasks = board.tasks(entries, state)
if not tasks:
    st.info("No trained runs yet: train one on the Train page, and it is ranked here.")
    ui.page_link("app_pages/train.py", "Open Train", icon=":material/model_training:")
    st.stop()

by_key = {t.key: t for t in tasks}
chosen = st.selectbox(
    "Task",
    list(by_key),
    index=_own_task(tasks),
    format_func=lambda k: (PIN if k == state.pinned else "") + by_key[k].title,
    key="board_task",
)
task = by_key[chosen]
st.caption(
    "Every run of this task is scored on the same test images, corrupted with one fixed seed, "
    "so any model can be ranked against any other. Train one on the Train page with this "
    "dataset, corruption and level to join."
)
placed = board.ranking(task, entries, state)
points = board.guess_points(task, placed, state)
lines = _lines(task.key, str(data_dir()))
lines = board.recorded_lines(task, placed) if lines is None else lines
lines_row(task, lines, placed)
if placed:
    ranking_table(placed, points, lines)
else:
    since = state.reset_at(task)
    st.info(
        "No runs of this task yet" + (f" since the reset of {_when(since)}" if since else "") + "."
    )
guesses_view(points, lines)
teacher_controls(task, state)
