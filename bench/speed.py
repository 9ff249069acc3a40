"""Training and inference speed as users get them: aecore's command line against the tutorial way.

For each model kind, the same model (same init seed, batch 128, Adam 1e-3, same loss and
corruption) is trained twice on the same training images (the training set less our validation
holdout), each in a fresh process started as its users start it:
- ours: `python -m aecore train ... --force --json` (bench/product.py): the command line's own
  import order, OpenMP wait policy and threads; epoch seconds from the history it saves;
- the reference: `python -m bench.reference` (torchvision dataset + ToTensor + DataLoader), a
  script that imports torch first, as tutorials do.
The two alternate (ours first for one model, the reference first for the next), so a drifting
load hits both. Printed and written to JSON, per model:
- training samples per second and seconds per epoch from each trainer's steady-state epochs (the
  median after the first), and the first epoch apart (it pays for first-call setup); the ratio;
- memory: each process's resident-memory peak, and the training data each keeps resident
  (ours: float32 on the device; the reference: uint8);
- the final test loss of both (same evaluate(), same test noise) and their relative difference;
- inference, in this process (aecore imported first, as in the app): encode + decode of the
  10,000 test images, and one 64-image grid as PNG, with our trained model.

    python -m bench.speed                                # every model on the CPU
    python -m bench.speed --models janet vae_mlp         # some of them (results are merged)
    python -m bench.speed --device cuda                  # the same table on a GPU
    python -m bench.speed --quick                        # smoke run: 2,000 images, 1 epoch

On a CUDA device each model is also trained in this process three times on the same data, seed
and epochs: as CUDA graphs (aecore.cudagraph: the whole step captured, replayed per batch), the
same in bf16 (TrainConfig.precision), and eagerly (aecore.train's epoch loop), then printed beside
the tutorial pipeline's seconds per epoch with the H100 targets of the captured step; and a few
small runs are trained one at a time and then at once (one thread and CUDA stream each, as the
job manager's GPU workers run them):

    python -m bench.speed --device cuda --models janet conv_same --epochs 3 --conv-epochs 3

Results go to bench/results/speed-<device>.json; a run of some models keeps the others' rows.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

# isort: off
import aecore  # noqa: F401  first, as in the app and the command line: its OpenMP policy
import torch

# isort: on

from aecore import cudagraph, gpu, plots, train
from aecore.checkpoints import hardware, load_checkpoint
from aecore.config import TrainConfig
from aecore.corruptions import has_level
from aecore.data import load_dataset, to_float
from aecore.evaluate import evaluate, reconstruct
from aecore.latent import encode_all
from aecore.models import MODELS
from bench import product
from bench.reference import train_indices

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
CONV = {e.name for e in MODELS if e.meta["convolutional"]}  # slower per image: fewer epochs

# Seconds per steady epoch of MNIST's 58,000 training images that the captured step must reach on
# an H100 (issue #13; batch 128). None: no target for that model.
H100_GRAPH_TARGETS = {
    "janet": 0.10,
    "janet_fashion": 0.10,
    "vae_mlp": 0.15,
    "conv_same": 0.30,
    "unet": 0.5,
}
CONCURRENT_RUNS = gpu.CUDA_WORKERS  # small runs trained at once in the concurrency check


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- one model --------------------------------------------------------------------------------


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


def reference_argv(cfg: TrainConfig, device: torch.device) -> list[str]:
    config = json.dumps(cfg.to_dict())
    return [sys.executable, "-m", "bench.reference", "--config", config, "--device", str(device)]


def train_both(
    cfg: TrainConfig, device: torch.device, runs: Path, reference_first: bool, settle: bool = True
) -> tuple[product.CliRun, dict]:
    """Our run through the command line and the reference's, one after the other. settle: on a
    CPU, ours starts once the machine is idle again (product.settle), as a user's would."""
    env = product.child_env(runs)
    ours, ref = None, None
    for which in ("reference", "ours") if reference_first else ("ours", "reference"):
        if which == "ours":
            if settle and device.type == "cpu":
                product.settle()
            ours = product.run(cfg, env, str(device))
        else:
            out, peak = product.wait_json(product.launch(reference_argv(cfg, device), env))
            ref = out | {"peak_mb": out.get("peak_rss_mb") or peak}
    return ours, ref


