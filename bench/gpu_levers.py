"""The levers of the captured training step on a GPU (issue #13), measured in one short run.

The first GPU run of the captured step (aecore.cudagraph) missed three of its four H100 targets.
This script measures what could close the gap, for the models of bench/speed.py's GPU table (same
configs, imported from there), on MNIST, batch 128. What it found on an H200 (README, "GPU"): the
step was GPU-bound, fused Adam took a third of JANet's GPU time (now sharded, see
cudagraph.ADAM_SHARDS), and cuDNN's NCHW BatchNorm half of conv_same's (now channels-last).

- steps per replay K in {1, 4, 16} (aecore.cudagraph's steps_per_replay): the host's per-replay
  work paid once per K batches;
- for the convolutional models (K=1): the model and images in NCHW (contiguous) memory format
  instead of aecore.train's channels-last, and torch.backends.cudnn.benchmark on, without and
  with NCHW;
- K=1 with TrainConfig.precision "bf16" (bfloat16 autocast captured in the graph), for every
  model: on an H200 it gained the MLPs 8% and conv_same nothing (its 1-16-channel convolutions
  leave the tensor cores idle);
- for conv_same, which still misses its target: the step as a plain script writes it (_PlainRun:
  the issue's own measurement, 0.25 s per epoch on an H100, against aecore's 0.37 on an H200),
  channels-last and NCHW, which tells aecore's step's own cost from the kernels'; and aecore's
  step with the encoder and decoder under torch.compile (CUDA only), whose fused kernels are
  the next lever;
- each variant's train loss after its last epoch: equal K variants train the same numbers;
- a torch.profiler table of one JANet, one vae_mlp and one conv_same epoch (K=1), and one
  conv_same epoch in bf16: the top kernels by self CUDA time, and the epoch's CPU time against its
  GPU time (how busy the GPU is).

Each variant trains EPOCHS epochs from a fresh model and reports the last (the first pays for
first-call allocations). The timings come first and their table is printed before the profiles
run (each in a fresh run: a warm epoch, then the profiled one), so a profiler that fails or hangs
costs no timing. Printed as tables and written to JSON (saved after every variant and profile):

    python -m bench.gpu_levers --device cuda --out bench/results/gpu_levers.json
    python -m bench.gpu_levers --device cpu --quick      # smoke run: eager, a few hundred images

Budget: 50 timed epochs and up to 16 for the profiles, 0.1-1.3 s each on an H100-class GPU:
about 20 s of training, about a minute with the captures, the data and the profiler, plus the
compile (13 s on a 2-core CPU); no timing variant starts after --budget-s (default BUDGET_S).
On a CPU nothing is captured (K and cudnn change nothing there): the quick path only checks
that the script and its JSON work.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

# isort: off
import aecore  # noqa: F401  first, as in the app and the command line: its OpenMP policy
import torch

# isort: on

from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from aecore import cudagraph, train
from aecore.config import TrainConfig
from aecore.data import load_dataset
from bench import speed

MODELS = ("janet", "vae_mlp", "conv_same", "unet")
REPLAYS = (1, 4, 16)  # steps per replay
EPOCHS = 2
QUICK_IMAGES = 300
# One epoch of each under torch.profiler, K=1: (case, bf16). conv_same also in bf16: whether its
# convolutions or its BatchNorm bound the step there.
PROFILED = (("janet", False), ("vae_mlp", False), ("conv_same", False), ("conv_same", True))
TOP_KERNELS = 15  # kernels by their GPU time
TOP_HOST = 8  # host events by their self CPU time: where the per-replay overhead goes
BUDGET_S = 60.0  # no timing variant starts after this; gpu_check.sh stops the script at 120 s


# Where the captured step misses its target: also timed as a plain script's step (in both
# layouts), and with its encoder and decoder compiled by torch.compile.
DIAGNOSED = ("conv_same",)


@dataclass(frozen=True)
class Variant:
    case: str  # bench.speed's case name
    steps_per_replay: int
    cudnn_benchmark: bool
    nchw: bool = False  # contiguous tensors instead of aecore.train's channels-last
    bf16: bool = False  # TrainConfig.precision "bf16": bfloat16 autocast inside the graph
    # "aecore": aecore.cudagraph's step; "plain": a tutorial-style script's step (_PlainRun);
    # "compiled": aecore's step with the model's encoder and decoder under torch.compile
    step: str = "aecore"


def variants(names: tuple[str, ...] = MODELS, cuda: bool = True) -> list[Variant]:
    """Every K with cudnn.benchmark off, K=1 in bf16, then (convolutional models, K=1) NCHW, and
    cudnn.benchmark on without and with it: last, so the algorithms it picks cannot leak into the
    runs with it off. Then, for the DIAGNOSED models, the plain step in both layouts and (on
    CUDA only: on a CPU it takes a C++ compiler and a 13 s compile) the compiled one."""
    out = []
    for name in names:
        out += [Variant(name, k, False) for k in REPLAYS] + [Variant(name, 1, False, bf16=True)]
        if _case(name).config.model in speed.CONV:
            out += [
                Variant(name, 1, False, True),
                Variant(name, 1, True),
                Variant(name, 1, True, True),
            ]
    for name in (n for n in names if n in DIAGNOSED):  # last: a compile may take a while
        out += [
            Variant(name, 1, False, step="plain"),
            Variant(name, 1, False, True, step="plain"),
        ]
        if cuda:
            out.append(Variant(name, 1, False, step="compiled"))
    return out


def _case(name: str) -> speed.Case:
    return next(c for c in speed.CASES if c.name == name)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


# -- one variant ------------------------------------------------------------------------------


class _Run:
    """A fresh model of cfg on device with its step: captured with k steps per replay on CUDA,
    eager when asked, off CUDA, or where the capture is refused (`reason` says why)."""

    def __init__(
        self,
        cfg: TrainConfig,
        ds,
        device: torch.device,
        k: int,
        eager: bool = False,
        nchw: bool = False,
        compiled: bool = False,
    ) -> None:
        self.cfg, self.device = cfg, device
        self.model, self.train_x, _ = train._prepare(cfg, ds, device)
        if nchw:
            self.model = self.model.to(memory_format=torch.contiguous_format)
            self.train_x = self.train_x.contiguous()
        if compiled:  # compiled at the capture's warm-up step, so capture_s includes it
            self.model.encoder = torch.compile(self.model.encoder)
            self.model.decoder = torch.compile(self.model.decoder)
        self.gens = train._Generators(cfg, device)
        t0 = time.perf_counter()
        self.step, self.reason = (
            (None, "eager: asked")
            if eager
            else cudagraph.graph_step(
                cfg, self.model, self.train_x, self.gens.noise, steps_per_replay=k
            )
        )
        _sync(device)
        self.capture_s = time.perf_counter() - t0 if self.step else 0.0
        self.opt = self.step.opt if self.step else train.make_optimizer(cfg, self.model)
        self.losses = torch.zeros(-(-len(self.train_x) // cfg.batch_size), device=device)

    @property
    def mode(self) -> str:
        return "graph" if self.step else "eager"

    def epoch(self) -> tuple[float, float]:
        """(seconds, the epoch's mean train loss) of one epoch, the GPU synchronised."""
        never, ignore = (lambda: False), (lambda fraction: None)
        _sync(self.device)
        t0 = time.perf_counter()
        if self.step:  # the order _train_epoch draws for itself, from the same generator
            order = torch.randperm(len(self.train_x), generator=self.gens.shuffle)
            terms = self.step.epoch(order.to(self.device), never, ignore, self.losses)
        else:
            terms = train._train_epoch(
                self.model, self.opt, self.train_x, self.cfg, self.gens, never, ignore, self.losses
            )
        _sync(self.device)
        return time.perf_counter() - t0, terms["loss"]


class _PlainRun:
    """The step as a short script writes it (the issue's "what the GPU can do" measurement): the
    case's own model, F.mse_loss on its output, Adam (fused, capturable) over the parameters as
    they are, gradients zeroed in place, the batch's images and its Gaussian noise taken on the
    device; captured whole as one CUDA graph on CUDA, eager elsewhere. Full batches only; the
    epoch's loss is the mean of its batches'. Nothing of aecore's step: no flat parameter
    buffer, no loss terms, no per-term sums."""

    def __init__(self, cfg: TrainConfig, ds, device: torch.device, nchw: bool = False) -> None:
        self.cfg, self.device = cfg, device
        self.model, self.train_x, _ = train._prepare(cfg, ds, device)
        if nchw:
            self.model = self.model.to(memory_format=torch.contiguous_format)
            self.train_x = self.train_x.contiguous()
        cuda = device.type == "cuda"
        self.opt = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, fused=True, capturable=cuda)
        self.idx = torch.arange(cfg.batch_size, device=device)
        self.noise = torch.Generator(device).manual_seed(cfg.seed)
        self.total = torch.zeros((), device=device)
        self.step, self.reason, self.capture_s = None, f"eager: {device.type}", 0.0
        if cuda:
            t0 = time.perf_counter()
            self.step = self._capture()
            self.capture_s, self.reason = time.perf_counter() - t0, None

    def _body(self) -> None:
        clean = self.train_x[self.idx]
        noise = torch.randn(clean.shape, device=self.device, generator=self.noise)
        noisy = (clean + self.cfg.level * noise).clamp_(0, 1)
        loss = torch.nn.functional.mse_loss(self.model(noisy), clean)
        self.opt.zero_grad(set_to_none=False)
        loss.backward()
        self.opt.step()
        self.total.add_(loss.detach())

    def _capture(self) -> torch.cuda.CUDAGraph:
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):  # warm-up: kernels chosen, gradients and Adam's state made
                self._body()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        graph.register_generator_state(self.noise)
        with torch.cuda.graph(graph):
            self._body()
        return graph

    @property
    def mode(self) -> str:
        return "graph" if self.step else "eager"

    def epoch(self) -> tuple[float, float]:
        b = self.cfg.batch_size
        steps = len(self.train_x) // b
        order = torch.randperm(len(self.train_x), device=self.device)
        self.total.zero_()
        _sync(self.device)
        t0 = time.perf_counter()
        for i in range(steps):
            self.idx.copy_(order[i * b : (i + 1) * b])
            if self.step:
                self.step.replay()
            else:
                self._body()
        _sync(self.device)
        return time.perf_counter() - t0, float(self.total) / steps


