"""Compare runs: several trained models side by side on the same corrupted test images; the
classic code-size sweep against PCA; and the runs' outputs as a classifier's input."""

import dataclasses
import string

import pandas as pd
import streamlit as st

from aecore import plots
from aecore.corruptions import CORRUPTIONS
from aecore.evaluate import reconstruct
from aecore.models import count_params
from pages import _classify as classify_view
from pages import _sweep as sweep_view
from pages import _ui as ui

SHARED_IMAGES = 500  # test images behind the "on these inputs" numbers
MAX_RUNS = 6
SIDE, SWEEP, CLASSIFY = "Side by side", "Code size vs PCA", "As classifier input"

ui.ensure_router()
st.title("Compare runs")
runs = [ckpt for ckpt in map(ui.load_run, ui.saved_run_paths()) if ckpt is not None]
if not runs:
    st.info("No trained runs yet: train two or three, then compare them here.")
    ui.page_link("pages/train.py", "Open Train", icon=":material/model_training:")
    st.stop()

datasets = sorted({ckpt.config.dataset for ckpt in runs})
top = st.columns([1, 3], vertical_alignment="bottom")
dataset = top[0].selectbox("Dataset", datasets, key="cmp_dataset")
# One view at a time: each costs test-set passes, so only the one shown is computed.
view = top[1].segmented_control(
    "View", [SIDE, SWEEP, CLASSIFY], default=SIDE, required=True, key="cmp_view"
)
if view == SWEEP:
    sweep_view.show(dataset)
    st.stop()

candidates = {ui.run_label(c.config): c for c in runs if c.config.dataset == dataset}
chosen = st.multiselect(
    f"Runs (up to {MAX_RUNS})",
    list(candidates),
    default=list(candidates)[:3],
    max_selections=MAX_RUNS,
    key=f"cmp_runs_{dataset}",
)
if not chosen:
    st.info("Pick at least one run.")
    st.stop()
picked = {string.ascii_uppercase[i]: candidates[label] for i, label in enumerate(chosen)}

# The shared inputs: corrupted like the first run unless changed here.
first = next(iter(picked.values())).config
left, right = st.columns(2)
names = CORRUPTIONS.names()
corruption = left.selectbox(
    "Corrupt the inputs with",
    names,
    index=names.index(first.corruption),
    format_func=lambda name: CORRUPTIONS[name].label,
    key=f"cmp_corruption_{dataset}",  # per dataset: each starts from its own first run
)
meta = CORRUPTIONS[corruption].meta
start = first.level if corruption == first.corruption else meta["default"]
level = ui.level_slider(
    right,
    corruption,
    start,
    f"Level: {meta['level_name']}",
    key=f"cmp_level_{dataset}_{corruption}",
)
level = level or 0.0
if view == CLASSIFY:
    classify_view.show(dataset, picked, corruption, level)
    st.stop()

inputs = dataclasses.replace(first, corruption=corruption, level=level)
clean, noisy = ui.test_images(inputs, 10)

rows = {"Original": clean, "Corrupted": noisy}
rows |= {f"{letter}: {c.config.model}": reconstruct(c.model, noisy) for letter, c in picked.items()}
st.caption("Rows A, B, ...: each run's reconstruction of the same corrupted images.")
st.plotly_chart(plots.image_grid(rows), width="content", key="cmp_grid")

shared = {
    letter: ui.evaluate_at(c, c.config.key(), corruption, level, SHARED_IMAGES)
    for letter, c in picked.items()
}
table = pd.DataFrame(
    [
        {
            "run": letter,
            "name": ui.run_label(c.config),
            "model": c.config.model,
            "trained on": f"{c.config.corruption} {c.config.level:g}",
            "params": count_params(c.model),
            "epochs": len(c.history),
            "train time (s)": c.info.get("train_seconds"),
            "s per epoch": c.metrics.get("sec_per_epoch"),
            "PSNR here (dB)": shared[letter]["test_psnr"],
            "SSIM here": shared[letter]["test_ssim"],
            "test PSNR, own corruption (dB)": c.metrics.get("test_psnr"),
            "test SSIM, own corruption": c.metrics.get("test_ssim"),
        }
        for letter, c in picked.items()
    ]
).set_index("run")
st.dataframe(
    table.style.format(
        {
            "params": "{:,}",
            "train time (s)": "{:.0f}",
            "s per epoch": "{:.1f}",
            "PSNR here (dB)": "{:.2f}",
            "SSIM here": "{:.3f}",
            "test PSNR, own corruption (dB)": "{:.2f}",
            "test SSIM, own corruption": "{:.3f}",
        },
        na_rep="-",
    )
)
st.caption(
    f"'Here': the first {SHARED_IMAGES} test images corrupted as chosen above, the same for "
    "every run. 'Own corruption': the run's whole test set at the corruption it was trained on."
)
any_metrics = next(iter(shared.values()))
references = {}
if corruption != "none" and level > 0:  # an uncorrupted input would score the 100 dB cap
    references = {"corrupted input": any_metrics["test_psnr_noisy"]}
    references["median 3x3"] = any_metrics["test_psnr_median3"]
st.plotly_chart(
    plots.metric_bars(
        {letter: m["test_psnr"] for letter, m in shared.items()}, "PSNR here (dB)", references
    ),
    key="cmp_bars",
)
