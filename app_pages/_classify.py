"""Compare page, "As classifier input": a small CNN trained on clean images, tested on the
corrupted, median-filtered and reconstructed test images of the chosen runs."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aecore import plots
from aecore.checkpoints import Checkpoint
from aecore.classifier import Classifier, build_classifier, default_spec
from aecore.data import DATASETS
from aecore.jobs import Job
from app_pages import _panel as panel
from app_pages import _ui as ui

IMAGES = 2000  # test images classified per input: +-1 point of accuracy at worst
QUICK_TRAIN_IMAGES = 5000  # up to this many training images, train at once (digits: seconds)


def show(dataset: str, picked: dict[str, Checkpoint], corruption: str, level: float) -> None:
    clf = _classifier(dataset)
    if clf is None:
        return
    runs = {f"{letter}: {c.config.model}": c for letter, c in picked.items()}
    acc = ui.classifier_accuracies(clf, runs, dataset, corruption, level, IMAGES)
    percent = {name: 100 * value for name, value in acc.items()}
    left, right = st.columns([3, 2], gap="large")
    left.plotly_chart(
        plots.metric_bars(
            percent,
            "accuracy (%)",
            x_title="what the classifier sees (gray: no autoencoder)",
            digits=1,
            muted=("clean", "corrupted", "median 3x3", "best classical"),
        ),
        key="clf_bars",
    )
    clean = percent["clean"]
    rows = [
        {"input": k, "accuracy (%)": v, "vs clean (points)": v - clean} for k, v in percent.items()
    ]
    table = pd.DataFrame(rows).set_index("input")
    right.dataframe(table.style.format({"accuracy (%)": "{:.1f}", "vs clean (points)": "{:+.1f}"}))
    right.caption(
        f"The first {min(IMAGES, len(ui.dataset(dataset).test_images)):,} test images; the "
        "corruption is the one chosen above, drawn with the same seed for every input."
    )
    st.caption(
        f"A small CNN ({clf.info.get('params', 0):,} parameters) was trained on *clean* "
        f"{DATASETS[dataset].label} images only ({100 * clf.info['test_accuracy']:.1f}% on the "
        "clean test set). "
        + (
            "Corruption knocks its accuracy down; a reconstruction is useful to it when the bar "
            "climbs back towards 'clean'. "
            if "corrupted" in percent
            else "With no corruption, each bar shows what passing through the autoencoder "
            "alone costs. "
        )
        + "PSNR does not promise usefulness: a blurry reconstruction can score well in dB and "
        "still lose the strokes that tell one class from another."
    )


def _classifier(dataset: str) -> Classifier | None:
    """The classifier for dataset: bundled or trained before, trained now if the dataset is
    small, else None with a button that trains it in the background."""
    spec = default_spec(dataset)
    clf = ui.jobs().result(spec)
    if clf is not None:
        return clf
    ds = ui.dataset(dataset)
    if len(ds.train_images) <= QUICK_TRAIN_IMAGES:
        with st.spinner(f"Training the classifier on {len(ds.train_images):,} clean images..."):
            build_classifier(ds, spec)
        return ui.jobs().result(spec)
    job = panel.find_job(spec)
    snap = job.snapshot() if job is not None else None
    if snap is None or not snap.active:
        if snap is not None and snap.error:
            st.error(f"Training the classifier failed ({snap.error}).")
        st.info(
            f"No classifier for {DATASETS[dataset].label} yet. Training one ({spec.epochs} "
            f"epochs over {len(ds.train_images):,} clean images) takes a few minutes on a CPU "
            "and runs in the background.",
            icon=":material/hourglass_empty:",
        )
        if st.button("Train the classifier", key=f"clf_train_{dataset}"):
            panel.start(spec)  # queued beside training runs, under the same limits
        return None
    panel.poll(lambda: _draw_progress(job))
    return None


def _draw_progress(job: Job) -> bool:
    snap = job.snapshot()
    if not snap.active:
        return False
    if snap.status == "queued":
        st.info(f"The classifier waits in the training queue (position {snap.position}).")
    else:
        text = f"Training the classifier: {snap.fraction:.0%}"
        st.progress(snap.fraction, text=text)
    return True
