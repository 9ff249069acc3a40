"""The Train page's part of the class board: an optional guess of the run's test PSNR (and an
optional nickname), written down before the run is trained, saved when it is submitted."""

from __future__ import annotations

import logging

import streamlit as st

from aecore import board
from aecore.checkpoints import CheckpointError, runs_dir
from aecore.config import TrainConfig
from app_pages import _ui as ui

log = logging.getLogger("aecore.app")
NICKNAME = "board_nickname"  # kept across runs of this session


def guess_inputs(cfg: TrainConfig) -> tuple[float | None, str]:
    """The guess and nickname widgets; (None, "") while no guess is written."""
    task = board.task_of(cfg)
    left, right = st.columns(2)
    guess = left.number_input(
        "Your guess of the test PSNR (dB), optional",
        min_value=board.GUESS_RANGE[0],
        max_value=board.GUESS_RANGE[1],
        value=None,
        step=0.5,
        format="%.1f",
        key=f"board_guess_{cfg.key()}",
        help="Write it before you press Train: the Class board shows each guess against the "
        "result, so predictions get tested. Only guesses made before a result exists count.",
    )
    nickname = right.text_input(
        "Nickname on the board, optional",
        max_chars=board.NICK_MAX,
        key=NICKNAME,
        placeholder="anonymous",
    )
    st.caption(f"This run counts on the class board of the task *{task.title}*.")
    return guess, nickname


def save_guess(cfg: TrainConfig, guess: float | None, nickname: str) -> board.Guess | None:
    """Save the guess (if one was written) with the run's key; a guess that cannot be used or
    saved is explained and training goes on without it."""
    if guess is None:
        return None
    try:
        exists = ui.jobs().result(cfg) is not None
        return board.add_guess(
            runs_dir(), cfg, guess, nickname, ui.visitor_id(), result_exists=exists
        )
    except ValueError as err:
        st.warning(f"Your guess was not saved: {err}")
    except (OSError, CheckpointError) as err:
        log.warning("could not save a guess: %s", err)
        st.warning("Your guess could not be saved just now; the run trains all the same.")
    return None


def withdraw(guess: board.Guess | None) -> None:
    """Take back a guess whose run was not started (the queue refused it)."""
    if guess is None:
        return
    try:
        board.withdraw(runs_dir(), guess)
    except OSError as err:
        log.warning("could not withdraw a guess: %s", err)


def board_link() -> None:
    ui.page_link("app_pages/board.py", "Open the Class board", icon=":material/leaderboard:")
