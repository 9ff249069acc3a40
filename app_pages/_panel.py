"""The training-job panel: start a run, watch it live, cancel it, list this session's runs.

Worker threads never touch Streamlit: they write plain data into the job under its lock, and
poll() below, the one polling fragment of the app (training runs, the sweep, the classifier),
redraws once a second while the work is unfinished.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import streamlit as st

from aecore import plots
from aecore.checkpoints import CheckpointUnavailable
from aecore.config import TrainConfig
from aecore.jobs import Job, JobRejected, SessionLimit, Task
from app_pages import _ui as ui
from app_pages import _watch as watching

POLL_SECONDS = 1.0
CANCELLED = "_cancelled_key"  # the key of the run this session cancelled last


def seconds(value: float) -> str:
    """A duration for people: "0.4 s", "9.2 s", "73 s"."""
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


def cancel_message(cfg: TrainConfig, snap) -> str | None:
    """What happened to this session's run of cfg if it was cancelled (by this session's Cancel,
    or by the server), else None."""
    mine = st.session_state.get(CANCELLED)
    if mine is not None and mine[0] == cfg.key():
        if mine[1]:
            return "The run was cancelled; nothing was saved."
        others = ui.jobs().waiting(cfg.key())
        if others:
            return (
                f"You stopped waiting for this run, but {others} other session(s) still wait for "
                "it, so it goes on and is saved: it opens here when it is done."
            )
        return "You stopped waiting for this run; it finished for the others who waited."
    if snap is not None and snap.status == "cancelled":
        why = f": {snap.reason}" if snap.reason else ""
        return f"The run was cancelled{why}. Nothing was saved."
    return None


def find_job(cfg: Task) -> Job | None:
    """This session's newest job for cfg, if it started or joined one."""
    key = cfg.key()
    mine = [j for j in ui.jobs().jobs_for(ui.session_id()) if j.key == key]
    return mine[-1] if mine else None


def start(cfg: Task) -> None:
    """Submit cfg; a refusal is shown as a warning, and the page reruns to show the panel."""
    st.session_state.pop(CANCELLED, None)
    try:
        ui.jobs().submit(cfg, ui.session_id(), ui.visitor_id())
    except (JobRejected, CheckpointUnavailable) as err:
        st.warning(str(err))
        return
    except ValueError as err:
        st.error(str(err))
        return
    st.rerun()


def _status_line(snap) -> None:
    if snap.status == "queued":
        # A training cluster (aecore.cluster) hands runs to its workers without a queue position.
        where = f"Waiting in the queue (position {snap.position})" if snap.position else "Waiting"
        st.info(f"{where} for a free training slot; this page updates by itself.")
        return
    epochs = snap.history[-1].epochs if snap.history else None
    elapsed = time.time() - (snap.started or time.time())
    if snap.fraction >= 1.0:  # the last batch is done; the runner now evaluates and saves
        trained = snap.train_seconds if snap.train_seconds is not None else elapsed
        text = f"Trained in {seconds(trained)}. Now testing against the baselines"
        if snap.test_seconds is not None:
            text += f": {seconds(snap.test_seconds)} so far"
        st.progress(1.0, text=text + "...")
        st.caption(
            "The test set goes through the model, median filters and PCA; on a small CPU this "
            "can take as long as the training did."
        )
        return
    eta = elapsed * (1 - snap.fraction) / snap.fraction if snap.fraction > 0.02 else None
    if snap.paused:  # the clock runs on while it waits: no estimate
        eta = None
    text = f"{'Paused' if snap.paused else 'Training'}: {snap.fraction:.0%}"
    if epochs:
        text += f", {len(snap.history)} of {epochs} epochs done"
    text += f", {elapsed:.0f} s so far"
    if eta is not None:
        text += f", about {eta:.0f} s to go"
    st.progress(snap.fraction, text=text)


