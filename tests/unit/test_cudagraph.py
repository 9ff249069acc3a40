"""aecore/cudagraph.py: which runs train as a CUDA graph, and (on a GPU) that they learn as eager
training does.

The first part runs everywhere: the decision (capture_reason) needs no GPU, nor does the plan of
an epoch with several steps per replay (replay_plan) or the epoch loop that follows it (its
replays recorded instead of run). The tests marked
`needs_cuda` capture and replay real CUDA graphs; a machine without CUDA cannot run them at all,
so they are skipped there, and only there. That hides no missing feature: on a CPU or MPS every
run trains eagerly by design (capture_reason says so, tested below). bench/gpu_check.sh runs
them on a GPU with AECORE_TEST_DEVICE=cuda, beside bench/speed.py's graph/eager timings.
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from aecore import cudagraph, train
from aecore.config import TrainConfig
from aecore.corruptions import CORRUPTIONS
from aecore.data import load_dataset
from aecore.models import build_model

CFG = TrainConfig(
    dataset="digits", corruption="gaussian", level=0.3, model="dense", latent=8, epochs=2
)
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="captures need CUDA")


def reason(device="cuda", **changes) -> str | None:
    cfg = dataclasses.replace(CFG, **changes)
    return cudagraph.capture_reason(cfg, build_model(cfg, (1, 8, 8)), device)


# -- the decision, on any machine ---------------------------------------------------------------


def test_capturable_runs_on_cuda():
    assert reason() is None
    assert reason(model="conv_same", latent=32) is None  # BatchNorm's running stats: in place
    assert reason(model="vae_mlp", corruption="none", level=0.0, loss="bce") is None
    assert reason(augment=True) is None  # flips and rotations draw on the device
    assert reason(regularizer="sparse", reg_weight=1e-3) is None
    assert reason(level_sampling="uniform") is None  # gaussian: sigma * noise takes a tensor


def test_reasons_for_eager_runs():
    assert "cpu" in reason("cpu") and "mps" in reason("mps")
    assert "adadelta" in reason(optimizer="adadelta", lr=1.0)
    assert "contractive" in reason(regularizer="contractive", reg_weight=1e-3)
    stripes = reason(corruption="stripes", level=3.0, level_sampling="uniform")
    assert CORRUPTIONS["stripes"].label in stripes and "host" in stripes
    assert reason(corruption="stripes", level=3.0) is None  # a fixed size is a constant


def test_level_in_graph_is_found_by_trying_the_corruption():
    assert {n for n in ("salt_pepper", "gaussian", "masking") if cudagraph.level_in_graph(n)} == {
        "salt_pepper",
        "gaussian",
        "masking",
    }
    assert not any(cudagraph.level_in_graph(n) for n in ("stripes", "block", "blur"))


def test_graph_step_off_cuda_is_eager_with_its_reason():
    x = torch.rand(10, 1, 8, 8)
    step, why = cudagraph.graph_step(CFG, build_model(CFG, (1, 8, 8)), x, torch.Generator())
    assert step is None and "cpu" in why


# -- several steps per replay: the plan and the epoch loop, on any machine -----------------------


def _covers_in_order(plan, n, batch):
    """Each step once, in order, each batch's images once: what an epoch must replay."""
    step = image = 0
    for start, steps, size in plan:
        assert start == step and steps >= 1
        step, image = step + steps, image + steps * size
    return step == math.ceil(n / batch) and image == n


@pytest.mark.parametrize("n", [1, 70, 128, 129, 1350, 2048, 58000])
@pytest.mark.parametrize("k", [1, 3, 4, 16])
def test_the_replay_plan_covers_the_epoch_in_order(n, k):
    plan = cudagraph.replay_plan(n, 128, k)
    assert _covers_in_order(plan, n, 128)
    assert {steps for _, steps, _ in plan} <= {1, k}
    assert all(size == 128 for _, _, size in plan[:-1])  # only the last batch may be smaller