def measure(variant: Variant, cfg: TrainConfig, ds, device: torch.device) -> dict:
    """Train the variant EPOCHS epochs from a fresh model: its row."""
    before = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = variant.cudnn_benchmark
    try:
        run = (
            _PlainRun(cfg, ds, device, variant.nchw)
            if variant.step == "plain"
            else _Run(
                cfg,
                ds,
                device,
                variant.steps_per_replay,
                nchw=variant.nchw,
                compiled=variant.step == "compiled",
            )
        )
        seconds, loss = [], float("nan")
        for _ in range(EPOCHS):
            s, loss = run.epoch()
            seconds.append(s)
    finally:
        torch.backends.cudnn.benchmark = before
    return _row_of(variant) | {
        "model": cfg.model,
        "mode": run.mode,
        "reason": run.reason,
        "images": len(run.train_x),
        "capture_s": run.capture_s,
        "epoch_seconds": seconds,
        "s_per_epoch": seconds[-1],
        "final_train_loss": loss,
    }


# -- the profile ------------------------------------------------------------------------------


def _on_gpu(event) -> bool:
    """A kernel, copy or set on the GPU (not a CPU op, not a user annotation)."""
    return event.device_type == DeviceType.CUDA and not getattr(event, "is_user_annotation", False)


def _gpu_us(event) -> float:
    """A GPU event's duration in microseconds, from its own time range (device_time_total
    depends on the profiler's use_device, which has changed between torch versions)."""
    return float(event.time_range.elapsed_us())