def poll(draw: Callable[[], bool], running: bool = True) -> None:
    """Draw background work and redraw it every POLL_SECONDS while draw() returns True (still
    waiting); once it returns False, rerun the whole page, which now shows the result. Each poll
    tells the job manager that this session still watches its runs."""

    @st.fragment(run_every=POLL_SECONDS if running else None)
    def fragment() -> None:
        ui.jobs().touch(ui.session_id())
        if not draw():
            st.rerun()

    fragment()


def live_panel(job: Job, loss: str) -> None:
    """Progress, live curves, epoch time, what the model makes of 8 test images (refreshed with
    each snapshot), Pause / Resume / Step and Cancel; reruns the page once finished."""
    poll(lambda: _draw_live(job, loss), running=job.snapshot().active)


def _draw_live(job: Job, loss: str) -> bool:
    snap = job.snapshot()
    if not snap.active:
        return False  # the whole page: it now shows the result, the error or the cancel
    _status_line(snap)
    cancel_here = watching.controls(job, snap)  # Pause / Resume / Step, for a training run
    if cancel_here.button("Cancel", key=f"cancel_{job.key}", icon=":material/stop:"):
        stopped = ui.jobs().cancel(job.key, ui.session_id())
        # The manager forgets this session's part in the run; the page should not.
        st.session_state[CANCELLED] = (job.key, stopped)
        st.rerun()
    if snap.history:
        last = snap.history[-1]
        st.caption(f"Last epoch: {last.seconds:.1f} s; validation PSNR {last.val_psnr_db:.2f} dB")
    if snap.watch is not None and isinstance(job.config, TrainConfig):
        watching.live(snap, job.config)  # the 8 images, per-batch loss, codes
    elif snap.history:
        left, right = st.columns(2)
        left.plotly_chart(plots.loss_curves(snap.history, loss), key=f"live_loss_{job.key}")
        right.plotly_chart(plots.psnr_curve(snap.history), key=f"live_psnr_{job.key}")
    others = snap.subscribers - 1
    if others > 0:
        st.caption(f"{others} other session(s) wait for this same run; it is trained once.")
    return True


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


def submit_missing(cfgs: list[TrainConfig]) -> str | None:
    """Submit the runs of cfgs that this session's limits allow (the rest waits for a later
    poll: the views that train several missing runs call this on every poll); returns the
    manager's message when it refused for another reason (a full queue, a run too long)."""
    for cfg in cfgs:
        job = find_job(cfg)
        if job is not None and job.snapshot().status in ("queued", "running", "done"):
            continue
        try:
            ui.jobs().submit(cfg, ui.session_id(), ui.visitor_id())
        except SessionLimit:
            return None  # submitted again when one of ours finishes
        except JobRejected as err:
            return str(err)
    return None


def run_lines(cfgs: list[TrainConfig], name: Callable[[TrainConfig], str]) -> tuple[list, int]:
    """One markdown line per run of cfgs ("- name: running 40%"), and how many have finished:
    trained, failed or cancelled (the views that train several missing runs show these)."""
    lines, finished = [], 0
    for cfg in cfgs:
        job = find_job(cfg)
        snap = job.snapshot() if job else None
        if ui.trained_run(cfg) is not None:
            finished, state = finished + 1, "done"
        elif snap is None:
            state = "waiting for a free slot (two runs per visitor at a time)"
        elif not snap.active:  # failed or cancelled
            finished, state = finished + 1, f"{snap.status}: {snap.error or snap.reason or '-'}"
        else:
            state = f"{snap.status} {snap.fraction:.0%}"
        lines.append(f"- {name(cfg)}: {state}")
    return lines, finished


def forget_wanted(state_key: str, cfgs: list[TrainConfig]) -> None:
    """Drop cfgs' keys from the session's list under state_key (the runs a view asked for)."""
    wanted = st.session_state.get(state_key, [])
    for cfg in cfgs:
        if cfg.key() in wanted:
            wanted.remove(cfg.key())
