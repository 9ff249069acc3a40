"""β in the VAE: three VAEs that differ only in the KL term's weight, side by side.

The runs and figures come from aecore.beta; β = 1 is the Learn page's VAE preset (bundled for
digits and MNIST), β = 0.5 and 4 the same settings with β changed. A missing run gets a button
that trains it in the background (the same job runner as Train).
"""

import streamlit as st

from aecore import beta as betas
from aecore import plots
from aecore.checkpoints import CheckpointUnavailable
from aecore.config import TrainConfig
from aecore.data import DATASETS, available_offline
from aecore.jobs import JobRejected
from app_pages import _panel as panel
from app_pages import _ui as ui

MAX_POINTS = 2000  # test codes per scatter: enough for the shape, light for the browser
SHOWN = 4  # test images and reconstructions per run, and samples per row

WHAT_TO_SEE = (
    "**What to look for.** Higher β pulls every image's code harder towards N(0, I): the "
    "scatter shrinks into the circles and the classes overlap more, samples drawn from the "
    "prior land where codes are, so they look like digits, and reconstructions get blurrier "
    "(the code may carry less about the image). Lower β lets the codes spread out and the "
    "classes separate: reconstructions are sharper, but the codes leave holes in the prior, and "
    "a sample drawn from a hole decodes to a smudge. Too high a β, and the code carries nothing: "
    "the decoder draws one average image for every input (posterior collapse)."
)


def default_dataset() -> str:
    """The session's dataset when the comparison is made for it and it is on this machine; else
    the app's default dataset, else the bundled digits."""
    allowed = betas.beta_datasets()
    for name in (ui.current_values()["dataset"], ui.default_config().dataset, "digits"):
        if name in allowed and available_offline(name):
            return name
    return allowed[0]


def pick_dataset() -> tuple[str, int]:
    """The dataset to compare on, and the seed of the samples' codes."""
    allowed = list(betas.beta_datasets())
    left, right = st.columns([3, 2])
    dataset = left.selectbox(
        "Dataset",
        allowed,
        allowed.index(default_dataset()),
        format_func=lambda name: DATASETS[name].label,
        key="beta_dataset",
        help="Images with one channel: a 2-unit code of colour photos separates little.",
    )
    seed = right.number_input(
        "Sample seed",
        0,
        10_000,
        0,
        key="beta_seed",
        help="The same seed draws the same codes for all three runs.",
    )
    return dataset, int(seed)


def preset_button(beta: float, cfg: TrainConfig) -> None:
    """The button that opens Train with this run's settings (β included)."""
    if st.button(
        f"β = {beta:g}",
        key=f"beta_preset_{beta:g}",
        icon=":material/arrow_forward:",
        help=f"Open Train with this VAE, β = {beta:g}",
    ):
        ui.open_config(cfg)
        ui.switch_page("app_pages/train.py", cfg)


def submit(configs: list[TrainConfig]) -> None:
    """Start training each config; a refusal (queue full, too many runs) is shown, not raised."""
    started = 0
    for cfg in configs:
        try:
            ui.jobs().submit(cfg, ui.session_id(), ui.visitor_id())
            started += 1
        except (JobRejected, CheckpointUnavailable) as err:
            st.warning(str(err))
        except ValueError as err:
            st.error(str(err))
    if started:
        st.rerun()


def _progress(job) -> bool:
    """The compact status of a run in its column; False once it has finished."""
    snap = job.snapshot()
    if not snap.active:
        return False
    if snap.status == "queued":
        st.progress(0.0, text=f"Waiting in the queue (position {snap.position or 1})")
    else:
        st.progress(snap.fraction, text=f"Training: {snap.fraction:.0%}")
    return True


def missing_run(beta: float, cfg: TrainConfig) -> None:
    """A column whose run is not trained: its live progress, why it stopped, or a Train button."""
    job = panel.find_job(cfg)
    snap = job.snapshot() if job is not None else None
    if snap is not None and snap.active:
        panel.poll(lambda: _progress(job))
        return
    if snap is not None and snap.status == "failed":
        st.error(snap.error or "The run failed.")
    elif (message := panel.cancel_message(cfg, snap)) is not None:
        st.info(message)
    else:
        st.info("Not trained yet.", icon=":material/hourglass_empty:")
    if st.button("Train it", key=f"beta_train_{beta:g}", icon=":material/model_training:"):
        submit([cfg])