def _top(events, key, n: int) -> list[dict]:
    """The n names with the largest summed key (microseconds) over events, with their calls."""
    total: dict[str, list] = {}
    for e in events:
        entry = total.setdefault(e.name, [0, 0.0])
        entry[0] += 1
        entry[1] += float(key(e))
    ranked = sorted(total.items(), key=lambda item: item[1][1], reverse=True)[:n]
    return [{"name": name, "calls": calls, "ms": us / 1e3} for name, (calls, us) in ranked]


def profile_epoch(run: _Run) -> dict:
    """One more epoch of `run` under torch.profiler: its wall seconds, the summed self time of
    the host's events and the GPU's time (kernels, copies, sets: how long the GPU was busy), the
    top kernels by GPU time and the top host events by self CPU time. A profiler that fails
    (CUPTI missing or busy) is reported, not raised: the timings still count."""
    cuda = run.device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    try:
        with profile(activities=activities) as prof:
            wall, _ = run.epoch()
        events = list(prof.events())
    except Exception as err:  # noqa: BLE001  any profiler failure: the rest of the run counts
        return {"error": _one_line(err)}
    gpu = [e for e in events if _on_gpu(e)]
    host = [e for e in events if e.device_type == DeviceType.CPU]
    return {
        "wall_s": wall,
        "cpu_self_total_s": sum(float(e.self_cpu_time_total) for e in host) / 1e6,
        "cuda_total_s": sum(_gpu_us(e) for e in gpu) / 1e6,
        "gpu_events": len(gpu),
        "kernels": _top(gpu, _gpu_us, TOP_KERNELS),
        "host": _top(host, lambda e: e.self_cpu_time_total, TOP_HOST),
    }


