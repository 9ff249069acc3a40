"""Compare page, "Generalisation": U-Nets trained on one corruption and tested on every
other (aecore.generalisation; experiments/RESULTS.md, section 7). Rows that are neither saved
nor bundled can be trained in the background; the matrix fills in as they finish."""

from __future__ import annotations

import streamlit as st

from aecore import generalisation as gen
from aecore.checkpoints import Checkpoint
from aecore.config import TrainConfig
from aecore.data import DATASETS, ImageDataset
from app_pages import _panel as panel
from app_pages import _ui as ui

WANTED = "_generalisation_wanted"  # run keys this session asked the matrix to train
REFUSED = "_generalisation_refused"  # the job manager's last refusal, shown once

HOW_TO_READ = """Read it row by row: each row is one model, each column one kind of damage to the
test images. The outlined diagonal is what each model was trained for; the colour is the gain over
the corrupted input itself (blue: better, red: **worse than doing nothing**). Compare a row's
off-diagonal cells with the "corrupted input" row to see whether the model helps against a
corruption it never saw."""


@st.cache_data(
    max_entries=16, show_spinner="Corrupting the test images...", hash_funcs=ui.HASH_FUNCS
)
def _references(ds: ImageDataset, limit: int) -> dict[str, list[float]]:
    return gen.reference_rows(ds, limit)


@st.cache_data(
    max_entries=64, show_spinner="Testing a model on every corruption...", hash_funcs=ui.HASH_FUNCS
)
def _row(ckpt: Checkpoint, ds: ImageDataset, limit: int) -> list[float]:
    return gen.row_cells(ckpt.model, ds, limit)


def show(dataset: str) -> None:
    ds = ui.dataset(dataset)  # explains and stops if the data is not on this computer
    cfgs = {c: gen.row_config(dataset, c) for c in gen.columns(dataset)}
    runs = {c: ui.trained_run(cfg) for c, cfg in cfgs.items()}
    first = next(iter(cfgs.values()))
    n = gen.images_used(ds)
    st.markdown(
        f"Four U-Nets ({first.epochs} epochs each at batch {first.batch_size}), each trained on "
        f"one corruption of {DATASETS[dataset].label} and tested on all four. Test PSNR in dB "
        f"on the first {n:,} test images, corrupted with one fixed seed: the same images for "
        "every row. The runs and corruption chosen on the other views do not apply here."
    )
    missing = {c: cfg for c, cfg in cfgs.items() if runs[c] is None}
    if missing:
        _offer_training(dataset, missing)
    trained = {c: _row(ckpt, ds, n) for c, ckpt in runs.items() if ckpt is not None}
    matrix = gen.assemble(dataset, _references(ds, n), trained, n)
    st.plotly_chart(gen.heatmap(matrix), key="gen_heatmap")
    st.markdown(f"**{gen.verdict(matrix)}**")
    st.markdown(HOW_TO_READ)


def _offer_training(dataset: str, missing: dict[gen.Column, TrainConfig]) -> None:
    """The missing rows, a button that trains them, and their progress while they train."""
    refused = st.session_state.pop(REFUSED, None)
    if refused:
        st.warning(refused)
    wanted = st.session_state.setdefault(WANTED, [])
    asked = [cfg for cfg in missing.values() if cfg.key() in wanted]
    if asked:
        panel.poll(lambda: _draw_progress(asked))
        return
    names = "; ".join(gen.row_name(c) for c in missing)
    st.info(
        f"Not trained on {DATASETS[dataset].label} yet: {names}. Their rows read "
        '"not trained". Training runs in the background, two at a time per visitor.',
        icon=":material/hourglass_empty:",
    )
    if st.button(
        f"Train the {len(missing)} missing row(s)",
        key=f"gen_train_{dataset}",
        icon=":material/play_arrow:",
    ):
        error = panel.submit_missing(list(missing.values()))
        # Rows the manager took (or will take at the next poll) are followed; on a refusal,
        # the rows it did not take are not, and the refusal is shown.
        wanted += [
            cfg.key()
            for cfg in missing.values()
            if cfg.key() not in wanted and (not error or panel.find_job(cfg) is not None)
        ]
        if error:
            st.session_state[REFUSED] = error
        st.rerun()


def _draw_progress(cfgs: list[TrainConfig]) -> bool:
    error = panel.submit_missing(cfgs)
    lines, finished = panel.run_lines(
        cfgs, lambda c: gen.row_name(gen.Column(c.corruption, c.level))
    )
    st.info("Training the missing rows:\n" + "\n".join(lines), icon=":material/model_training:")
    if error:
        st.warning(error)
    # With a refusal, the rows nobody trains count as finished: stop polling, say why.
    idle = sum(panel.find_job(cfg) is None for cfg in cfgs) if error else 0
    if finished + idle >= len(cfgs):
        if error:
            st.session_state[REFUSED] = error
        panel.forget_wanted(WANTED, cfgs)
        return False  # the whole page again, with the rows now trained
    return True
