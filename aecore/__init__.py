"""aecore: datasets, corruptions, autoencoders, training and metrics for the autoencoder lab.

Plain PyTorch; nothing here imports Streamlit.
"""

from aecore import allocator, threads

# OpenMP's threads spin-wait between ops by default. On a shared machine (an app serving a class,
# CI, two runs at once) that spinning fights other processes for the cores; a command line that
# owns an idle machine may spin (aecore/threads.py). Only effective if aecore is imported before
# torch starts OpenMP; a variable the user set wins.
threads.configure()

# A training step's freed memory stays in malloc's heap for the next step, not handed back to
# the kernel and faulted in again (aecore/allocator.py: a quarter off a conv model's CPU epoch).
allocator.keep_freed_blocks()