def bench_case(
    case: Case, device: torch.device, epochs: int, quick: bool, runs: Path, reference_first: bool
) -> dict:
    cfg = replace(case.config, epochs=epochs, limit_train=QUICK_IMAGES if quick else 0)
    ours, ref = train_both(cfg, device, runs, reference_first, settle=not quick)
    ds = load_dataset(cfg.dataset)
    our_images = len(train_indices(ds, cfg))
    ref_s = ref["epoch_seconds"]
    ref_steady = product.steady(ref_s)
    row = {
        "model": cfg.model,
        "dataset": cfg.dataset,
        "corruption": f"{cfg.corruption} {cfg.level:g}" if has_level(cfg.corruption) else "none",
        "epochs": epochs,
        "ours_images": our_images,
        "reference_images": ref["images"],
        "ours_s_per_epoch": ours.steady_epoch_s,
        "reference_s_per_epoch": ref_steady,
        "ours_first_epoch_s": ours.first_epoch_s,
        "reference_first_epoch_s": ref_s[0],
        "ours_samples_per_s": our_images / ours.steady_epoch_s,
        "reference_samples_per_s": ref["images"] / ref_steady,
        "ours_epoch_seconds": ours.epoch_seconds,
        "reference_epoch_seconds": ref_s,
        "ours_peak_mb": ours.peak_rss_mb,
        "reference_peak_mb": ref["peak_mb"],
        "ours_dataset_mb": our_images * ds.train_images[0].numel() * 4 / 2**20,
        "reference_dataset_mb": ds.train_images.numel() / 2**20,
        "ours_test_loss": ours.report["test_loss"],
        "reference_test_loss": ref["test_loss"],
        "target_speedup": case.target,
        "order": "reference, ours" if reference_first else "ours, reference",
        "ours_threads_wait": ours.report.get("threads_wait"),
    }
    row["speedup"] = row["ours_samples_per_s"] / row["reference_samples_per_s"]
    row["loss_difference"] = (row["ours_test_loss"] - ref["test_loss"]) / abs(ref["test_loss"])
    model = load_checkpoint(ours.checkpoint, device).model
    row |= inference_times(model, ds.test_images, device)
    if device.type != "cuda":
        return row
    try:
        return row | graph_vs_eager(case, cfg, device)
    except Exception as err:  # the command line's and the tutorial's figures still count
        return row | {"graph_error": f"{type(err).__name__}: {err}"}


# -- CUDA: captured against eager, and runs at once --------------------------------------------