def run_column(beta: float, ckpt, ds, points, half_width: float, seed: int) -> None:
    """One trained run: its numbers, scatter, samples and reconstructions."""
    m = ckpt.metrics
    st.caption(
        f"Reconstruction {m.get('test_recon', float('nan')):.1f}, "
        f"KL {m.get('test_kl', float('nan')):.3g} {betas.NATS}"
    )
    if betas.collapsed(m):
        st.warning(
            "Collapsed: the code says almost nothing, every image decodes the same.",
            icon=":material/warning:",
        )
    labels = ds.test_labels[: len(points)]
    fig = betas.beta_scatter(points, labels, ds.classes, half_width)
    st.plotly_chart(fig, key=f"beta_scatter_{beta:g}")
    drawn, pairs = betas.samples_and_reconstructions(
        ckpt.model, ds.test_images[:SHOWN], n_samples=3 * SHOWN, seed=seed
    )
    st.caption("Samples: codes drawn from N(0, I), decoded")
    st.plotly_chart(
        tiles(drawn), width="content", key=f"beta_samples_{beta:g}", config={"staticPlot": True}
    )
    st.caption("Test images (top) and their reconstructions")
    st.plotly_chart(
        tiles(pairs), width="content", key=f"beta_recon_{beta:g}", config={"staticPlot": True}
    )


def tiles(images):
    return plots.tiles(images, SHOWN, cell_px=32)


def comparison(runs: dict[float, object], loss: str) -> None:
    """The chart and table of reconstruction against KL, and what they show."""
    metrics = {b: r.metrics for b, r in runs.items() if r is not None}
    st.subheader("Reconstruction against KL, on the test set")
    if not metrics:
        st.info("Train at least one of the runs above to see its numbers here.")
        return
    st.plotly_chart(betas.recon_kl_chart(metrics, loss), key="beta_chart")
    table = betas.beta_table(metrics)
    st.dataframe(
        table.style.format({c: "{:.3g}" if c == "KL" else "{:.2f}" for c in table.columns[1:]}),
        hide_index=True,
    )
    st.caption(
        f"In {betas.NATS} (the reconstruction summed over pixels), except PSNR. Recon + KL is "
        "the negative ELBO, the same yardstick for every β (lower: a better model of the "
        "images); recon + β·KL is what each run minimised."
    )
    text = betas.takeaway(metrics)
    if text:
        st.markdown(text)


st.title("β in the VAE")
st.write(
    "A VAE's loss is reconstruction + β × KL(code distribution ‖ N(0, I)). β = 1 is the plain "
    "VAE; these three runs share every other setting (a 2-unit code, so the codes are the "
    "scatter itself), so what differs between the columns is what β does."
)
dataset, seed = pick_dataset()
configs = betas.beta_configs(dataset)
st.caption("A β button opens Train with that run's settings; nothing trains until you press Train.")
ds = ui.dataset(dataset)  # shows the app's "not downloaded" message and stops if it is missing

runs = {beta: ui.trained_run(cfg) for beta, cfg in configs.items()}
missing = [cfg for beta, cfg in configs.items() if runs[beta] is None]
idle = not any(panel.find_job(cfg) for cfg in missing)  # none started here yet
if len(missing) > 1 and idle and st.button(f"Train the {len(missing)} missing runs"):
    submit(missing)

n = min(MAX_POINTS, len(ds.test_images))
points = {b: ui.latent_points(r, n, "auto")[1] for b, r in runs.items() if r is not None}
half_width = betas.shared_half_width(list(points.values()))
for col, (beta, cfg) in zip(st.columns(len(configs)), configs.items(), strict=True):
    with col:
        preset_button(beta, cfg)
        if runs[beta] is None:
            missing_run(beta, cfg)
        else:
            run_column(beta, runs[beta], ds, points[beta], half_width, seed)
key = betas.class_key(ds.classes)
st.caption(
    f"Top: the first {n:,} test images' codes (the means of q(z|x); x: code unit 1, y: unit 2), "
    "coloured by class, each class's number at the middle of its codes"
    + (f" ({key})" if key else "")
    + "; the same axes for all three; dashed: the prior's 1σ and 2σ circles, which hold 39% "
    "and 86% of its draws. Samples use the same codes in every column."
)

comparison(runs, configs[1.0].loss)
st.markdown(WHAT_TO_SEE)
