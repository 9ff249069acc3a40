"""Training and inference speed: aecore's trainer against the tutorial-style reference.

For each model kind, the same model (same init seed, batch 128, Adam 1e-3, same loss and
corruption) is trained by aecore.train and by bench/reference.py (torchvision dataset + ToTensor
+ DataLoader), on the same training images (the training set less ours' validation holdout).
The two are interleaved epoch by epoch in one process (ours, reference, ours, ...), so a busy
machine slows both alike. Printed and written to JSON, per model:
- training samples per second and seconds per epoch, each trainer's median epoch, and the ratio;
- working memory: the process's resident-memory peak during that trainer's epochs (after the
  first, which sets up) above where the epoch started (CPU), or the CUDA allocator's peak (GPU);
  and the training data each keeps resident (ours: float32 on the device; the reference: uint8);
- the final test loss of both (same evaluate(), same test noise) and their relative difference;
- inference: encode + decode of the 10,000 test images, and one 64-image grid as PNG.

    python bench/speed.py                                # every model on the CPU
    python bench/speed.py --models janet vae_mlp         # some of them (results are merged)
    python bench/speed.py --device cuda                  # the same table on a GPU
    python bench/speed.py --quick                        # smoke run: 2,000 images, 1 epoch

Results go to bench/results/speed-<device>.json; a run of some models keeps the others' rows.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch.utils.data import Subset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aecore import plots  # noqa: E402
from aecore.checkpoints import hardware  # noqa: E402
from aecore.config import TrainConfig  # noqa: E402
from aecore.corruptions import corrupt  # noqa: E402
from aecore.data import data_dir, load_dataset, to_float  # noqa: E402
from aecore.evaluate import evaluate, reconstruct  # noqa: E402
from aecore.latent import encode_all  # noqa: E402
from aecore.train import split_indices, train  # noqa: E402
from bench import reference as ref  # noqa: E402

QUICK_IMAGES = 2000
LOSS_TOLERANCE = 0.01  # the final test losses must agree within 1%


@dataclass(frozen=True)
class Case:
    name: str  # the row's name
    config: TrainConfig
    target: float | None  # the speed-up the issue asks for on a CPU (samples/s), if any


def _ae(model: str, dataset: str = "mnist", **kw) -> TrainConfig:
    base = dict(dataset=dataset, model=model, corruption="gaussian", level=0.5, latent=32)
    return TrainConfig(**(base | kw | {"batch_size": 128, "lr": 1e-3, "optimizer": "adam"}))


CASES = [
    Case("dense", _ae("dense"), None),
    Case("janet", _ae("janet", latent=50, corruption="salt_pepper", level=0.1), 3.0),
    Case(
        "janet_fashion",
        _ae("janet", "fashion_mnist", latent=50, corruption="salt_pepper", level=0.1),
        3.0,
    ),
    Case("deep_mlp", _ae("deep_mlp"), None),
    Case("vae_mlp", _ae("vae_mlp", corruption="none", latent=20, loss="bce"), 3.0),
    Case("conv_same", _ae("conv_same"), 1.5),
    Case("conv_pool", _ae("conv_pool"), 1.5),
    Case("conv_transpose", _ae("conv_transpose"), 1.5),
    Case("unet", _ae("unet"), None),
    Case("vae_conv", _ae("vae_conv", corruption="none", latent=20, loss="bce"), None),
]
CONV = {"conv_same", "conv_pool", "conv_transpose", "unet", "vae_conv"}


# -- memory ---------------------------------------------------------------------------------------


class PeakMemory:
    """Peak memory of one phase: CUDA's allocator on a GPU; on the CPU the resident-set
    high-water mark (reset through /proc/self/clear_refs, Linux only) above the phase's start."""

    def __init__(self, device: torch.device):
        self.device = device
        self.start = 0

    def begin(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return
        # Not Linux: no reset, and the peak is then the process's peak so far.
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        self.start = _status_kb("VmRSS") * 1024

    def end(self) -> float:
        """MB above the phase's start."""
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            return (torch.cuda.max_memory_allocated() - self.start) / 2**20
        return max(0, _status_kb("VmHWM") * 1024 - self.start) / 2**20


def _status_kb(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- one model --------------------------------------------------------------------------------


def reference_trainer(cfg: TrainConfig, device: torch.device, train_idx: torch.Tensor):
    """The tutorial trainer for cfg: (model, one_epoch() -> seconds, images per epoch). It learns
    from the same training images as ours (a Subset, as tutorials hold out validation images
    with random_split), so both take the same number of steps and their losses compare."""
    model = ref.build(cfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    data = ref.dataset(cfg.dataset, str(data_dir()), train=True)
    data = Subset(data, train_idx.tolist())
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=True)
    gen = torch.Generator(device).manual_seed(cfg.seed)
    if cfg.model.startswith("vae"):
        step = ref.vae_step
    else:

        def step(model, x):
            noise = lambda c: corrupt(cfg.corruption, c, cfg.level, gen)  # noqa: E731
            return ref.ae_step(model, x, noise, "mse")

    def one_epoch() -> float:
        return ref.train_epoch(model, opt, loader, step, device)

    return model, one_epoch, len(data)


def inference_times(model, test: torch.Tensor, device: torch.device) -> dict[str, float]:
    """Seconds to encode+decode the whole test set, to encode it, and for one 64-image grid."""
    images = to_float(test).to(device)
    reconstruct(model, images[:1000])  # warm-up: first-call allocations and kernel choices
    _sync(device)
    t0 = time.perf_counter()
    reconstruct(model, images)
    _sync(device)
    both = time.perf_counter() - t0
    t0 = time.perf_counter()
    encode_all(model, images)
    _sync(device)
    encode = time.perf_counter() - t0
    t0 = time.perf_counter()
    grid = images[:64]
    plots.grid_png({"Input": grid.cpu(), "Reconstructed": reconstruct(model, grid).cpu()})
    png = time.perf_counter() - t0
    return {"encode_decode_test_s": both, "encode_test_s": encode, "grid64_png_s": png}


def bench_case(case: Case, device: torch.device, epochs: int, quick: bool) -> dict:
    limit = QUICK_IMAGES if quick else None
    cfg = replace(case.config, epochs=epochs, limit_train=limit or 0)
    ds = load_dataset(cfg.dataset)
    ref_model, ref_epoch, ref_images = reference_trainer(cfg, device, _train_indices(ds, cfg))
    ours_s: list[float] = []
    ref_s: list[float] = []
    mem_ours: list[float] = []
    mem_ref: list[float] = []
    meter = PeakMemory(device)

    def after_our_epoch(stats) -> None:
        # Called after our epoch (and its validation pass, which is not timed): close our phase,
        # run one reference epoch in its own phase, then open the phase of our next epoch.
        mem_ours.append(meter.end())
        ours_s.append(stats.seconds)
        meter.begin()
        ref_s.append(ref_epoch())
        mem_ref.append(meter.end())
        print(
            f"  {case.name} epoch {stats.epoch}: ours {ours_s[-1]:.2f} s, "
            f"reference {ref_s[-1]:.2f} s",
            flush=True,
        )
        meter.begin()

    meter.begin()
    ours = train(cfg, on_epoch=after_our_epoch, device=device, dataset=ds)
    our_images = len(_train_indices(ds, cfg))
    limit_test = 500 if quick else None
    loss_ours = evaluate(ours.model, ds, cfg.corruption, cfg.level, cfg.loss, limit=limit_test)
    loss_ref = evaluate(ref_model, ds, cfg.corruption, cfg.level, cfg.loss, limit=limit_test)
    ours_med, ref_med = statistics.median(ours_s), statistics.median(ref_s)
    row = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "corruption": f"{cfg.corruption} {cfg.level:g}" if cfg.corruption != "none" else "none",
        "epochs": epochs,
        "ours_images": our_images,
        "reference_images": ref_images,
        "ours_s_per_epoch": ours_med,
        "reference_s_per_epoch": ref_med,
        "ours_samples_per_s": our_images / ours_med,
        "reference_samples_per_s": ref_images / ref_med,
        "ours_epoch_seconds": ours_s,
        "reference_epoch_seconds": ref_s,
        "ours_peak_mb": max(mem_ours[1:] or mem_ours),
        "reference_peak_mb": max(mem_ref[1:] or mem_ref),
        "ours_setup_mb": mem_ours[0],
        "ours_dataset_mb": our_images * ds.train_images[0].numel() * 4 / 2**20,
        "reference_dataset_mb": ds.train_images.numel() / 2**20,
        "ours_test_loss": loss_ours["test_loss"],
        "reference_test_loss": loss_ref["test_loss"],
        "target_speedup": case.target,
    }
    row["speedup"] = row["ours_samples_per_s"] / row["reference_samples_per_s"]
    row["loss_difference"] = (loss_ours["test_loss"] - loss_ref["test_loss"]) / abs(
        loss_ref["test_loss"]
    )
    row |= inference_times(ours.model, ds.test_images, device)
    return row


def _train_indices(ds, cfg: TrainConfig) -> torch.Tensor:
    """The images our trainer learns from: the training set less the validation holdout."""
    train_idx, _ = split_indices(len(ds.train_images))
    return train_idx[: cfg.limit_train] if cfg.limit_train else train_idx


# -- the table ------------------------------------------------------------------------------


def verdict(row: dict, device: torch.device) -> str:
    target = row["target_speedup"] if device.type == "cpu" else None
    fast = target is None or row["speedup"] >= target
    same = abs(row["loss_difference"]) <= LOSS_TOLERANCE
    return "yes" if fast and same else "NO"


def print_table(rows: dict[str, dict], device: torch.device) -> None:
    head = (
        f"{'model':<15}{'images/s ours':>14}{'reference':>11}{'ratio':>7}{'target':>8}"
        f"{'s/epoch ours':>13}{'ref':>7}{'work MB':>9}{'ref':>6}{'test loss ours':>16}"
        f"{'ref':>9}{'diff':>8}{'10k enc+dec s':>14}{'grid64 s':>9}  met"
    )
    print(head)
    for name, r in rows.items():
        goal = r["target_speedup"] if device.type == "cpu" else None
        target = f"{goal:.1f}x" if goal else "-"
        print(
            f"{name:<15}{r['ours_samples_per_s']:>14,.0f}{r['reference_samples_per_s']:>11,.0f}"
            f"{r['speedup']:>6.2f}x{target:>8}{r['ours_s_per_epoch']:>13.2f}"
            f"{r['reference_s_per_epoch']:>7.2f}{r['ours_peak_mb']:>9.0f}"
            f"{r['reference_peak_mb']:>6.0f}{r['ours_test_loss']:>16.4f}"
            f"{r['reference_test_loss']:>9.4f}{r['loss_difference']:>+8.2%}"
            f"{r['encode_decode_test_s']:>14.3f}{r['grid64_png_s']:>9.3f}  {verdict(r, device)}"
        )
    for dataset in sorted({r["dataset"] for r in rows.values()}):
        r = next(r for r in rows.values() if r["dataset"] == dataset)
        print(
            f"{dataset}: training data resident, ours {r.get('ours_dataset_mb', 0):.0f} MB "
            f"(float32), reference {r.get('reference_dataset_mb', 0):.0f} MB (uint8)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [c.name for c in CASES]
    parser.add_argument("--models", nargs="+", choices=names, default=names, metavar="NAME")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of the MLP models and VAEs")
    parser.add_argument("--conv-epochs", type=int, default=2, help="epochs of the conv models")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_IMAGES} images, 1 epoch")
    parser.add_argument("--out", default=None, help="JSON file (default bench/results/...)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    name = f"speed-{device.type}{'-quick' if args.quick else ''}.json"
    out = Path(args.out or Path(__file__).resolve().parent / "results" / name)
    saved = json.loads(out.read_text()) if out.is_file() else {}
    rows: dict[str, dict] = saved.get("rows", {})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}", flush=True)
    for case in CASES:
        if case.name not in args.models:
            continue
        epochs = 1 if args.quick else args.conv_epochs if case.config.model in CONV else args.epochs
        print(f"== {case.name}: {epochs} epoch(s)", flush=True)
        rows[case.name] = bench_case(case, device, epochs, args.quick)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"device": _device_name(device), "rows": rows}, indent=1))
    print()
    print_table({k: rows[k] for k in names if k in rows}, device)
    print(f"\nwrote {out}")
    return 0


def _device_name(device: torch.device) -> str:
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    return hardware() + threads


if __name__ == "__main__":
    sys.exit(main())
