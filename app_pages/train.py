"""Train: pick a configuration, see the model's layers, train it live, read its test results."""

import streamlit as st

from aecore import plots
from aecore.bundle import run_bundle
from aecore.checkpoints import checkpoint_name
from aecore.config import epochs_text
from aecore.corruptions import has_level
from aecore.data import DATASETS
from app_pages import _board as board_view
from app_pages import _panel as panel
from app_pages import _ui as ui
from app_pages import _views as views
from app_pages import _watch as watch_view


def run_times(info: dict, snap) -> str:
    """The two phases of a run, timed apart: "trained in 9 s and tested in 4 s on cpu". A run
    loaded from its file knows its training time only (the file does not keep the testing
    time)."""
    train_s = info.get("train_seconds")
    test_s = info.get("test_seconds")
    if test_s is None and snap is not None and not snap.cached:
        test_s = snap.test_seconds
    if not train_s:
        return "trained"
    how = f"trained in {panel.seconds(train_s)}"
    if test_s is not None:
        how += f" and tested in {panel.seconds(test_s)}"
    return how + f" on {info.get('device', '?')}"


st.title("Train an autoencoder")
ui.keep_alive()  # and, after a restart, tell this visitor if a run of theirs was dropped
cfg = ui.config_sidebar()
ds = ui.dataset(cfg.dataset)
n_train = len(ds.train_images)

layers, total_params = ui.model_summary(cfg)
left, right = st.columns([2, 3], gap="large")
with left:
    st.subheader("This run")
    st.markdown(
        f"**{ui.run_label(cfg)}**  \n"
        f"{len(ds.train_images):,} training images of {ds.shape[1]}x{ds.shape[2]}"
        f"{f', first {cfg.limit_train:,} used' if 0 < cfg.limit_train < n_train else ''}; "
        f"{epochs_text(cfg.epochs)}, batch {cfg.batch_size}, {cfg.optimizer} at lr {cfg.lr:g}, "
        f"{cfg.loss.upper()} loss"
        f"{', bfloat16 mixed arithmetic' if cfg.precision == 'bf16' else ''}."
    )
    st.metric("Trainable parameters", f"{total_params:,}")
with right:
    st.subheader("Layers")
    st.dataframe(layers, hide_index=True, height=min(420, 38 + 35 * len(layers)))

job = panel.find_job(cfg)
snap = job.snapshot() if job else None
ckpt = ui.trained_run(cfg)  # memory, then the runs folder, then the bundled checkpoints

st.divider()
if ckpt is None and snap is not None and snap.active:
    panel.live_panel(job, cfg.loss)
elif ckpt is None:
    if snap is not None and snap.status == "failed":
        st.error(snap.error or "The run failed.")
    elif (message := panel.cancel_message(cfg, snap)) is not None:
        st.info(message)
    st.write("Not trained yet. Training runs in the background; you can leave this page.")
    guess, nickname = board_view.guess_inputs(cfg)  # an optional prediction, for the board
    if st.button("Train", type="primary", key="train", icon=":material/play_arrow:"):
        saved = board_view.save_guess(cfg, guess, nickname)
        panel.start(cfg)  # reruns the page once the run is submitted
        board_view.withdraw(saved)  # refused: the guess goes too
    board_view.board_link()
else:
    trained_here = snap is not None and not snap.cached
    how = run_times(ckpt.info, snap)
    if trained_here:
        st.success(f"Done: {how}.")
    else:
        st.success(f"Cached: this configuration was {how} before; loaded from its checkpoint.")
    st.subheader("Test results")
    views.metrics_table(
        ckpt.metrics,
        f"All {DATASETS[cfg.dataset].label} test images, corrupted with one fixed seed for every "
        "method.",
        corrupted=has_level(cfg.corruption),
        best=ui.strongest_classical(ui.dataset(cfg.dataset), cfg.corruption, cfg.level),
    )
    st.subheader("Original, corrupted and reconstructed test images")
    views.recon_grid(ckpt)
    st.subheader("Training curves")
    left, right = st.columns(2)
    left.plotly_chart(plots.loss_curves(ckpt.history, cfg.loss), key="curves")
    right.plotly_chart(plots.psnr_curve(ckpt.history), key="psnr_curve")
    watch_view.replay(ckpt)  # a slider through the snapshots taken while it trained
    st.subheader("Downloads")
    left, right = st.columns(2)
    if ui.checkpoint_bytes(ckpt, read=False) is not None:
        left.download_button(
            "Download the trained model (PyTorch file)",
            lambda: ui.checkpoint_bytes(ckpt),  # read when clicked, not on every rerun
            file_name=checkpoint_name(cfg),
            mime="application/octet-stream",
            on_click="ignore",
            icon=":material/download:",
        )
        left.caption(
            "The trained weights with this run's settings and test results. This lab's Python "
            "package loads it again, checking the file before it trusts it."
        )
    right.download_button(
        "Download the run bundle (.zip)",
        lambda: run_bundle(ckpt),  # built only when clicked: it reconstructs test images
        file_name=f"{cfg.model}-{cfg.dataset}-{cfg.key()}.zip",
        mime="application/zip",
        on_click="ignore",
        icon=":material/folder_zip:",
        key="bundle_zip",
    )
    right.caption(
        "Config and metrics (JSON), history per epoch (CSV), test-image grids (PNG), a README "
        "and the checkpoint."
    )
panel.my_runs(cfg)
