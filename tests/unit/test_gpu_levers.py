"""bench/gpu_levers.py: the GPU levers' script, run here on its CPU smoke path (eager: nothing is
captured off CUDA, so K and cudnn.benchmark change nothing; the GPU run itself is
bench/gpu_check.sh's). What is checked: the variants it runs, the JSON's shape, the printed
tables, the profile's fields, the budget, and the one-line refusal without CUDA."""

from __future__ import annotations

import json
import math

import pytest
import torch

from bench import gpu_levers, speed

CFG_JANET = gpu_levers._config("janet", quick=True)


def test_every_k_then_bf16_then_nchw_then_cudnn_benchmark_then_the_diagnosed_steps_last():
    chosen = gpu_levers.variants()
    assert list(dict.fromkeys(v.case for v in chosen)) == list(gpu_levers.MODELS)
    # (K, cudnn.benchmark, NCHW, bf16, step)
    every_k = [(k, False, False, False, "aecore") for k in (1, 4, 16)]
    every_k.append((1, False, False, True, "aecore"))
    conv_only = [(1, False, True, False, "aecore"), (1, True, False, False, "aecore")]
    conv_only.append((1, True, True, False, "aecore"))
    diagnosed = [(1, False, False, False, "plain"), (1, False, True, False, "plain")]
    diagnosed.append((1, False, False, False, "compiled"))
    for name in gpu_levers.MODELS:
        mine = [
            (v.steps_per_replay, v.cudnn_benchmark, v.nchw, v.bf16, v.step)
            for v in chosen
            if v.case == name
        ]
        conv = gpu_levers._case(name).config.model in speed.CONV
        extra = diagnosed if name in gpu_levers.DIAGNOSED else []
        assert mine == every_k + (conv_only if conv else []) + extra
    assert gpu_levers.DIAGNOSED == ("conv_same",)
    # the plain and compiled steps come after every model's others; no compile off CUDA
    assert [v.step for v in chosen[-3:]] == ["plain", "plain", "compiled"]
    assert all(v.step == "aecore" for v in chosen[:-3])
    assert "compiled" not in {v.step for v in gpu_levers.variants(cuda=False)}
    assert {n for n in gpu_levers.MODELS if gpu_levers._case(n).config.model in speed.CONV} == {
        "conv_same",
        "unet",
    }


def test_the_configs_are_bench_speeds():
    cases = {c.name: c.config for c in speed.CASES}
    for name in gpu_levers.MODELS:
        assert gpu_levers._case(name).config == cases[name]
    assert cases["janet"].latent == 50 and cases["janet"].corruption == "salt_pepper"
    assert cases["vae_mlp"].loss == "bce" and cases["vae_mlp"].corruption == "none"


def test_the_quick_cpu_run_writes_every_variant_and_the_profiles(tmp_path, capsys):
    out = tmp_path / "levers.json"
    argv = ["--device", "cpu", "--quick", "--models", "janet", "conv_same", "--out", str(out)]
    assert gpu_levers.main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved["quick"] is True and saved["epochs"] == gpu_levers.EPOCHS == 2
    rows = saved["rows"]
    labels = [
        (r["case"], r["steps_per_replay"], r["cudnn_benchmark"], r["nchw"], r["bf16"], r["step"])
        for r in rows
    ]
    assert labels == [
        ("janet", 1, False, False, False, "aecore"),
        ("janet", 4, False, False, False, "aecore"),
        ("janet", 16, False, False, False, "aecore"),
        ("janet", 1, False, False, True, "aecore"),
        ("conv_same", 1, False, False, False, "aecore"),
        ("conv_same", 4, False, False, False, "aecore"),
        ("conv_same", 16, False, False, False, "aecore"),
        ("conv_same", 1, False, False, True, "aecore"),
        ("conv_same", 1, False, True, False, "aecore"),
        ("conv_same", 1, True, False, False, "aecore"),
        ("conv_same", 1, True, True, False, "aecore"),
        ("conv_same", 1, False, False, False, "plain"),
        ("conv_same", 1, False, True, False, "plain"),
    ]
    for r in rows:
        assert r["mode"] == "eager" and "cpu" in r["reason"] and r["capture_s"] == 0.0
        assert r["images"] == gpu_levers.QUICK_IMAGES and len(r["epoch_seconds"]) == 2
        assert r["s_per_epoch"] == r["epoch_seconds"][-1] > 0
        assert math.isfinite(r["final_train_loss"])
    for case in ("janet", "conv_same"):  # eager with the same seed: K changes nothing here
        mine = [r for r in rows if r["case"] == case and r["step"] == "aecore"]
        losses = {r["final_train_loss"] for r in mine if not r["nchw"] and not r["bf16"]}
        assert len(losses) == 1
        # NCHW: other convolution kernels, the same arithmetic up to rounding
        for r in (r for r in mine if r["nchw"]):
            assert r["final_train_loss"] == pytest.approx(next(iter(losses)), rel=1e-5)
        (bf16,) = (r for r in mine if r["bf16"])  # bfloat16 products: near, not equal
        assert bf16["final_train_loss"] == pytest.approx(next(iter(losses)), rel=0.05)
    # The plain step: its own noise draws and loss, the same in both layouts, near aecore's
    plain = [r["final_train_loss"] for r in rows if r["step"] == "plain"]
    assert plain[0] == pytest.approx(plain[1], rel=1e-5)
    assert plain[0] == pytest.approx(rows[4]["final_train_loss"], rel=0.25)
    assert set(saved["profiles"]) == {"janet", "conv_same", "conv_same bf16"}
    for name, p in saved["profiles"].items():
        assert p["case"] == name.split()[0] and p["mode"] == "eager" and p["steps_per_replay"] == 1
        assert p["precision"] == ("bf16" if name.endswith("bf16") else "fp32")
        assert p["wall_s"] > 0 and p["warm_epoch_s"] > 0 and p["cpu_self_total_s"] > 0
        assert p["cuda_total_s"] == 0 and p["gpu_events"] == 0 and p["kernels"] == []
        assert 0 < len(p["host"]) <= gpu_levers.TOP_HOST
        assert all(e["calls"] >= 1 and e["ms"] >= 0 for e in p["host"])
        assert "eager" not in p  # only for a graph whose kernels the profiler missed
    conv_ops = {e["name"] for e in saved["profiles"]["conv_same"]["host"]}
    assert any("convolution" in name for name in conv_ops)
    text = capsys.readouterr().out
    assert "plain, K=1, NCHW" in text
    assert "vs K=1" in text and "K=1, cudnn.bench" in text and "K=1, bf16" in text
    assert "profile: janet, K=1, one eager epoch" in text and "host self CPU ms" in text
    assert "profile: conv_same bf16, K=1" in text
    assert text.index("final train loss") < text.index("profile: janet")  # the timings first


