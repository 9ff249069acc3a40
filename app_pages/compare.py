"""Compare runs: several trained models side by side on the same corrupted test images; the
classic code-size sweep against PCA; the runs' outputs as a classifier's input; and U-Nets
trained on one corruption tested on every other (the generalisation matrix)."""

import dataclasses
import string

import pandas as pd
import streamlit as st

from aecore import plots
from aecore.checkpoints import Checkpoint
from aecore.corruptions import CORRUPTIONS, has_level
from aecore.data import DATASETS
from aecore.evaluate import reconstruct
from aecore.models import MODELS, count_params
from app_pages import _classify as classify_view
from app_pages import _generalisation as generalisation_view
from app_pages import _panel as panel
from app_pages import _sweep as sweep_view
from app_pages import _ui as ui

SHARED_IMAGES = 500  # test images behind the "on these inputs" numbers
MAX_RUNS = 6
SIDE, SWEEP, CLASSIFY = "Side by side", "Code size vs PCA", "As classifier input"
ACROSS = "Generalisation"


def trained_on(c: Checkpoint) -> str:
    """The corruption a run was trained on, in words: "Gaussian noise, sigma = 0.5"."""
    cfg = c.config
    if not has_level(cfg.corruption):
        return "no corruption"
    meta = CORRUPTIONS[cfg.corruption].meta
    level = f"{cfg.level:g}" if cfg.level_sampling == "fixed" else f"0 to {cfg.level:g}"
    return f"{CORRUPTIONS[cfg.corruption].label}, {meta['level_name']} = {level}"


def _training_time(c: Checkpoint) -> str:
    seconds, per_epoch = c.info.get("train_seconds"), c.metrics.get("sec_per_epoch")
    if not seconds:
        return "-"
    return panel.seconds(seconds) + (f" ({per_epoch:.1f} s per epoch)" if per_epoch else "")


def runs_table(picked: dict[str, Checkpoint]) -> None:
    """Which run is which: names and models in full (a static table wraps long cells instead of
    cutting them off), with what each cost to train."""
    rows = [
        {
            "run": letter,
            "name": ui.run_label(c.config),
            "model": MODELS[c.config.model].label,
            "trained on": trained_on(c),
            "parameters": f"{count_params(c.model):,}",
            "epochs": len(c.history),
            "training time": _training_time(c),
        }
        for letter, c in picked.items()
    ]
    st.table(pd.DataFrame(rows).set_index("run"))


st.title("Compare runs")
runs = ui.saved_runs()  # configs and test metrics from the index: no weights loaded yet
if not runs:
    st.info("No trained runs yet: train two or three, then compare them here.")
    ui.page_link("app_pages/train.py", "Open Train", icon=":material/model_training:")
    st.stop()

datasets = sorted({ckpt.config.dataset for ckpt in runs})
dataset = st.columns([2, 3])[0].selectbox(
    "Dataset", datasets, key="cmp_dataset", format_func=lambda name: DATASETS[name].label
)
# One view at a time: each costs test-set passes, so only the one shown is computed.
# Its own row: four views do not fit beside the dataset on a 1024-pixel projector.
view = st.segmented_control(
    "View", [SIDE, SWEEP, CLASSIFY, ACROSS], default=SIDE, required=True, key="cmp_view"
)
if view == SWEEP:
    sweep_view.show(dataset)
    st.stop()
if view == ACROSS:
    generalisation_view.show(dataset)
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
loaded = [ui.load_run(candidates[label].path, warn=True) for label in chosen]  # weights now
loaded = [c for c in loaded if c is not None]  # load_run said why a run cannot be opened
if not loaded:
    st.stop()
picked = {string.ascii_uppercase[i]: c for i, c in enumerate(loaded)}
runs_table(picked)

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
    f"Level: {meta['level_name']}",
    key=f"cmp_level_{dataset}_{corruption}",
    start=start,
)
level = level or 0.0
if view == CLASSIFY:
    classify_view.show(dataset, picked, corruption, level)
    st.stop()

inputs = dataclasses.replace(first, corruption=corruption, level=level)
clean, noisy = ui.test_images(inputs, 10)

rows = {"Original": clean, "Corrupted": noisy}
rows |= {
    f"{letter}: {MODELS[c.config.model].label}": reconstruct(c.model, noisy)
    for letter, c in picked.items()
}
st.caption("Rows A, B, ...: each run's reconstruction of the same corrupted images.")
st.plotly_chart(plots.image_grid(rows), width="content", key="cmp_grid")

shared = {
    letter: ui.evaluate_at(c, corruption, level, SHARED_IMAGES, pca=False)
    for letter, c in picked.items()
}
table = pd.DataFrame(
    [
        {
            "run": letter,
            "PSNR here (dB)": shared[letter]["test_psnr"],
            "SSIM here": shared[letter]["test_ssim"],
            "PSNR, own corruption (dB)": c.metrics.get("test_psnr"),
            "SSIM, own corruption": c.metrics.get("test_ssim"),
        }
        for letter, c in picked.items()
    ]
).set_index("run")
st.dataframe(
    table.style.format(
        {
            "PSNR here (dB)": "{:.2f}",
            "SSIM here": "{:.3f}",
            "PSNR, own corruption (dB)": "{:.2f}",
            "SSIM, own corruption": "{:.3f}",
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
if has_level(corruption) and level > 0:  # an uncorrupted input would score the 100 dB cap
    references = {"corrupted input": any_metrics["test_psnr_noisy"]}
    references["median 3x3"] = any_metrics["test_psnr_median3"]
    best = ui.strongest_classical(ui.dataset(dataset), corruption, level, SHARED_IMAGES)
    references["best classical"] = best.psnr
st.plotly_chart(
    plots.metric_bars(
        {letter: m["test_psnr"] for letter, m in shared.items()}, "PSNR here (dB)", references
    ),
    key="cmp_bars",
)
if references:
    st.caption(best.describe())
