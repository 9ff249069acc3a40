"""Learn: the seven classic kinds of autoencoder, each with a preset that opens Train."""

import streamlit as st

from aecore.config import TrainConfig
from pages import _ui as ui

# name -> (explanation, what to look at after training, settings over the app's defaults).
# Every preset trains in about a minute on a 2-core CPU (3 epochs, 20,000 MNIST images).
KINDS = {
    "Undercomplete": (
        "The plain autoencoder: the code is much smaller than the image (32 numbers for 784 "
        "pixels), so the network must keep what matters and drop the rest. With linear layers "
        "and MSE it learns the same subspace as PCA; the ReLU lets it bend that subspace.",
        "Compare its PSNR with the PCA row: same number of components.",
        {"model": "dense", "latent": 32, "corruption": "none"},
    ),
    "Denoising": (
        "Trained on corrupted inputs with the clean images as targets (Vincent et al. 2008). "
        "To undo the noise it has to learn what digits look like, which also makes its code "
        "more robust.",
        "The margin over the median filter, and the Denoise page's severity sweep.",
        {"model": "dense", "latent": 64, "corruption": "gaussian", "level": 0.5},
    ),
    "Sparse": (
        "A code wider than needed (128 units) but with an L1 penalty on it, so that only a few "
        "units fire for any one image. Each unit then tends to stand for one stroke or part.",
        "The Latent page's code image: most cells stay dark.",
        {
            "model": "dense",
            "latent": 128,
            "corruption": "none",
            "regularizer": "sparse",
            "reg_weight": 1e-4,
        },
    ),
    "Deep": (
        "More layers on each side (784-256-128-32 and back). Depth lets the encoder build the "
        "code in stages, with fewer parameters than one huge layer would need for the same fit.",
        "The parameter table, and the loss curve against the shallow undercomplete model's.",
        {"model": "deep_mlp", "width": 128, "latent": 32, "corruption": "none"},
    ),
    "Contractive": (
        "Penalises how much the code moves when the input moves: the squared Frobenius norm of "
        "the encoder's Jacobian (Rifai et al. 2011). Small changes that do not look like digit "
        "changes get squashed, much like denoising does without any noise.",
        "The regulariser curve in the training plot; compare the walk between two images with "
        "the undercomplete model's.",
        {
            "model": "dense",
            "latent": 64,
            "corruption": "none",
            "regularizer": "contractive",
            "reg_weight": 1e-3,
        },
    ),
    "Convolutional": (
        "Convolutions and pooling instead of dense layers: the same small filters slide over "
        "the image, so the model knows that a stroke is a stroke wherever it is, with far fewer "
        "parameters. Its code is a stack of small feature maps.",
        "Parameters (a few thousand) against the dense models (about 100,000), at similar PSNR.",
        {"model": "conv_pool", "corruption": "gaussian", "level": 0.5},
    ),
    "Variational": (
        "The encoder outputs a distribution, not a point, and a KL term pulls it towards a "
        "standard normal (Kingma and Welling 2014). The code space then has no holes, so any "
        "point in it decodes to a plausible image: a generative model.",
        "With a 2-unit code the Latent page draws the decoder over the whole plane, and samples "
        "new digits.",
        {"model": "vae_mlp", "latent": 2, "corruption": "none", "loss": "bce", "lr": 1e-3},
    ),
}

ui.ensure_router()
st.title("Seven kinds of autoencoder")
st.write(
    "Each kind changes one thing: the size of the code, the input, a penalty, the layers, or "
    "what the code is. Press a button to open Train with that kind set up; nothing trains until "
    "you press Train there."
)

base = ui.default_config().to_dict()
for i, (name, (text, look, overrides)) in enumerate(KINDS.items()):
    cfg = TrainConfig.from_dict(base | overrides)
    with st.container(border=True):
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.markdown(f"**{name}**  \n{text}  \n*Look at:* {look}")
        if right.button("Open in Train", key=f"learn_{i}", icon=":material/arrow_forward:"):
            ui.open_config(cfg)  # read by the sidebar on the next run, on whichever page
            ui.switch_page("pages/train.py", cfg)
