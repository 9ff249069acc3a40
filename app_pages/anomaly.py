"""Anomaly detection: an autoencoder trained on normal images only reconstructs anything else
worse, so its reconstruction error flags anomalies.

The cases, scores, ROC and figures come from aecore.anomaly; a case whose run is not trained gets
a button that trains it in the background (the same job runner and live panel as Train).
"""

import numpy as np
import streamlit as st
import torch

from aecore import anomaly, plots
from aecore.anomaly import AnomalyCase
from aecore.checkpoints import CheckpointUnavailable
from aecore.data import DATASETS, available_offline, to_float
from aecore.evaluate import reconstruct
from app_pages import _panel as panel
from app_pages import _ui as ui

SHOWN = 6  # test images in each of the two extreme grids

HOW_TO_READ = (
    "**How to read it.** The autoencoder only ever saw the normal images, so it reconstructs "
    "them well and anything else worse: the anomalies' errors (orange) lie further right than "
    "the normal ones (blue). Every image to the right of the dashed threshold is flagged as "
    "anomalous. Move it right and fewer normal images are flagged (fewer false alarms), but more "
    "anomalies slip through; move it left for the opposite. The ROC curve shows every threshold "
    "at once: the AUC is the chance that a random anomaly scores higher than a random normal "
    "image (1: the sets never overlap; 0.5: no better than a coin toss)."
)


def dataset_label(name: str) -> str:
    return DATASETS[name].label + ("" if available_offline(name) else " (not downloaded)")


def default_dataset() -> str:
    """The session's dataset when it is on this machine, else the bundled digits."""
    names = list(DATASETS.names())
    for name in (ui.current_values()["dataset"], ui.default_config().dataset):
        if name in names and available_offline(name):
            return name
    return next(n for n in names if DATASETS[n].meta["folder"] is None)


def is_trained(case: AnomalyCase) -> bool:
    """Whether the case's run is finished; a file that cannot be read just now counts as not."""
    try:
        return ui.jobs().result(case.config) is not None
    except CheckpointUnavailable:
        return False


def pick_case() -> AnomalyCase:
    """The dataset, then one of its cases; the first trained case is preselected."""
    names = list(DATASETS.names())
    left, right = st.columns([2, 3])
    dataset = left.selectbox(
        "Dataset",
        names,
        names.index(default_dataset()),
        format_func=dataset_label,
        key="anom_dataset",
    )
    cases = anomaly.case_configs(dataset)
    trained = [is_trained(c) for c in cases]
    index = right.radio(
        "Normal and anomalous images",
        range(len(cases)),
        trained.index(True) if any(trained) else 0,
        # Labels that never change while the page is open: the radio keeps its choice by label.
        format_func=lambda i: cases[i].title + missing_data(cases[i]),
        key=f"anom_case_{dataset}",
        help="The model trains on the normal images only; it never sees an anomaly.",
    )
    return cases[index]


def missing_data(case: AnomalyCase) -> str:
    """After a case's title: the partner dataset it needs, if that is not on this machine."""
    if case.other and not available_offline(case.other):
        return f" ({anomaly.short_name(case.other)} not downloaded)"
    return ""


def open_on_train(case: AnomalyCase) -> None:
    """The button that opens Train with this case's run settings."""
    if st.button(
        "Open on Train",
        key="anom_open_train",
        icon=":material/arrow_forward:",
        help="Its settings (the classes included) in Train's sidebar, to change and train there.",
    ):
        ui.open_config(case.config)
        ui.switch_page("app_pages/train.py", case.config)


def missing_run(case: AnomalyCase) -> None:
    """A case whose run is not trained: its live training panel, why it stopped, or a button."""
    cfg = case.config
    job = panel.find_job(cfg)
    snap = job.snapshot() if job is not None else None
    if snap is not None and snap.active:
        panel.live_panel(job, cfg.loss)
        return
    if snap is not None and snap.status == "failed":
        st.error(snap.error or "The run failed.")
    elif (message := panel.cancel_message(cfg, snap)) is not None:
        st.info(message)
    else:
        st.info(
            "This run is not trained yet. Train it here: it trains in the background (the "
            "Train page's queue) and this page shows it when it is done.",
            icon=":material/hourglass_empty:",
        )
    if st.button("Train it", key="anom_train", icon=":material/model_training:"):
        panel.start(cfg)


@st.cache_data(
    max_entries=16,
    show_spinner="Scoring the test images...",
    hash_funcs={**ui.HASH_FUNCS, AnomalyCase: AnomalyCase.key},
)
def case_scores(ckpt, case: AnomalyCase, ds, other) -> tuple[np.ndarray, np.ndarray]:
    """(normal, anomalous) reconstruction errors of the case's test images."""
    normal, anomalous = anomaly.split_test_set(case, ds, other)
    return (
        anomaly.reconstruction_errors(ckpt.model, normal),
        anomaly.reconstruction_errors(ckpt.model, anomalous),
    )


