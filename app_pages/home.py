"""Home: what an autoencoder is, and an instant demo from any saved run.

Only Streamlit is imported before the demo picture: on a cold start, importing torch and
torchvision and loading a dataset take seconds, so the stored picture of the bundled demo model
(checkpoints/previews/home.png, the same pixels the live demo draws) is shown first.
"""

from pathlib import Path

import streamlit as st

HOME_PREVIEW = Path(__file__).resolve().parent.parent / "checkpoints" / "previews" / "home.png"

st.title("Autoencoder lab")
st.markdown(
    "An **autoencoder** is a network trained to give back its input. An *encoder* squeezes each "
    "image into a short **code**, and a *decoder* rebuilds the image from the code alone. Since "
    "the code is too small to hold every pixel, the network has to learn what images of this "
    "kind have in common. Feed it a **corrupted** image while asking for the **clean** one and "
    "it learns to remove noise: a *denoising* autoencoder."
)
st.subheader("Try it")
controls = st.container()
picture = st.empty()
caption = st.empty()
if HOME_PREVIEW.is_file():
    picture.image(HOME_PREVIEW.read_bytes(), width="content")

# The heavy imports, after the first picture is on its way to the browser.
from aecore.checkpoints import Checkpoint  # noqa: E402
from aecore.corruptions import CORRUPTIONS, has_level  # noqa: E402
from aecore.data import (  # noqa: E402
    DATASETS,
    DatasetUnavailable,
    available_offline,
    load_dataset,
    offline,
)
from aecore.plots import labelled_png  # noqa: E402
from aecore.pretrain import bundled_names  # noqa: E402
from aecore.preview import HOME_DEMO, HOME_LEVEL, demo_rows, read_home_margins  # noqa: E402
from app_pages import _ui as ui  # noqa: E402


@st.cache_data(max_entries=64, show_spinner=False, hash_funcs=ui.HASH_FUNCS)
def demo_png(ckpt: Checkpoint, level: float) -> bytes:
    """The live picture of the run at `level` (a PNG, as fast to send as the stored one). The
    dataset comes from the data folder of the moment; a missing one raises (and is not cached)."""
    return labelled_png(demo_rows(ckpt, load_dataset(ckpt.config.dataset), level))


runs = ui.saved_runs()  # configs and test metrics from the index: no weights loaded yet
if not runs:
    picture.empty()
    controls.info(
        "No trained model yet. Train the default one: about a minute on a laptop CPU, "
        "and it then shows up here.",
        icon=":material/model_training:",
    )
    with controls:
        ui.page_link("app_pages/train.py", "Open Train", icon=":material/play_arrow:")
    st.stop()

# The demo model first, then the other denoisers: they make the better demo.
demo_key = next((k for k, n in bundled_names().items() if n == HOME_DEMO), None)
# Offline, models whose dataset is on this machine come first, so the demo is a live one.
runs.sort(
    key=lambda c: (
        offline() and not available_offline(c.config.dataset),
        c.config.key() != demo_key,
        not has_level(c.config.corruption),
        -c.metrics.get("test_psnr", 0.0),  # then the best denoiser
    )
)
labels = {ui.run_label(entry.config): entry for entry in runs}
# The model's name gets the whole width (names run long); its level slider goes below.
label = controls.selectbox("Trained model", list(labels), key="home_run")
right, _ = controls.columns([1, 1], gap="large")
ckpt = ui.load_run(labels[label].path, warn=True)  # only the run shown is loaded
if ckpt is None:  # damaged or just evicted: load_run said why
    picture.empty()
    st.stop()
cfg = ckpt.config
meta = CORRUPTIONS[cfg.corruption].meta
data_label = DATASETS[cfg.dataset].label
# A "uniform" run saw every level from 0 up to cfg.level in training.
trained = f"{cfg.level:g}" if cfg.level_sampling == "fixed" else f"0 to {cfg.level:g}"
level = ui.level_slider(
    right,
    cfg.corruption,
    f"{CORRUPTIONS[cfg.corruption].label}: {meta['level_name']} (trained at {trained})",
    key=f"home_level_{cfg.corruption}",
    start=HOME_LEVEL if cfg.key() == demo_key else cfg.level,
)
if level is None:
    level = 0.0
    right.write("This model was trained without corruption: it only compresses.")

try:
    with st.spinner(f"Loading {data_label}..."):
        png = demo_png(ckpt, level)
except DatasetUnavailable as err:
    if cfg.key() != demo_key:
        picture.empty()  # the stored picture belongs to the demo model only
    caption.warning(f"The live demo needs this model's dataset. {err}")
    st.stop()
picture.image(png, width="content")
if "test_psnr" in ckpt.metrics:
    before = ckpt.metrics.get("test_psnr_noisy")
    tested = (
        "On the whole test set"
        if not has_level(cfg.corruption)
        else f"On the whole test set, corrupted with {meta['level_name']} = {cfg.level:g}"
    )
    caption.caption(
        f"The first test images of {data_label}. {tested}: "
        f"{ckpt.metrics['test_psnr']:.2f} dB PSNR after the autoencoder"
        + (f", {before:.2f} dB before" if has_level(cfg.corruption) and before else "")
        + ". Higher is better."
    )
if margins := read_home_margins(cfg.key()):
    st.markdown("**Against the strongest classical methods**")
    st.dataframe(
        {
            meta["level_name"]: [f"{r['level']:g}" for r in margins],
            "Autoencoder (dB)": [f"{r['model']:.2f}" for r in margins],
            "Best classical (dB)": [f"{r['best']:.2f}" for r in margins],
            "Margin (dB)": [f"{r['model'] - r['best']:+.2f}" for r in margins],
            "Best classical method, tuned": [r["best_label"] for r in margins],
            "Median 3x3 (dB)": [f"{r['median3']:.2f}" for r in margins],
        },
        hide_index=True,
    )
    st.caption(
        f"PSNR over the whole {data_label} test set at each level. Best classical: the best of "
        "the classical methods suited to this corruption, each tuned on validation images "
        "(never the test set); the Denoise page shows their pictures."
    )

st.subheader("Where next")
cols = st.columns(3)
with cols[0]:
    ui.page_link("app_pages/train.py", "Train your own", icon=":material/model_training:")
    ui.page_link(
        "app_pages/denoise.py", "Denoise, and upload an image", icon=":material/auto_fix_high:"
    )
with cols[1]:
    ui.page_link("app_pages/latent.py", "Explore the latent space", icon=":material/scatter_plot:")
    ui.page_link("app_pages/compare.py", "Compare runs", icon=":material/compare:")
with cols[2]:
    ui.page_link("app_pages/learn.py", "Seven kinds of autoencoder", icon=":material/school:")
