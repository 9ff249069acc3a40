"""Autoencoder lab: the router. Page content lives in pages/; pages/_*.py are helpers."""

import logging

import streamlit as st

import aecore  # noqa: F401  (before any page imports torch: it sets OpenMP's wait policy)
from aecore.gate import page_gate

# aecore logs each training run, eviction and refused checkpoint at INFO: the server log keeps them.
logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("aecore").setLevel(logging.INFO)

st.set_page_config(page_title="Autoencoder lab", page_icon=":material/blur_on:", layout="wide")

pages = {
    "Lab": [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("pages/denoise.py", title="Denoise", icon=":material/auto_fix_high:"),
        st.Page("pages/latent.py", title="Latent space", icon=":material/scatter_plot:"),
        st.Page("pages/compare.py", title="Compare runs", icon=":material/compare:"),
    ],
    "Learn": [
        st.Page("pages/learn.py", title="Seven kinds of autoencoder", icon=":material/school:"),
    ],
}
with page_gate():  # 2 page runs compute at once, so the server thread gets the GIL (gate.py)
    st.navigation(pages).run()
