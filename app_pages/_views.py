"""Views of a finished run that several pages show: test metrics and the reconstruction grid."""

from __future__ import annotations

import streamlit as st

from aecore import plots
from aecore.best_classical import BestClassical
from aecore.checkpoints import Checkpoint
from aecore.config import TrainConfig
from aecore.corruptions import has_level
from aecore.evaluate import reconstruct
from aecore.metrics import METHODS, METRICS
from app_pages import _ui as ui

METRIC_FORMAT = dict(METRICS.values())  # column label -> display format
# Key suffixes of the methods that compare only on corrupted inputs (the corrupted input itself).
CORRUPTED_ONLY = tuple(suffix for suffix, method in METHODS.items() if method.corrupted_only)


def metrics_table(
    metrics: dict[str, float],
    caption: str,
    corrupted: bool = True,
    best: BestClassical | None = None,
) -> None:
    """The model against the corrupted input and the classical baselines: headline numbers, then
    the table. `metrics` has Checkpoint.metrics' keys (test_psnr, test_psnr_noisy, ...); `best`,
    the best tuned classical method on the same images, joins them. Without corruption the input
    is the target itself, so only the compressors (PCA) compare."""
    m = dict(metrics) | (best.metrics() if best is not None and corrupted else {})
    if not corrupted:
        m = {k: v for k, v in m.items() if not k.endswith(CORRUPTED_ONLY)}
    table = plots.metrics_table(m)
    if table.empty:
        st.info("No test metrics for this run.")
        return
    from aecore.quality import check  # a collapsed run, or one worse than its input

    warning = check(m, corrupted=corrupted)
    if warning:
        st.warning(warning, icon=":material/warning:")
    cols = st.columns(3)
    if corrupted:
        gain = f"{m['test_psnr'] - m['test_psnr_noisy']:+.2f} dB vs the corrupted input"
        cols[0].metric("Autoencoder PSNR", f"{m['test_psnr']:.2f} dB", gain)
    else:
        cols[0].metric("Reconstruction PSNR", f"{m['test_psnr']:.2f} dB")
    baselines = {
        k: v for k, v in m.items() if k.startswith("test_psnr_") and k != "test_psnr_noisy"
    }
    if baselines:
        top = max(baselines, key=baselines.get)
        name = _method_label(top.removeprefix("test_psnr"), top)
        if top == "test_psnr_best" and best is not None:
            name = best.label
        cols[1].metric(
            "Best classical baseline: " + name,
            f"{baselines[top]:.2f} dB",
            f"{m['test_psnr'] - baselines[top]:+.2f} dB: the autoencoder's margin",
        )
    cols[2].metric("Autoencoder SSIM", f"{m.get('test_ssim', float('nan')):.3f}")
    st.dataframe(table.style.format(METRIC_FORMAT, na_rep="-"))
    if best is not None and corrupted:
        caption += " " + best.describe()
    st.caption(caption + " PSNR and SSIM: higher is better; MSE: lower is better.")


def _method_label(suffix: str, default: str) -> str:
    method = METHODS.get(suffix)
    return method.label if method is not None else default


def recon_grid(ckpt: Checkpoint, n: int = 10, key: str = "grid") -> None:
    """Original / corrupted / reconstructed rows of the first n test images, with a PNG download."""
    clean, noisy = ui.test_images(ckpt.config, n)
    rows = {"Original": clean, "Corrupted": noisy, "Reconstructed": reconstruct(ckpt.model, noisy)}
    if not has_level(ckpt.config.corruption):
        del rows["Corrupted"]
    st.plotly_chart(plots.image_grid(rows), width="content", key=key)
    st.download_button(
        "Download this grid (PNG)",
        lambda: plots.grid_png(rows),  # encoded when clicked, not on every rerun
        file_name=f"{ckpt.config.model}-{ckpt.config.key()}-grid.png",
        mime="image/png",
        on_click="ignore",
        key=f"{key}_png",
        icon=":material/download:",
    )


def require_trained(cfg: TrainConfig) -> Checkpoint:
    """The finished run for cfg; otherwise a way to get one (train it, or open a saved run) and
    the page stops."""
    ckpt = ui.trained_run(cfg)
    if ckpt is not None:
        return ckpt
    st.info(
        f"**{ui.run_label(cfg)}** is not trained yet. Train it, or open a run that was trained "
        "before (this loads its settings into the sidebar).",
        icon=":material/hourglass_empty:",
    )
    ui.page_link("app_pages/train.py", "Train this configuration", icon=":material/model_training:")
    saved = ui.saved_runs()  # labels and metrics from the index; opening needs only the config
    for i, other in enumerate(saved[:12]):
        left, right = st.columns([5, 1], vertical_alignment="center")
        psnr = other.metrics.get("test_psnr")
        left.write(ui.run_label(other.config) + (f" ({psnr:.2f} dB)" if psnr else ""))
        if right.button("Open", key=f"open_saved_{i}"):
            ui.open_config(other.config)
            st.rerun()
    st.stop()
