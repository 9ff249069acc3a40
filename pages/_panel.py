"""The training-job panel: start a run, watch it live, cancel it, list this session's runs.

Worker threads never touch Streamlit: they write plain data into the job under its lock, and the
fragment below polls job.snapshot() once a second while the run is unfinished.
"""

from __future__ import annotations

import time

import streamlit as st

from aecore import plots
from aecore.config import TrainConfig
from aecore.jobs import Job, JobRejected
from pages import _ui as ui

POLL_SECONDS = 1.0
CANCELLED = "_cancelled_key"  # the key of the run this session cancelled last


def was_cancelled(cfg: TrainConfig) -> bool:
    """Whether this session cancelled its run of cfg (and has not started it again since)."""
    return st.session_state.get(CANCELLED) == cfg.key()


def find_job(cfg: TrainConfig) -> Job | None:
    """This session's newest job for cfg, if it started or joined one."""
    key = cfg.key()
    mine = [j for j in ui.jobs().jobs_for(ui.session_id()) if j.key == key]
    return mine[-1] if mine else None


def start(cfg: TrainConfig) -> None:
    """Submit cfg; a refusal is shown as a warning, and the page reruns to show the panel."""
    st.session_state.pop(CANCELLED, None)
    try:
        ui.jobs().submit(cfg, ui.session_id())
    except JobRejected as err:
        st.warning(str(err))
        return
    except ValueError as err:
        st.error(str(err))
        return
    st.rerun()


def _status_line(snap) -> None:
    if snap.status == "queued":
        where = f"position {snap.position}" if snap.position else "next"
        st.info(
            f"Waiting in the queue ({where}). Runs train one at a time, so each gets the whole "
            "CPU; this page updates by itself."
        )
        return
    epochs = snap.history[-1].epochs if snap.history else None
    elapsed = time.time() - (snap.started or time.time())
    if snap.fraction >= 1.0:  # the last batch is done; the runner now evaluates and saves
        st.progress(1.0, text=f"Trained in {elapsed:.0f} s. Now testing against the baselines...")
        st.caption(
            "The test set goes through the model, median filters and PCA; on a small CPU this "
            "can take as long as the training did."
        )
        return
    eta = elapsed * (1 - snap.fraction) / snap.fraction if snap.fraction > 0.02 else None
    text = f"Training: {snap.fraction:.0%}"
    if epochs:
        text += f", {len(snap.history)} of {epochs} epochs done"
    text += f", {elapsed:.0f} s so far"
    if eta is not None:
        text += f", about {eta:.0f} s to go"
    st.progress(snap.fraction, text=text)


def live_panel(job: Job, loss: str) -> None:
    """Progress, live curves, epoch time and a Cancel button; reruns the page once finished."""
    running = job.snapshot().active

    @st.fragment(run_every=POLL_SECONDS if running else None)
    def panel() -> None:
        snap = job.snapshot()
        if not snap.active:
            st.rerun()  # the whole page: it now shows the result, the error or the cancel
        _status_line(snap)
        if snap.history:
            last = snap.history[-1]
            st.caption(
                f"Last epoch: {last.seconds:.1f} s; validation PSNR {last.val_psnr_db:.2f} dB"
            )
            left, right = st.columns(2)
            left.plotly_chart(plots.loss_curves(snap.history, loss), key=f"live_loss_{job.key}")
            right.plotly_chart(plots.psnr_curve(snap.history), key=f"live_psnr_{job.key}")
        others = snap.subscribers - 1
        if others > 0:
            st.caption(f"{others} other session(s) wait for this same run; it is trained once.")
        if st.button("Cancel", key=f"cancel_{job.key}", icon=":material/stop:"):
            ui.jobs().cancel(job.key, ui.session_id())
            st.session_state[CANCELLED] = job.key  # the manager forgets it; the page should not
            st.rerun()

    panel()


def my_runs(current: TrainConfig) -> None:
    """This session's other runs, with a button that loads one's settings."""
    others = [j for j in ui.jobs().jobs_for(ui.session_id()) if j.key != current.key()]
    if not others:
        return
    with st.expander(f"Your other runs ({len(others)})"):
        for job in reversed(others):
            snap = job.snapshot()
            left, mid, right = st.columns([5, 2, 1], vertical_alignment="center")
            left.write(ui.run_label(job.config))
            mid.write(f"{snap.status} {snap.fraction:.0%}" if snap.active else snap.status)
            if right.button("Open", key=f"open_{job.key}"):
                ui.open_config(job.config)
                st.rerun()
