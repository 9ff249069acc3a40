"""aecore: datasets, corruptions, autoencoders, training and metrics for the autoencoder lab.

Plain PyTorch; nothing here imports Streamlit.
"""
