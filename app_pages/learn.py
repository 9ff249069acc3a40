"""Learn: the seven classic kinds of autoencoder, each with a preset that opens Train.

The presets' settings live in aecore.presets, sized per dataset; their MNIST and digits results
are bundled, so each card shows what its preset reaches and Train opens it already trained.
"""

import streamlit as st

from aecore.corruptions import has_level
from aecore.data import DATASETS, available_offline
from aecore.presets import PRESETS, preset_config
from app_pages import _ui as ui

# kind -> (title, explanation, what to look at after training). {code} and {pixels} are the
# preset's code size and the dataset's image size.
KINDS = {
    "undercomplete": (
        "Undercomplete",
        "The plain autoencoder: the code is much smaller than the image ({code} numbers for "
        "{pixels} pixels), so the network must keep what matters and drop the rest. With linear "
        "layers and MSE it learns the same subspace as PCA; the ReLU lets it bend that subspace.",
        "Compare its PSNR with the PCA row: same number of components.",
    ),
    "denoising": (
        "Denoising",
        "Trained on corrupted inputs with the clean images as targets (Vincent et al. 2008). "
        "To undo the noise it has to learn what the images look like, which also makes its "
        "code more robust.",
        "The margin over the median filter, and the Denoise page's severity sweep.",
    ),
    "sparse": (
        "Sparse",
        "A wide code ({code} units) with an L1 penalty on it, so that only a few units fire for "
        "any one image. Each unit then tends to stand for one stroke or part.",
        "The Latent page's code image: most cells stay at zero.",
    ),
    "deep": (
        "Deep",
        "More layers on each side. Depth lets the encoder build the code in stages, with fewer "
        "parameters than one huge layer would need for the same fit.",
        "The parameter table, and the loss curve against the undercomplete model's.",
    ),
    "contractive": (
        "Contractive",
        "Penalises how much the code moves when the input moves: the squared Frobenius norm of "
        "the encoder's Jacobian (Rifai et al. 2011). Small changes that do not look like real "
        "changes of the image get squashed, much like denoising does without any noise.",
        "The regulariser curve in the training plot; compare the walk between two images with "
        "the undercomplete model's.",
    ),
    "convolutional": (
        "Convolutional",
        "Convolutions and pooling instead of dense layers: the same small filters slide over "
        "the image, so the model knows that a stroke is a stroke wherever it is, with far fewer "
        "parameters. Its code is a stack of small feature maps.",
        "Parameters (a few thousand) against the dense models (tens of thousands), and its "
        "margin over the median filter.",
    ),
    "variational": (
        "Variational",
        "The encoder outputs a distribution, not a point, and a KL term pulls it towards a "
        "standard normal (Kingma and Welling 2014). The code space then has no holes, so any "
        "point in it decodes to a plausible image: a generative model.",
        "With a 2-unit code the Latent page draws the decoder over the whole plane, and samples "
        "new images.",
    ),
}
assert set(KINDS) == set(PRESETS), "every preset needs its lesson text"

# kind -> the views that show the lesson at work: (page, link text).
TRY = {
    "undercomplete": (
        ("app_pages/explore.py", "Decode any point of a 2-unit code"),
        ("app_pages/draw.py", "Draw a digit and see what the code keeps"),
    ),
    "denoising": (
        ("app_pages/train.py", "Watch it learn: reconstructions while it trains"),
        ("app_pages/compare.py", "Generalisation: trained on one noise, tested on another"),
        ("app_pages/board.py", "Class board: guess the PSNR, then train"),
    ),
    "sparse": (("app_pages/latent.py", "The code of each test image"),),
    "deep": (("app_pages/compare.py", "Its curves beside the other runs"),),
    "contractive": (("app_pages/latent.py", "The walk between two test images"),),
    "convolutional": (("app_pages/denoise.py", "Denoise: every level, and your own image"),),
    "variational": (
        ("app_pages/beta.py", "β: what the KL weight does to codes and samples"),
        ("app_pages/explore.py", "Decode any point, and its nearest training images"),
    ),
}
# After the seven: what an autoencoder is used for.
USES = (
    (
        "app_pages/anomaly.py",
        "Anomaly detection: a model trained on some classes flags the others by its "
        "reconstruction error",
    ),
    ("app_pages/board.py", "Class board: every run of a task ranked, guesses against results"),
)


def preset_dataset() -> str:
    """The session's dataset if it is on this machine, else the default one."""
    chosen = ui.current_values()["dataset"]
    return chosen if available_offline(chosen) else ui.default_config().dataset


def result_line(kind: str, dataset: str) -> str:
    """What the preset reaches, from its bundled run; or how to get it."""
    cfg = preset_config(kind, dataset)
    metrics = ui.bundled_metrics().get(cfg.key())
    if metrics is None:
        return "Not bundled for this dataset: Train trains it (under a minute on a laptop)."
    line = f"Bundled result: **{metrics['test_psnr']:.1f} dB** PSNR"
    if has_level(cfg.corruption):
        return line + f", against {metrics['test_psnr_median3']:.1f} dB for the median filter."
    if "test_psnr_pca" in metrics:
        return line + f", against {metrics['test_psnr_pca']:.1f} dB for PCA."
    return line + "."


st.title("Seven kinds of autoencoder")
dataset = preset_dataset()
label = DATASETS[dataset].label
st.write(
    "Each kind changes one thing: the size of the code, the input, a penalty, the layers, or "
    f"what the code is. Press a button to open Train with that kind set up for {label}; its "
    "bundled result opens at once, and nothing trains until you press Train there."
)

pixels = DATASETS[dataset].meta["shape"][1] * DATASETS[dataset].meta["shape"][2]
for i, (kind, (title, text, look)) in enumerate(KINDS.items()):
    cfg = preset_config(kind, dataset)
    with st.container(border=True):
        left, right = st.columns([5, 2], vertical_alignment="center")
        body = text.format(code=cfg.latent, pixels=pixels)
        left.markdown(f"**{title}**  \n{body}  \n*Look at:* {look}")
        left.caption(result_line(kind, dataset))
        with left:
            for page, text in TRY[kind]:
                ui.page_link(page, text, icon=":material/arrow_right:")
        if right.button("Open in Train", key=f"learn_{i}", icon=":material/arrow_forward:"):
            ui.open_config(cfg)  # the session's configuration, on whichever page comes next
            ui.switch_page("app_pages/train.py", cfg)

st.subheader("What autoencoders are used for")
for page, text in USES:
    ui.page_link(page, text, icon=":material/arrow_right:")
