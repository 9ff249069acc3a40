"""The foundation's numbers, measured against baselines in the same run.

1. vae_mlp, latent 20, batch 128, Adam 1e-3, BCE+KL summed, 10 epochs on MNIST: the test loss
   (nats per image; pytorch/examples' VAE reaches 105.6 on this machine), and the seconds per
   epoch of our trainer against the same model trained through torchvision's ToTensor +
   DataLoader pipeline (reference epochs run before and after ours, so drift hits both).
2. conv_same on MNIST with Gaussian sigma 0.5: test PSNR against the 3x3 median filter's.

    python -m bench.foundation [--epochs 10] [--conv-epochs 3] [--out bench/results/foundation.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from aecore.config import TrainConfig
from aecore.data import data_dir, load_dataset
from aecore.evaluate import evaluate
from aecore.train import train
from bench import reference as ref

VAE_TARGET_NATS = 105.6
SPEEDUP_TARGET = 2.5


def vae_test_losses(epochs: int, seeds: list[int]) -> list[float]:
    """Test loss of our trainer for further seeds: the spread says how much one number means."""
    losses = []
    for seed in seeds:
        cfg = TrainConfig(
            dataset="mnist",
            model="vae_mlp",
            latent=20,
            corruption="none",
            loss="bce",
            epochs=epochs,
            seed=seed,
        )
        model = train(cfg, device="cpu").model
        losses.append(evaluate(model, load_dataset("mnist"), "none", 0.0, "bce")["test_loss"])
        print(f"  seed {seed}: test loss {losses[-1]:.2f} nats", flush=True)
    return losses


def vae_benchmark(epochs: int, ref_epochs: int) -> dict:
    cfg = TrainConfig(
        dataset="mnist",
        model="vae_mlp",
        latent=20,
        corruption="none",
        loss="bce",
        optimizer="adam",
        lr=1e-3,
        batch_size=128,
        epochs=epochs,
    )
    root = str(data_dir())
    model = ref.make_vae()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    train_loader = ref.loader("mnist", root, train=True)
    ref_seconds = []

    def ref_epoch():
        ref_seconds.append(ref.train_epoch(model, opt, train_loader, ref.vae_step))
        print(f"  reference epoch {len(ref_seconds)}: {ref_seconds[-1]:.2f} s", flush=True)

    for _ in range(ref_epochs // 2):
        ref_epoch()
    ours = train(
        cfg,
        on_epoch=lambda s: print(
            f"  ours epoch {s.epoch}: {s.seconds:.2f} s  val {s.val_loss:.2f}", flush=True
        ),
        device="cpu",
    )
    for _ in range(ref_epochs - ref_epochs // 2):
        ref_epoch()
    ds = load_dataset("mnist")
    metrics = evaluate(ours.model, ds, "none", 0.0, "bce")
    ours_sec = statistics.median(h.seconds for h in ours.history)
    ref_sec = statistics.median(ref_seconds)
    return {
        "test_loss_nats": metrics["test_loss"],
        "test_kl_nats": metrics["test_kl"],
        "target_nats": VAE_TARGET_NATS,
        "ours_sec_per_epoch_median": ours_sec,
        "reference_sec_per_epoch_median": ref_sec,
        "speedup": ref_sec / ours_sec,
        "speedup_target": SPEEDUP_TARGET,
        "ours_epoch_seconds": [h.seconds for h in ours.history],
        "reference_epoch_seconds": ref_seconds,
    }


def conv_benchmark(epochs: int) -> dict:
    cfg = TrainConfig(
        dataset="mnist", model="conv_same", corruption="gaussian", level=0.5, epochs=epochs
    )
    t0 = time.perf_counter()
    result = train(
        cfg,
        on_epoch=lambda s: print(
            f"  conv_same epoch {s.epoch}: {s.seconds:.1f} s  val PSNR {s.val_psnr_db:.2f} dB",
            flush=True,
        ),
        device="cpu",
    )
    m = evaluate(result.model, load_dataset("mnist"), "gaussian", 0.5, "mse")
    return {
        "epochs": epochs,
        "train_seconds": time.perf_counter() - t0,
        "test_psnr": m["test_psnr"],
        "test_psnr_noisy": m["test_psnr_noisy"],
        "test_psnr_median3": m["test_psnr_median3"],
        "test_ssim": m["test_ssim"],
        "test_ssim_median3": m["test_ssim_median3"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--ref-epochs", type=int, default=4)
    parser.add_argument("--conv-epochs", type=int, default=3)
    parser.add_argument("--more-seeds", type=int, default=2, help="VAE runs with seeds 1..N")
    parser.add_argument("--out", default="bench/results/foundation.json")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, data {data_dir()}")
    vae = vae_benchmark(args.epochs, args.ref_epochs)
    vae["test_loss_other_seeds"] = vae_test_losses(args.epochs, list(range(1, args.more_seeds + 1)))
    all_losses = [vae["test_loss_nats"], *vae["test_loss_other_seeds"]]
    vae["test_loss_mean_all_seeds"] = statistics.mean(all_losses)
    conv = conv_benchmark(args.conv_epochs)
    rows = [
        (
            "vae_mlp test loss (nats/image)",
            f"{vae['test_loss_nats']:.2f}",
            f"<= {VAE_TARGET_NATS}",
            vae["test_loss_nats"] <= VAE_TARGET_NATS,
        ),
        (
            "vae_mlp s/epoch ours | reference",
            f"{vae['ours_sec_per_epoch_median']:.2f} | {vae['reference_sec_per_epoch_median']:.2f}",
            "",
            None,
        ),
        (
            "vae_mlp epoch speed-up",
            f"{vae['speedup']:.2f}x",
            f">= {SPEEDUP_TARGET}x",
            vae["speedup"] >= SPEEDUP_TARGET,
        ),
        (
            "conv_same PSNR model | median3 (dB)",
            f"{conv['test_psnr']:.2f} | {conv['test_psnr_median3']:.2f}",
            "model > median3",
            conv["test_psnr"] > conv["test_psnr_median3"],
        ),
    ]
    print(f"\n{'figure':<38} {'measured':>16} {'target':>16}  met")
    for name, value, target, met in rows:
        print(
            f"{name:<38} {value:>16} {target:>16}  {'' if met is None else 'yes' if met else 'NO'}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"vae_mlp": vae, "conv_same": conv}, indent=2))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
