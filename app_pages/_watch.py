"""Watch a run learn: its snapshots live (with Pause, Resume, Step) and, once it is done, a
slider through the snapshots it kept (aecore.watch). Drawn by the live panel and the Train page."""

from __future__ import annotations

import streamlit as st

from aecore import plots
from aecore import watch_plots as wp
from aecore.checkpoints import Checkpoint
from aecore.config import TrainConfig
from aecore.corruptions import has_level
from aecore.jobs import Job, JobSnapshot
from aecore.watch import STEP_MAX_PARAMS, Snapshot, Watch
from app_pages import _ui as ui

MESSAGE = "_watch_message"  # (key, text): a refusal to show on the next draw


def _when(snap: Snapshot) -> str:
    return f"after {snap.step:,} batches (epoch {snap.epoch:.2f}), {snap.seconds:.0f} s in"


def controls(job: Job, snap: JobSnapshot):
    """Pause, or Resume and Step, and what the pause means (clicks rerun the page). Returns
    where the caller's Cancel button goes: beside them."""
    watch = snap.watch
    if watch is None or snap.fraction >= 1.0 or not ui.jobs().can_pause:
        return st.container()
    key, me = job.key, ui.session_id()
    shared = snap.subscribers > 1
    # Wide enough for "Resume" and its icon at 1024x768 (narrower ones cut it to "Re…").
    cols = st.columns([2, 2, 2, 3], vertical_alignment="center")
    if not snap.paused:
        help_ = "Others watch this run too: only a run nobody else waits for can pause."
        if cols[0].button(
            "Pause",
            key=f"pause_{key}",
            icon=":material/pause:",
            disabled=shared,
            help=help_ if shared else "Stop before the next batch and look.",
        ):
            _done(key, ui.jobs().pause(key, me))
    else:
        if cols[0].button("Resume", key=f"resume_{key}", icon=":material/play_arrow:"):
            ui.jobs().resume(key, me)
            _done(key, None)
        small = watch.can_step
        if cols[1].button(
            "Step",
            key=f"step_{key}",
            icon=":material/skip_next:",
            disabled=not small,
            help=f"Train one batch, then pause again (models of up to {STEP_MAX_PARAMS:,} "
            f"parameters; this one has {watch.params:,}).",
        ):
            _done(key, ui.jobs().step(key, me))
    if snap.paused and not snap.held:  # asked, not there yet: the latest picture is older
        cols[3].caption("Pausing: the run stops before its next batch.")
    elif snap.paused:
        cols[3].caption(
            f"Paused {_when(watch.latest)}. The trainer waits for you; if other runs are "
            f"queued, it resumes by itself after {ui.jobs().pause_seconds:g} s."
        )
    told = st.session_state.get(MESSAGE)
    if told and told[0] == key:
        st.info(told[1])
    if snap.note:
        st.info(snap.note, icon=":material/play_arrow:")
    return cols[2]


def _done(key: str, refusal: str | None) -> None:
    if refusal:
        st.session_state[MESSAGE] = (key, refusal)
    else:
        st.session_state.pop(MESSAGE, None)
    st.rerun()


def live(snap: JobSnapshot, cfg: TrainConfig) -> None:
    """The newest snapshot: the 8 images, per-batch and per-epoch losses, codes and PSNR."""
    watch = snap.watch
    st.markdown(f"**What the model makes of 8 test images now** ({_when(watch.latest)})")
    st.plotly_chart(
        _recon(watch, watch.latest, cfg), width="content", key=f"live_recon_{cfg.key()}"
    )
    unit = wp.loss_unit(cfg.model, cfg.loss)
    left, right = st.columns(2)
    left.caption("Loss per batch")
    left.plotly_chart(
        wp.batch_loss_figure(watch, watch.latest.step, unit), key=f"live_batch_{cfg.key()}"
    )
    right.caption("Loss per epoch")
    if snap.history:
        right.plotly_chart(plots.loss_curves(snap.history, cfg.loss), key=f"live_loss_{cfg.key()}")
    else:
        right.write("The first point comes at the end of the first epoch.")
    codes = wp.code_figure(watch, watch.latest)
    if codes is not None or snap.history:
        left, right = st.columns(2)
        if codes is not None:
            left.caption(f"The 2-D codes of {len(watch.code_labels)} test images")
            left.plotly_chart(codes, key=f"live_codes_{cfg.key()}")
        if snap.history:
            right.caption("Validation PSNR per epoch")
            right.plotly_chart(plots.psnr_curve(snap.history), key=f"live_psnr_{cfg.key()}")


def _recon(watch: Watch, snap: Snapshot, cfg: TrainConfig):
    return wp.recon_figure(watch, snap, corrupted=has_level(cfg.corruption))


def replay(ckpt: Checkpoint) -> None:
    """A finished run: a slider through its kept snapshots, from before the first batch to the
    end, with the images, the loss so far and the codes at that moment."""
    cfg, watch = ckpt.config, ckpt.watch
    st.subheader("How it learned")
    if watch is None or not watch.snapshots:
        st.caption(
            "This run was saved without snapshots of its training (an older file); train it "
            "again to watch it learn."
        )
        return
    snaps = watch.snapshots
    labels = [f"batch {s.step:,} (epoch {s.epoch:.2f})" for s in snaps]
    chosen = st.select_slider(
        "Scrub through training",
        options=list(range(len(snaps))),
        value=len(snaps) - 1,
        format_func=lambda i: labels[i],
        key=f"scrub_{cfg.key()}",
        help=f"{len(snaps)} snapshots kept, taken {_schedule()}.",
    )
    snap = snaps[chosen]
    st.caption(f"The model {_when(snap)}: snapshot {chosen + 1} of {len(snaps)}.")
    st.plotly_chart(_recon(watch, snap, cfg), width="content", key="scrub_recon")
    left, right = st.columns(2)
    left.caption("Loss per batch (grey: still to come)")
    unit = wp.loss_unit(cfg.model, cfg.loss)
    left.plotly_chart(wp.batch_loss_figure(watch, snap.step, unit, whole=True), key="scrub_loss")
    codes = wp.code_figure(watch, snap, wp.code_bounds(watch))
    if codes is not None:
        right.caption(f"The 2-D codes of {len(watch.code_labels)} test images")
        right.plotly_chart(codes, key="scrub_codes")


def _schedule() -> str:
    return (
        "before the first batch, after batches 1, 2, 4, ..., 256, every few seconds and at "
        "epoch ends (thinned evenly)"
    )
