"""Compare page, "Code size vs PCA": the classic latent-size sweep of a dense AE against PCA.

The runs are ordinary TrainConfigs (aecore.sweep.sweep_config), so they load through the job
manager like any run: on MNIST the bundled dense*_mnist checkpoints; elsewhere this view offers
to train the missing sizes in the background, a few at a time within the session's limit.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from aecore import plots, sweep
from aecore.config import TrainConfig
from aecore.data import DATASETS
from app_pages import _panel as panel
from app_pages import _ui as ui

WANTED = "_sweep_wanted"  # run keys this session asked the sweep to train, in order

WHY = """With MSE, the best code that is a *linear* function of the image is PCA's (Baldi and
Hornik 1989). A dense AE with one layer each way is close to linear, so it cannot do much better;
and its ReLU code costs it: a code unit is 0 for every image on one side of its hyperplane, so it
carries less than a principal component, and a unit that is 0 for all images is lost (the table
counts them: on MNIST 1 of 2, 4 of 8 and 7 of 32). On MNIST it loses to PCA at k = 1, 2 and 8 and
only wins at 32 (as in this lab's own experiments). To beat PCA at every size, an AE needs depth:
the Learn page's *Deep* kind does."""


def show(dataset: str) -> None:
    cfgs = {k: sweep.sweep_config(dataset, k) for k in sweep.LATENTS}
    runs = {k: ui.trained_run(cfg) for k, cfg in cfgs.items()}
    c = cfgs[sweep.LATENTS[0]]
    st.markdown(
        f"A dense autoencoder (one hidden layer of k units, ReLU; sigmoid output) trained on "
        f"clean {DATASETS[dataset].label} images for {c.epochs} epochs, against PCA with k "
        "components fitted on "
        "the same images. Both reconstruct the clean test set; the runs and corruption chosen "
        "on the other views do not apply here."
    )
    missing = [k for k, ckpt in runs.items() if ckpt is None]
    if missing:
        _offer_training(dataset, {k: cfgs[k] for k in missing})

    points, rows = ui.sweep_data(runs, dataset)
    left, right = st.columns([4, 3], gap="large")
    with left:
        chart = plots.latent_sweep(
            [p.latent for p in points],
            {"dense AE": [p.ae_mse for p in points], "PCA": [p.pca_mse for p in points]},
        )
        st.plotly_chart(chart, key="sweep_chart")
    with right:
        st.markdown(f"**{sweep.verdict(points)}**")
        # Text cells: st.dataframe shows a missing number as "None", which reads like a value.
        table = pd.DataFrame(
            [
                {
                    "k": p.latent,
                    "PCA MSE": f"{p.pca_mse:.4f}",
                    "dense AE MSE": "not trained" if p.ae_mse is None else f"{p.ae_mse:.4f}",
                    "AE - PCA": "-" if p.ae_mse is None else f"{p.ae_mse - p.pca_mse:+.4f}",
                    "dead units": "-" if p.dead_units is None else f"{p.dead_units} of {p.latent}",
                }
                for p in points
            ]
        ).set_index("k")
        st.dataframe(table)
        st.caption(
            "Test MSE per pixel over the whole clean test set; lower is better. A dead unit "
            "is a code unit that is 0 for every test image: the code has one number fewer."
        )
    st.markdown(WHY)
    st.markdown("**The first test images, reconstructed from a code of k numbers**")
    st.plotly_chart(plots.image_grid(rows, cell_px=64), width="content", key="sweep_grid")


def _offer_training(dataset: str, missing: dict[int, TrainConfig]) -> None:
    """A button that trains the missing sizes, and their progress while they train."""
    wanted = st.session_state.setdefault(WANTED, [])
    asked = [cfg for cfg in missing.values() if cfg.key() in wanted]
    if asked:
        _progress(asked)
        return
    sizes = ", ".join(str(k) for k in missing)
    st.info(
        f"Not trained on {DATASETS[dataset].label} yet: k = {sizes}. The chart and grid show PCA "
        "alone there. "
        "Training them is quick (a small dense model each) and runs in the background.",
        icon=":material/hourglass_empty:",
    )
    if st.button(f"Train k = {sizes}", key=f"sweep_train_{dataset}", icon=":material/play_arrow:"):
        wanted += [cfg.key() for cfg in missing.values() if cfg.key() not in wanted]
        error = panel.submit_missing(list(missing.values()))
        if error:
            st.warning(error)
            return
        st.rerun()


def _progress(cfgs: list[TrainConfig]) -> None:
    panel.poll(lambda: _draw_progress(cfgs))


def _draw_progress(cfgs: list[TrainConfig]) -> bool:
    error = panel.submit_missing(cfgs)
    lines, finished = panel.run_lines(cfgs, lambda cfg: f"k = {cfg.latent}")
    st.info("Training the sweep:\n" + "\n".join(lines), icon=":material/model_training:")
    if error:
        st.warning(error)
    if finished == len(cfgs):
        panel.forget_wanted(WANTED, cfgs)
        return False  # the whole page, now with the trained sizes
    return True