def test_a_spent_budget_skips_the_rest_and_still_writes(tmp_path, capsys):
    out = tmp_path / "levers.json"
    argv = ["--device", "cpu", "--quick", "--models", "vae_mlp", "--budget-s", "0"]
    assert gpu_levers.main(argv + ["--out", str(out)]) == 1
    rows = json.loads(out.read_text())["rows"]
    assert len(rows) == 4 and all(r["error"].startswith("skipped") for r in rows)
    assert "FAILED or skipped: vae_mlp K=1" in capsys.readouterr().out


def test_without_cuda_it_stops_with_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "levers.json"
    assert gpu_levers.main(["--device", "cuda", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA GPU" in err and not out.exists()


def test_a_profile_that_fails_is_reported_not_raised(monkeypatch):
    class Broken:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("CUPTI_ERROR_NOT_INITIALIZED\nmore")

    monkeypatch.setattr(gpu_levers, "profile", Broken)
    run = type("R", (), {"device": torch.device("cpu")})()
    assert gpu_levers.profile_epoch(run) == {"error": "RuntimeError: CUPTI_ERROR_NOT_INITIALIZED"}


@pytest.mark.parametrize("n", [0, 5])
def test_the_top_list_sums_by_name(n):
    ev = lambda name, us: type("E", (), {"name": name, "us": us})()  # noqa: E731
    events = [ev("a", 1.0), ev("b", 5.0), ev("a", 7.0)]
    top = gpu_levers._top(events, lambda e: e.us, n)
    assert (
        top == [{"name": "a", "calls": 2, "ms": 0.008}, {"name": "b", "calls": 1, "ms": 0.005}][:n]
    )


def test_a_graph_profile_without_kernels_is_followed_by_an_eager_one(monkeypatch):
    """Where the profiler records no kernel of a graph's replays (possible with some CUPTI
    versions), the same epoch's GPU work is profiled eagerly instead: the GPU case, faked."""
    made = []

    class FakeRun:
        def __init__(self, cfg, ds, device, k, eager=False):
            self.step, self.mode = (None, "eager") if eager else (object(), "graph")
            made.append(self.mode)

        def epoch(self):
            return 0.5, 1.0

    def fake_profile(run):
        return {"gpu_events": 0 if run.mode == "graph" else 7, "wall_s": 0.6}

    monkeypatch.setattr(gpu_levers, "_Run", FakeRun)
    monkeypatch.setattr(gpu_levers, "profile_epoch", fake_profile)
    got = gpu_levers.profile_case("janet", CFG_JANET, None, torch.device("cpu"))
    assert made == ["graph", "eager"] and got["mode"] == "graph" and got["warm_epoch_s"] == 0.5
    assert got["gpu_events"] == 0 and got["eager"]["gpu_events"] == 7
    assert got["eager"]["mode"] == "eager"
    monkeypatch.setattr(gpu_levers, "profile_epoch", lambda run: {"gpu_events": 3})
    made.clear()
    assert "eager" not in gpu_levers.profile_case("janet", CFG_JANET, None, torch.device("cpu"))
    assert made == ["graph"]
