"""aecore: datasets, corruptions, autoencoders, training and metrics for the autoencoder lab.

Plain PyTorch; nothing here imports Streamlit.
"""

import os

# OpenMP threads spin-wait between ops by default. On a shared machine (an app serving a class,
# CI, two runs at once) that spinning fights other processes for the cores and one small
# matmul loop was measured 20x slower; passive waiting cost little when the machine was idle.
# Only effective if aecore is imported before torch starts OpenMP; set the variable to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