def profile_case(name: str, cfg: TrainConfig, ds, device: torch.device) -> dict:
    """A fresh K=1 run of the case: one warm epoch (unprofiled: its seconds), then one profiled.
    When the profiler saw no kernel of the graph's replays, a warm eager epoch is profiled too:
    its kernels are the same GPU work, launched one by one."""
    run = _Run(cfg, ds, device, 1)
    warm_s, _ = run.epoch()
    out = {"case": name, "precision": cfg.precision, "mode": run.mode, "steps_per_replay": 1}
    out["warm_epoch_s"] = warm_s
    out |= profile_epoch(run)
    if run.step and out.get("gpu_events") == 0:
        eager = _Run(cfg, ds, device, 1, eager=True)
        eager_s, _ = eager.epoch()
        out["eager"] = {"mode": "eager", "warm_epoch_s": eager_s} | profile_epoch(eager)
    return out


# -- the tables -----------------------------------------------------------------------------


def print_table(rows: list[dict]) -> None:
    """Seconds of the last epoch per variant, against the model's K=1 row; the final losses."""
    print(
        f"{'model':<11}{'variant':<22}{'mode':<7}{'s/epoch':>9}{'1st':>8}{'vs K=1':>8}"
        f"{'capture s':>10}{'final train loss':>18}{'H100 target':>12}"
    )
    for r in rows:
        if "error" in r:
            error = r["error"] if r["error"].startswith("skipped") else f"FAILED: {r['error']}"
            print(f"{r['case']:<11}{_variant_label(r):<22}{error}")
            continue
        # The model's first row: K=1, cudnn.benchmark off.
        base = next((b for b in rows if b["case"] == r["case"] and "error" not in b), r)
        target = speed.H100_GRAPH_TARGETS.get(r["case"])
        print(
            f"{r['case']:<11}{_variant_label(r):<22}{r['mode']:<7}{r['s_per_epoch']:>9.3f}"
            f"{r['epoch_seconds'][0]:>8.3f}{base['s_per_epoch'] / r['s_per_epoch']:>7.2f}x"
            f"{r['capture_s']:>10.2f}{r['final_train_loss']:>18.6f}"
            f"{'-' if target is None else f'{target:.3f} s':>12}"
        )


def _variant_label(row: dict) -> str:
    bench_on = ", cudnn.bench" if row["cudnn_benchmark"] else ""
    nchw = ", NCHW" if row.get("nchw") else ""
    bf16 = ", bf16" if row.get("bf16") else ""
    step = "" if row.get("step", "aecore") == "aecore" else f"{row['step']}, "
    return f"{step}K={row['steps_per_replay']}{nchw}{bf16}{bench_on}"


def print_profile(p: dict, case: str) -> None:
    """One profiled epoch: how busy the GPU was, its top kernels, the host's top events."""
    head = f"profile: {case}, K=1, one {p['mode']} epoch"
    if "error" in p:
        print(f"{head}: the profiler failed: {p['error']}")
        return
    print(f"{head}: {p['wall_s']:.3f} s profiled, {p['warm_epoch_s']:.3f} s the epoch before")
    print(
        f"  host self CPU {p['cpu_self_total_s']:.3f} s; GPU busy {p['cuda_total_s']:.3f} s: "
        f"{_share(p['cuda_total_s'], p['wall_s'])} of the profiled epoch, "
        f"{_share(p['cuda_total_s'], p['warm_epoch_s'])} of the unprofiled one"
    )
    if p["mode"] == "graph" and p["gpu_events"] == 0:
        print("  (no GPU events recorded: this profiler does not see the graph's kernels)")
    for title, entries in (("GPU ms", p["kernels"]), ("host self CPU ms", p["host"])):
        if entries:
            print(f"  {title:>16}{'calls':>8}  name")
        for e in entries:
            print(f"  {e['ms']:>16.2f}{e['calls']:>8}  {e['name'][:100]}")


def _share(part: float, whole: float) -> str:
    return f"{part / whole:.0%}" if whole > 0 else "-"


# -- main ------------------------------------------------------------------------------------