def test_the_replay_plan_chunks_then_singles_then_the_tail():
    # Digits: 1,350 images = 10 full batches of 128 + 70; k=4: two chunks, two singles, the tail.
    assert cudagraph.replay_plan(1350, 128, 4) == [
        (0, 4, 128),
        (4, 4, 128),
        (8, 1, 128),
        (9, 1, 128),
        (10, 1, 70),
    ]
    assert cudagraph.replay_plan(1024, 128, 4) == [(0, 4, 128), (4, 4, 128)]
    assert cudagraph.replay_plan(1350, 128, 1) == [(s, 1, 128) for s in range(10)] + [(10, 1, 70)]
    assert cudagraph.replay_plan(300, 128, 16) == [(0, 1, 128), (1, 1, 128), (2, 1, 44)]
    assert cudagraph.replay_plan(100, 128, 4) == [(0, 1, 100)]
    assert cudagraph.replay_plan(0, 128, 4) == []
    with pytest.raises(ValueError, match="positive"):
        cudagraph.replay_plan(100, 128, 0)
    assert cudagraph.STEPS_PER_REPLAY == 1  # K > 1 gained 2-3% on an H200: not the default


def _fake_step(k: int, batch: int) -> cudagraph.GraphStep:
    """A GraphStep whose replays are recorded instead of run: the epoch loop without a GPU."""
    step = object.__new__(cudagraph.GraphStep)
    step.model, step.cfg = torch.nn.Linear(1, 1), dataclasses.replace(CFG, batch_size=batch)
    step.steps_per_replay, step.sums, step.replays = k, {"loss": torch.tensor(99.0)}, []

    def run(indices, steps=1):
        step.replays.append((indices.tolist(), steps))
        step.sums["loss"] += 2.0 * len(indices)  # a loss of 2 per image, summed as the graph does
        return torch.arange(steps, dtype=torch.float32) + 10 * len(step.replays)

    step.run = run
    return step


def test_an_epoch_replays_its_plan_and_reports_per_replay():
    step = _fake_step(k=3, batch=4)
    order = torch.randperm(23, generator=torch.Generator().manual_seed(0))
    losses, ticks, done = torch.zeros(6), [], []
    terms = step.epoch(order, lambda: False, done.append, losses, ticks.append)
    assert [s for _, s in step.replays] == [3, 1, 1, 1]  # a chunk of 3, two singles, the tail of 3
    assert sum((i for i, _ in step.replays), []) == order.tolist()  # every image once, in order
    assert ticks == [0, 3, 4, 5]  # steps done before each replay: a snapshot's label
    assert done == pytest.approx([3 / 6, 4 / 6, 5 / 6, 1.0])
    assert losses.tolist() == [10, 11, 12, 20, 30, 40]  # each step's loss at its step
    assert terms == {"loss": pytest.approx(2.0)}  # the sums zeroed, then over the 23 images


def test_a_stop_is_checked_before_each_replay():
    step = _fake_step(k=4, batch=2)
    stop_after_two = lambda: len(step.replays) >= 2  # noqa: E731
    assert step.epoch(torch.arange(20), stop_after_two, lambda f: None, torch.zeros(10)) is None
    assert [s for _, s in step.replays] == [4, 4]


# -- the optimizer over one flat buffer, on any machine ------------------------------------------


def _conv_model() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = dataclasses.replace(CFG, model="conv_same", latent=32)
    return build_model(cfg, (1, 8, 8)).to(memory_format=torch.channels_last)


def test_flat_parameters_keep_values_and_layout_in_one_buffer():
    model = _conv_model()
    before = {k: (v.detach().clone(), v.stride()) for k, v in model.named_parameters()}
    flat, grad = cudagraph.flat_parameters(model)
    assert len(flat) == len(grad) == sum(v.numel() for v, _ in before.values())
    assert not grad.any()
    base, end = flat.data_ptr(), flat.data_ptr() + flat.numel() * flat.element_size()
    for name, p in model.named_parameters():
        value, stride = before[name]
        assert torch.equal(p, value) and p.stride() == stride  # channels-last weights stay so
        assert base <= p.data_ptr() < end and p.grad.untyped_storage().data_ptr() == grad.data_ptr()
    flat.zero_()  # one buffer: the parameters are its views
    assert all(not p.any() for p in model.parameters())


def test_a_parameter_with_gaps_in_its_layout_is_made_contiguous_first():
    model = torch.nn.Linear(4, 3)
    with torch.no_grad():
        model.weight.data = torch.arange(24.0).view(3, 8)[:, ::2]  # every other column
    value = model.weight.detach().clone()
    flat, _ = cudagraph.flat_parameters(model)
    assert torch.equal(model.weight, value) and model.weight.is_contiguous()
    assert len(flat) == 12 + 3 and torch.equal(flat[:12], value.flatten())