def epoch_loop(cfg: TrainConfig, ds, device: torch.device, graphed: bool) -> dict:
    """Train cfg in this process with aecore.train's own pieces, the step captured (graphed) or
    eager: seconds per epoch (steady: median after the first), capture seconds, test loss."""
    model, train_x, _ = train._prepare(cfg, ds, device)
    gens = train._Generators(cfg, device)
    t0 = time.perf_counter()
    step, why = (
        (None, "eager: asked")
        if not graphed
        else cudagraph.graph_step(cfg, model, train_x, gens.noise)
    )
    _sync(device)
    capture_s = time.perf_counter() - t0
    opt = step.opt if step else train.make_optimizer(cfg, model)
    losses = torch.zeros(-(-len(train_x) // cfg.batch_size), device=device)
    never, ignore = (lambda: False), (lambda fraction: None)
    seconds = []
    for _ in range(cfg.epochs):
        t0 = time.perf_counter()
        if step:  # the order _train_epoch draws for itself, from the same generator
            order = torch.randperm(len(train_x), generator=gens.shuffle).to(device)
            step.epoch(order, never, ignore, losses)
        else:
            train._train_epoch(model, opt, train_x, cfg, gens, never, ignore, losses)
        _sync(device)
        seconds.append(time.perf_counter() - t0)
    model.eval()
    test = evaluate(model, ds, cfg.corruption, cfg.level, cfg.loss, pca=False)["test_loss"]
    return {
        "s_per_epoch": product.steady(seconds),
        "epoch_seconds": seconds,
        "capture_s": capture_s if step else 0.0,
        "reason": why,
        "test_loss": test,
    }


def graph_vs_eager(case: Case, cfg: TrainConfig, device: torch.device) -> dict:
    """The captured and the eager epoch loop on the same data, seed and epochs; and the captured
    one with TrainConfig.precision "bf16" (bfloat16 autocast inside the graph)."""
    ds = load_dataset(cfg.dataset)
    eager = epoch_loop(cfg, ds, device, graphed=False)
    graph = epoch_loop(cfg, ds, device, graphed=True)
    bf16 = epoch_loop(replace(cfg, precision="bf16"), ds, device, graphed=True)
    out = {f"eager_{k}": v for k, v in eager.items() if k not in ("capture_s", "reason")}
    out |= {f"graph_{k}": v for k, v in graph.items()}
    out |= {f"bf16_{k}": v for k, v in bf16.items()}
    out["graph_speedup"] = eager["s_per_epoch"] / graph["s_per_epoch"]
    for name, run in (("graph", graph), ("bf16", bf16)):
        out[f"{name}_loss_difference"] = (run["test_loss"] - eager["test_loss"]) / abs(
            eager["test_loss"]
        )
    out["h100_graph_target_s"] = H100_GRAPH_TARGETS.get(case.name)
    return out


def concurrent_runs(cfg: TrainConfig, device: torch.device, n: int = CONCURRENT_RUNS) -> dict:
    """n small runs of cfg one after the other, then n at once (a thread and CUDA stream each,
    as the job manager's GPU workers): wall seconds of both and the throughput ratio."""
    import threading

    def one() -> None:
        with gpu.worker_stream(device):
            train.train(cfg, device=device, snapshots=False)
        _sync(device)

    one()  # warm-up: kernels chosen, dataset loaded
    t0 = time.perf_counter()
    for _ in range(n):
        one()
    serial = time.perf_counter() - t0
    threads = [threading.Thread(target=one) for _ in range(n)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    together = time.perf_counter() - t0
    return {"runs": n, "one_at_a_time_s": serial, "at_once_s": together, "ratio": serial / together}


def print_gpu_table(rows: dict[str, dict], device: torch.device) -> None:
    """Seconds per steady epoch: captured (float32 and bf16), eager (both in this process), our
    command line, the tutorial pipeline; the H100 target of the captured step and whether it is
    met ("bf16": only with --precision bf16)."""
    print(
        f"{'model':<15}{'graph s/ep':>11}{'bf16':>7}{'eager':>8}{'CLI':>8}{'tutorial':>9}"
        f"{'graph/eager':>12}{'graph/tutorial':>15}{'capture s':>10}{'loss diff':>10}"
        f"{'bf16 diff':>10}{'H100 target':>12}  met"
    )
    for name, r in rows.items():
        if "graph_s_per_epoch" not in r:
            print(f"{name:<15}graph against eager failed: {r.get('graph_error', 'not run')}")
            continue
        goal = r.get("h100_graph_target_s")
        print(
            f"{name:<15}{r['graph_s_per_epoch']:>11.3f}{r['bf16_s_per_epoch']:>7.3f}"
            f"{r['eager_s_per_epoch']:>8.3f}{r['ours_s_per_epoch']:>8.3f}"
            f"{r['reference_s_per_epoch']:>9.3f}{r['graph_speedup']:>11.2f}x"
            f"{r['reference_s_per_epoch'] / r['graph_s_per_epoch']:>14.1f}x"
            f"{r['graph_capture_s']:>10.2f}{r['graph_loss_difference']:>+10.2%}"
            f"{r['bf16_loss_difference']:>+10.2%}"
            f"{'-' if goal is None else f'{goal:.3f} s':>12}  {_target_met(r, goal)}"
        )
        if r.get("graph_reason"):
            print(f"  {name}: {r['graph_reason']}")
    print(f"(targets are for an H100; this run: {_device_name(device)})")


def _target_met(row: dict, goal: float | None) -> str:
    if goal is None:
        return "-"
    if row["graph_s_per_epoch"] <= goal:
        return "yes"
    return "bf16" if row["bf16_s_per_epoch"] <= goal else "NO"


# -- the table ------------------------------------------------------------------------------


def verdict(row: dict, device: torch.device) -> str:
    target = row["target_speedup"] if device.type == "cpu" else None
    fast = target is None or row["speedup"] >= target
    same = abs(row["loss_difference"]) <= LOSS_TOLERANCE
    return "yes" if fast and same else "NO"


def print_table(rows: dict[str, dict], device: torch.device) -> None:
    """s/epoch: the steady-state epochs' median; 1st: the first epoch; peak MB: each process's."""
    nan = float("nan")  # rows written before first epochs were kept apart
    head = (
        f"{'model':<15}{'images/s ours':>14}{'reference':>11}{'ratio':>8}{'target':>8}"
        f"{'s/epoch ours':>13}{'ref':>7}{'1st ours':>9}{'ref':>7}{'peak MB':>9}{'ref':>6}"
        f"{'test loss ours':>16}"
        f"{'ref':>9}{'diff':>8}{'10k enc+dec s':>14}{'grid64 s':>9}  met"
    )
    print(head)
    for name, r in rows.items():
        goal = r["target_speedup"] if device.type == "cpu" else None
        target = f"{goal:.1f}x" if goal else "-"
        print(
            f"{name:<15}{r['ours_samples_per_s']:>14,.0f}{r['reference_samples_per_s']:>11,.0f}"
            f"{r['speedup']:>7.2f}x{target:>8}{r['ours_s_per_epoch']:>13.2f}"
            f"{r['reference_s_per_epoch']:>7.2f}{r.get('ours_first_epoch_s', nan):>9.2f}"
            f"{r.get('reference_first_epoch_s', nan):>7.2f}{r['ours_peak_mb']:>9.0f}"
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
    parser.add_argument(
        "--concurrent", type=int, default=CONCURRENT_RUNS, help="CUDA: runs at once (0: skip)"
    )
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    name = f"speed-{device.type}{'-quick' if args.quick else ''}.json"
    out = Path(args.out or Path(__file__).resolve().parent / "results" / name)
    saved = json.loads(out.read_text()) if out.is_file() else {}
    rows: dict[str, dict] = saved.get("rows", {})
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}", flush=True)
    chosen = [case for case in CASES if case.name in args.models]
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="aecore-speed-") as runs:
        for i, case in enumerate(chosen):
            conv = case.config.model in CONV
            epochs = 1 if args.quick else args.conv_epochs if conv else args.epochs
            print(f"== {case.name}: {epochs} epoch(s)", flush=True)
            try:
                row = bench_case(case, device, epochs, args.quick, Path(runs), i % 2)
            except Exception as err:  # one model's failure must not cost the others' figures
                print(f"  {case.name}: FAILED: {type(err).__name__}: {err}", flush=True)
                failed.append(case.name)
                continue
            rows[case.name] = row
            print(
                f"  {case.name}: ours {row['ours_epoch_seconds']}, "
                f"reference {row['reference_epoch_seconds']} s per epoch",
                flush=True,
            )
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"device": _device_name(device), "rows": rows}, indent=1))
    print()
    print_table({k: rows[k] for k in names if k in rows}, device)
    result = {"device": _device_name(device), "rows": rows}
    if device.type == "cuda":
        print()
        print_gpu_table({k: rows[k] for k in names if k in rows}, device)
        if args.concurrent > 0 and rows:
            result["concurrent"] = concurrent = _concurrent(chosen, device, args)
            print(
                f"\n{concurrent['runs']} small runs ({concurrent['config']}): one at a time "
                f"{concurrent['one_at_a_time_s']:.2f} s, at once {concurrent['at_once_s']:.2f} s "
                f"({concurrent['ratio']:.2f}x the throughput)"
            )
        out.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def _concurrent(chosen: list[Case], device: torch.device, args) -> dict:
    """The concurrency check on the first chosen model: 1 epoch of a tenth of its images."""
    cfg = replace(chosen[0].config, epochs=1, limit_train=QUICK_IMAGES if args.quick else 6000)
    name = f"{chosen[0].name}, 1 epoch of {cfg.limit_train} images"
    return concurrent_runs(cfg, device, args.concurrent) | {"config": name}


def _device_name(device: torch.device) -> str:
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    return hardware() + threads


if __name__ == "__main__":
    sys.exit(main())