NO_CUDA = (
    "gpu_levers: no CUDA GPU here (torch.cuda.is_available() is False): these levers need one "
    "(--device cpu --quick runs the smoke path)"
)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(NO_CUDA, file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    print(f"gpu_levers: torch {torch.__version__}, {speed._device_name(device)}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"device": speed._device_name(device), "torch": torch.__version__}
    result |= {"quick": args.quick, "epochs": EPOCHS, "rows": [], "profiles": {}, "seconds": 0.0}

    def save() -> None:  # after every variant and profile: a run cut short keeps what it has
        result["seconds"] = time.perf_counter() - t_start
        out.write_text(json.dumps(result, indent=1))

    datasets: dict[str, object] = {}
    chosen = variants(tuple(args.models), cuda=device.type == "cuda")
    result["rows"] = run_all(chosen, device, args.quick, t_start + args.budget_s, datasets, save)
    print()
    print_table(result["rows"])
    for case, bf16 in (p for p in PROFILED if p[0] in args.models):
        name = f"{case} bf16" if bf16 else case
        result["profiles"][name] = _profile_or_error(case, bf16, device, args.quick, datasets)
        save()
        print()
        print_profile(result["profiles"][name], name)
        if "eager" in result["profiles"][name]:
            print_profile(result["profiles"][name]["eager"], name)
    save()
    return _finish(result, out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda (the measurement) or cpu")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_IMAGES} images")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--out", default="bench/results/gpu_levers.json", help="JSON file")
    parser.add_argument(
        "--budget-s", type=float, default=BUDGET_S, help="start no timing variant after this"
    )
    return parser


def _finish(result: dict, out: Path) -> int:
    unfinished = [f"{r['case']} {_variant_label(r)}" for r in result["rows"] if "error" in r]
    unfinished += [f"profile {n}" for n, p in result["profiles"].items() if "error" in p]
    print(f"\ngpu_levers: {result['seconds']:.0f} s; wrote {out}")
    if unfinished:
        print(f"gpu_levers: FAILED or skipped: {', '.join(unfinished)}")
    return 1 if unfinished else 0


def _dataset(cfg: TrainConfig, datasets: dict):
    if cfg.dataset not in datasets:
        datasets[cfg.dataset] = load_dataset(cfg.dataset)
    return datasets[cfg.dataset]


def _config(name: str, quick: bool) -> TrainConfig:
    return replace(_case(name).config, limit_train=QUICK_IMAGES if quick else 0)


def run_all(
    chosen: list[Variant], device: torch.device, quick: bool, deadline: float, datasets, save
) -> list[dict]:
    """Each variant's row, in order, saved after each; one that fails, or would start after
    the deadline, gets a row with its error (the others' figures still count)."""
    rows: list[dict] = []
    for v in chosen:
        cfg = replace(_config(v.case, quick), precision="bf16" if v.bf16 else "fp32")
        name = f"{v.case} {_variant_label(_row_of(v))}"
        if time.perf_counter() > deadline:
            rows.append(_row_of(v) | {"error": "skipped: the run's time budget was spent"})
            print(f"  {name}: skipped (over the budget)", flush=True)
            continue
        try:
            rows.append(measure(v, cfg, _dataset(cfg, datasets), device))
            print(f"  {name}: {rows[-1]['epoch_seconds']} s", flush=True)
        except Exception as err:  # noqa: BLE001  one variant's failure must not cost the rest
            rows.append(_row_of(v) | {"error": _one_line(err)})
            print(f"  {name}: FAILED: {rows[-1]['error']}", flush=True)
        save()
    return rows


def _profile_or_error(name: str, bf16: bool, device: torch.device, quick: bool, datasets) -> dict:
    cfg = replace(_config(name, quick), precision="bf16" if bf16 else "fp32")
    try:
        return profile_case(name, cfg, _dataset(cfg, datasets), device)
    except Exception as err:  # noqa: BLE001  a failed run (not the profiler): reported
        return {"case": name, "mode": "graph" if device.type == "cuda" else "eager"} | {
            "error": _one_line(err)
        }


def _one_line(err: Exception) -> str:
    return f"{type(err).__name__}: {(str(err).splitlines() or [''])[0][:200]}"


def _row_of(v: Variant) -> dict:
    return {
        "case": v.case,
        "steps_per_replay": v.steps_per_replay,
        "cudnn_benchmark": v.cudnn_benchmark,
        "nchw": v.nchw,
        "bf16": v.bf16,
        "step": v.step,
    }


if __name__ == "__main__":
    sys.exit(main())
