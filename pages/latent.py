"""Placeholder."""

import streamlit as st

from pages import _ui as ui

ui.ensure_router()
st.title("latent")
st.info("Coming soon.")