def test_shards_cover_the_buffer_in_at_most_36_equal_slices():
    for n, count in [(241_314, 36), (688_884, 36), (3265, 4), (500, 1)]:
        flat, grad = torch.arange(float(n)), torch.zeros(n)
        shards = cudagraph.adam_shards(flat, grad)
        assert len(shards) == count and torch.equal(torch.cat(shards), flat)
        assert all(s.is_leaf and s.requires_grad and s.grad.shape == s.shape for s in shards)
        shards[0].detach().add_(1)  # slices of the buffer, not copies
        assert flat[0] == 1


def test_adam_over_the_shards_trains_as_adam_over_the_parameters():
    """The same fused Adam per value: five steps give the same weights, bit for bit, as
    aecore.train's optimizer over the model's own tensors (channels-last convs included)."""
    cfg = dataclasses.replace(CFG, model="conv_same", latent=32, lr=0.01)
    plain, sharded = _conv_model(), _conv_model()
    flat, grad = cudagraph.flat_parameters(sharded)
    opts = [
        train.make_optimizer(cfg, plain),
        cudagraph.graph_optimizer(cfg, cudagraph.adam_shards(flat, grad)),
    ]
    x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    for _ in range(5):
        for model, opt in zip((plain, sharded), opts, strict=True):
            if model is plain:
                opt.zero_grad(set_to_none=True)
            else:
                grad.zero_()
            model.loss_terms(x, x, "mse", None)["loss"].backward()
            opt.step()
    for (name, a), b in zip(plain.named_parameters(), sharded.parameters(), strict=True):
        assert torch.equal(a, b), name
    assert not torch.equal(
        plain.state_dict()["encoder.0.weight"], _conv_model().state_dict()["encoder.0.weight"]
    )


# -- captured, on a GPU -------------------------------------------------------------------------


def _run(cfg: TrainConfig, graphed: bool, stop_after: int | None = None):
    """Train cfg on digits for its epochs with the graph or eagerly; (losses per epoch, model)."""
    device = torch.device("cuda")
    ds = load_dataset(cfg.dataset)
    model, train_x, _ = train._prepare(cfg, ds, device)
    gens = train._Generators(cfg, device)
    step = None
    if graphed:
        step, why = cudagraph.graph_step(cfg, model, train_x, gens.noise)
        assert why is None
    opt = step.opt if step else train.make_optimizer(cfg, model)
    steps = math.ceil(len(train_x) / cfg.batch_size)
    losses = torch.zeros(steps, device=device)
    calls = []
    stop = lambda: stop_after is not None and len(calls) >= stop_after  # noqa: E731
    out = []
    for _ in range(cfg.epochs):
        if step:  # the same order as _train_epoch draws for itself
            order = torch.randperm(len(train_x), generator=gens.shuffle).to(device)
            terms = step.epoch(order, stop, calls.append, losses)
        else:
            terms = train._train_epoch(model, opt, train_x, cfg, gens, stop, calls.append, losses)
        if terms is None:
            return None, model
        out.append(terms["loss"])
    return out, model


@needs_cuda
@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"model": "conv_same", "latent": 32},
        {"model": "conv_same", "latent": 32, "precision": "bf16"},  # autocast captured too
        {"model": "vae_mlp", "corruption": "none", "level": 0.0, "loss": "bce", "latent": 2},
        {"augment": True, "level_sampling": "uniform"},
        {"corruption": "salt_pepper", "level": 0.2},  # 16-bit draws inside the graph
        {"corruption": "salt_pepper", "level": 0.3, "level_sampling": "uniform"},
    ],
)
def test_graph_learns_as_eager_does(changes):
    """Digits' 1,350 training images at batch 128: 10 full batches and a tail of 70 (a graph of
    its own). Same seed, same noise stream: the epoch losses agree within 2%. A sampled level is
    drawn on the device in the graph (on the CPU eagerly), so that run's noise differs: within
    8%, the spread of seeds (on a CPU, seeds 0-2 differ by up to 5% after 2 epochs)."""
    cfg = dataclasses.replace(CFG, **changes)
    eager, _ = _run(cfg, graphed=False)
    graphed, model = _run(cfg, graphed=True)
    assert all(math.isfinite(v) for v in graphed)
    assert graphed[-1] < graphed[0] or cfg.augment  # it learns
    assert graphed == pytest.approx(eager, rel=0.08 if cfg.level_sampling != "fixed" else 0.02)


@needs_cuda
def test_a_stopped_graph_epoch_returns_none():
    losses, _ = _run(CFG, graphed=True, stop_after=3)
    assert losses is None


