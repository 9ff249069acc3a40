"""A run's history: one EpochStats per epoch. Plain data, so checkpoints, plots, bundles and the
job queue can read a history without importing the training loop (and torch's optimizers)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EpochStats:
    """One epoch's figures. Loss units: per pixel for autoencoders, nats per image for VAEs."""

    epoch: int
    epochs: int
    train_loss: float
    train_recon: float
    val_loss: float
    val_recon: float
    val_psnr_db: float
    seconds: float
    train_kl: float | None = None  # VAEs only
    val_kl: float | None = None
    train_reg: float | None = None  # sparse / contractive only
    val_reg: float | None = None
