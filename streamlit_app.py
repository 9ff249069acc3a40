"""Autoencoder lab: the router. Page content lives in app_pages/, a plain folder (st.navigation
lists the pages, so Streamlit gives the folder no meaning); app_pages/_*.py are helpers."""

import logging
from pathlib import Path

import streamlit as st

import aecore  # (before any page imports torch: it sets OpenMP's wait policy)
from aecore.gate import page_gate
from app_pages import _nav

# aecore logs each training run, eviction and refused checkpoint at INFO: the server log keeps them.
logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
logging.getLogger("aecore").setLevel(logging.INFO)

# A local file: a Material icon name here makes every browser fetch the icon from the internet.
ICON = Path(__file__).parent / "assets" / "icon.png"
st.set_page_config(page_title="Autoencoder lab", page_icon=str(ICON), layout="wide")

pages = {
    "Lab": [
        st.Page("app_pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("app_pages/train.py", title="Train", icon=":material/model_training:"),
        st.Page("app_pages/denoise.py", title="Denoise", icon=":material/auto_fix_high:"),
        st.Page("app_pages/latent.py", title="Latent space", icon=":material/scatter_plot:"),
        st.Page("app_pages/compare.py", title="Compare runs", icon=":material/compare:"),
    ],
    "Explore": [
        st.Page("app_pages/explore.py", title="Decode any point", icon=":material/ads_click:"),
        st.Page("app_pages/draw.py", title="Draw a digit", icon=":material/draw:"),
        st.Page("app_pages/beta.py", title="β in the VAE", icon=":material/tune:"),
        st.Page("app_pages/anomaly.py", title="Anomaly detection", icon=":material/troubleshoot:"),
    ],
    "Class": [
        st.Page("app_pages/board.py", title="Class board", icon=":material/leaderboard:"),
    ],
    "Learn": [
        st.Page("app_pages/learn.py", title="Seven kinds of autoencoder", icon=":material/school:"),
    ],
}


@st.fragment(run_every=30)
def keep_runs_alive() -> None:
    """Runs that nobody watches stop after a grace period (aecore.jobs); every page keeps this
    session's runs alive, also while its user reads another page. Only once a page has loaded
    the lab's helpers (and torch): Home's first picture must not wait for them."""
    if "session_id" in st.session_state:
        from app_pages import _ui

        _ui.keep_alive()


keep_runs_alive()
page = st.navigation(pages, position="hidden")  # the menu is app_pages/_nav.py's: one Back per page
_nav.start(pages)
with page_gate():  # 2 page runs compute at once, so the server thread gets the GIL (gate.py)
    try:
        page.run()
    finally:
        # The heap keeps a training step's freed memory for the next step (aecore.allocator);
        # a server hands back what a page run freed, so idle sessions hold none of it. First:
        # _nav.stop() may end the run with a rerun.
        aecore.allocator.release()
        _nav.stop()
