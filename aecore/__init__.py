"""aecore: datasets, corruptions, autoencoders, training and metrics for the autoencoder lab.

Plain PyTorch; nothing here imports Streamlit.
"""

from aecore import threads

# OpenMP's threads spin-wait between ops by default. On a shared machine (an app serving a class,
# CI, two runs at once) that spinning fights other processes for the cores; a command line that
# owns an idle machine may spin (aecore/threads.py). Only effective if aecore is imported before
# torch starts OpenMP; a variable the user set wins.
threads.configure()