def threshold_slider(case: AnomalyCase, normal: np.ndarray, anomalous: np.ndarray) -> float:
    low, high, step = anomaly.slider_range(normal, anomalous)
    start = min(high, round(anomaly.default_threshold(normal) / step) * step)
    return st.slider(
        "Threshold: flag an image as anomalous when its error is above",
        low,
        high,
        float(start),
        step,
        format="%.4f",
        key=f"anom_threshold_{case.key()}",
        help=f"Starts where {anomaly.FALSE_ALARMS:.0%} of the normal test images are flagged "
        "(the 95th percentile of their errors).",
    )


def results(case: AnomalyCase, normal: np.ndarray, anomalous: np.ndarray) -> None:
    """Threshold and histograms, then the confusion, the rates and the ROC curve."""
    labels = case.labels
    threshold = threshold_slider(case, normal, anomalous)
    hist = anomaly.histograms(normal, anomalous, labels, threshold)
    st.plotly_chart(hist, key="anom_hist")
    st.caption(
        f"{len(normal):,} normal and {len(anomalous):,} anomalous test images. Score: the mean "
        "squared error per pixel between the clean image and its reconstruction (not BCE: "
        "BCE is not 0 for a perfect reconstruction of a gray pixel, so it would flag images "
        "with more gray in them)."
    )
    at = anomaly.confusion(normal, anomalous, threshold)
    fpr, tpr, auc = anomaly.roc(normal, anomalous)
    left, right = st.columns([1, 1])
    with left:
        st.markdown("**At this threshold**")
        st.dataframe(anomaly.confusion_table(at), key="anom_confusion")
        st.caption(
            f"Rows: what the images are, {labels[0]} or {labels[1]}; columns: what the "
            "threshold calls them."
        )
        st.markdown(anomaly.rates_text(at))
    with right:
        st.plotly_chart(anomaly.roc_figure(fpr, tpr, auc, at), key="anom_roc")
        st.caption("The orange dot is the threshold above; the dotted diagonal is chance.")


def extremes(case: AnomalyCase, ckpt, ds, other, scores) -> None:
    """The test images with the highest and the lowest errors, with their reconstructions."""
    sets = dict(zip(("normal", "anomalous"), anomaly.split_test_set(case, ds, other), strict=True))
    highest, lowest = anomaly.extremes(*scores, SHOWN)
    grids = {"most": ("Most anomalous: the highest errors", highest)}
    grids["least"] = ("Least anomalous: the lowest errors", lowest)
    for name, (title, picked) in grids.items():
        images = to_float(torch.stack([sets[kind][i] for kind, i, _ in picked]))
        tags = [f"{s:.4f}<br>{'anomaly' if k == 'anomalous' else 'normal'}" for k, _, s in picked]
        rows = {"image": images, "reconstruction": reconstruct(ckpt.model, images)}
        st.markdown(f"**{title}**")
        st.plotly_chart(
            plots.image_grid(rows, cell_px=56, column_labels=tags),
            width="content",
            key=f"anom_grid_{name}",
            config={"staticPlot": True},
        )
    st.caption(
        "Above each image: its error, and the set it belongs to. The error also measures how "
        "much there is to draw: a plain image (a thin stroke, few pixels lit) is easy to "
        "reconstruct whatever the model saw, a busy one is hard, so the lowest errors are often "
        "the simplest images rather than the most typical ones."
    )


st.title("Anomaly detection")
st.write(
    "Train an autoencoder on normal images only, then ask it to reconstruct new ones: what it "
    "reconstructs badly is probably not normal. No labels of anomalies are needed to train it."
)
case = pick_case()
run_line, button = st.columns([3, 1], vertical_alignment="center")
run_line.caption(f"Run: {ui.run_label(case.config)}")
with button:
    open_on_train(case)
ds = ui.dataset(case.config.dataset)  # shows the "not downloaded" message and stops if missing
other = None
if case.other:
    if not available_offline(case.other):
        st.info(
            f"This case takes its anomalies from {anomaly.short_name(case.other)}'s test set; "
            "the class case above needs only this dataset."
        )
    other = ui.dataset(case.other)
ckpt = ui.trained_run(case.config)
if ckpt is None:
    missing_run(case)
    st.stop()
scores = case_scores(ckpt, case, ds, other)
results(case, *scores)
st.markdown(HOW_TO_READ)
st.subheader("The images behind the scores")
extremes(case, ckpt, ds, other, scores)