def _graph_epochs(cfg: TrainConfig, k: int):
    """cfg's epochs on digits with k steps per replay: (parameters, per-step losses, ticks)."""
    device = torch.device("cuda")
    model, train_x, _ = train._prepare(cfg, load_dataset(cfg.dataset), device)
    gens = train._Generators(cfg, device)
    step, why = cudagraph.graph_step(cfg, model, train_x, gens.noise, steps_per_replay=k)
    assert why is None
    steps = math.ceil(len(train_x) / cfg.batch_size)
    losses, ticks = torch.zeros(steps * cfg.epochs, device=device), []
    for e in range(cfg.epochs):
        order = torch.randperm(len(train_x), generator=gens.shuffle).to(device)
        part = losses[e * steps : (e + 1) * steps]
        assert step.epoch(order, lambda: False, lambda f: None, part, ticks.append) is not None
    params = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return params, losses.cpu(), ticks


@needs_cuda
@pytest.mark.parametrize(
    "changes",
    [{}, {"model": "vae_mlp", "corruption": "none", "level": 0.0, "loss": "bce", "latent": 2}],
)
def test_four_steps_per_replay_train_as_one_step_replays(changes):
    """Digits' 1,350 images (not a multiple of 4 x 128): two 4-step replays, two 1-step and the
    tail of 70 per epoch. The noise (Gaussian; the VAE's sampling) is drawn in the same order, so
    the weights and every step's loss are those of one step per replay."""
    cfg = dataclasses.replace(CFG, **changes)
    one, one_losses, one_ticks = _graph_epochs(cfg, 1)
    four, four_losses, four_ticks = _graph_epochs(cfg, 4)
    assert one_ticks == list(range(11)) * 2 and four_ticks == [0, 4, 8, 9, 10] * 2
    assert torch.isfinite(four_losses).all() and four_losses[-1] < four_losses[0]
    # The same kernels on the same stream: equal to rounding (a noise draw out of order would
    # move the losses by about 1% and the weights by about lr per step, 1e-3).
    torch.testing.assert_close(four_losses, one_losses, rtol=1e-4, atol=1e-5)
    for name, value in one.items():
        torch.testing.assert_close(four[name], value, rtol=1e-4, atol=1e-5, msg=name)


# -- bench/speed.py's CUDA comparison, run on the CPU (its eager fallback) -----------------------


def test_bench_compares_graph_and_eager_and_prints_the_targets(capsys):
    from bench import speed

    case = speed.Case("janet", CFG, None)
    row = speed.graph_vs_eager(case, CFG, torch.device("cpu"))
    assert "cpu" in row["graph_reason"] and row["graph_capture_s"] == 0.0
    assert len(row["eager_epoch_seconds"]) == len(row["graph_epoch_seconds"]) == CFG.epochs
    # Both fell back to the same eager loop with the same seed: the same model, the same loss.
    assert row["graph_test_loss"] == pytest.approx(row["eager_test_loss"], rel=1e-6)
    assert row["h100_graph_target_s"] == speed.H100_GRAPH_TARGETS["janet"]
    row |= {"ours_s_per_epoch": 0.5, "reference_s_per_epoch": 2.0}
    speed.print_gpu_table({"janet": row}, torch.device("cpu"))
    out = capsys.readouterr().out
    assert "graph s/ep" in out and "H100 target" in out and "janet: eager on cpu" in out
    # bf16: the same model in bfloat16 autocast, near float32's loss, and its own column
    assert len(row["bf16_epoch_seconds"]) == CFG.epochs and "cpu" in row["bf16_reason"]
    assert abs(row["bf16_loss_difference"]) < 0.05 and "bf16 diff" in out
    goal = speed.H100_GRAPH_TARGETS["janet"]
    for graph, bf16, met in ((0.09, 0.08, "yes"), (0.2, 0.09, "bf16"), (0.2, 0.2, "NO")):
        fast = row | {"graph_s_per_epoch": graph, "bf16_s_per_epoch": bf16}
        assert speed._target_met(fast, goal) == met
    assert speed._target_met(row, None) == "-"


def test_bench_times_runs_one_at_a_time_and_at_once():
    from bench import speed

    cfg = dataclasses.replace(CFG, epochs=1, limit_train=256)
    got = speed.concurrent_runs(cfg, torch.device("cpu"), n=2)
    assert got["runs"] == 2 and got["one_at_a_time_s"] > 0 and got["at_once_s"] > 0
