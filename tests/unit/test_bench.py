"""The benchmarks, each in a run small enough for the suite: what they time, print and write."""

import json
import math
import sys

import pytest

from aecore import cli
from aecore.config import TrainConfig
from bench import product, speed, threads


def test_quick_speed_run_writes_a_row_per_model(tmp_path, capsys):
    out = tmp_path / "speed.json"
    assert speed.main(["--quick", "--models", "dense", "conv_same", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    assert set(rows) == {"dense", "conv_same"}
    for row in rows.values():
        assert row["ours_samples_per_s"] > 0 and row["reference_samples_per_s"] > 0
        assert row["ours_images"] == row["reference_images"]  # same training images
        assert math.isfinite(row["ours_test_loss"]) and math.isfinite(row["reference_test_loss"])
        assert row["encode_decode_test_s"] > 0 and row["grid64_png_s"] > 0
        assert row["ours_first_epoch_s"] > 0 and row["reference_first_epoch_s"] > 0
        assert row["ours_peak_mb"] > 0 and row["reference_peak_mb"] > 0
    table = capsys.readouterr().out
    assert "conv_same" in table and "images/s ours" in table


def test_the_product_path_is_the_command_line_with_these_settings():
    cfg = TrainConfig(
        dataset="digits",
        model="janet",
        latent=8,
        corruption="salt_pepper",
        level=0.1,
        regularizer="sparse",
        reg_weight=1e-4,
        augment=True,
        level_sampling="uniform",
        epochs=5,  # the default, passed anyway: a run's length is never implicit
    )
    argv = product.train_argv(cfg, "cpu")
    assert argv[:3] == [sys.executable, "-m", "aecore"] and "--epochs" in argv
    args = cli.build_parser().parse_args(argv[3:])
    assert cli._config_from_args(args) == cfg and args.force and args.json
    assert product.train_argv(cfg, torch_first=True)[1:3] == ["-c", product.TORCH_FIRST]


def test_a_run_gets_only_the_wait_variables_it_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")  # what importing aecore put here
    monkeypatch.setenv("GOMP_SPINCOUNT", "5")
    env = product.child_env(tmp_path, OMP_NUM_THREADS="1")
    assert "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env
    assert env["OMP_NUM_THREADS"] == "1" and env["AECORE_RUNS_DIR"] == str(tmp_path)
    assert product.child_env(tmp_path, {"OMP_WAIT_POLICY": "ACTIVE"})["OMP_WAIT_POLICY"] == "ACTIVE"


def test_the_first_epoch_is_kept_out_of_the_steady_state():
    assert product.steady([9.0, 1.0, 3.0, 2.0]) == 2.0
    assert product.steady([4.0]) == 4.0


def test_a_run_over_its_time_is_stopped(tmp_path):
    cfg = TrainConfig(dataset="digits", model="dense", corruption="none", epochs=200)
    run = product.start(cfg, product.child_env(tmp_path), "cpu")
    with pytest.raises(TimeoutError, match="ran over"):
        product.finish(run, timeout=0.5)
    assert run.proc.returncode == -9 and not run.out.parent.exists()


def test_the_threads_table_runs_through_the_command_line(tmp_path, capsys):
    out = tmp_path / "threads.json"
    argv = ["--epochs", "2", "--train-size", "300", "--threads", "1", "--scenarios", "idle"]
    argv += ["--policies", "PASSIVE", "unset", "--out", str(out)]
    assert threads.main(argv) == 0
    saved = json.loads(out.read_text())
    assert saved["meta"]["openmp"] == "gnu"  # torch's Linux wheels: GOMP_SPINCOUNT applies
    cells = {c["policy"]: c for c in saved["cells"]}
    assert set(cells) == {"PASSIVE", "unset"}
    for cell in cells.values():
        assert cell["steady_epoch_s"] > 0 and len(cell["epoch_seconds"][0]) == 2
    assert cells["unset"]["env"] == {} and cells["PASSIVE"]["threads"] == 1
    table = capsys.readouterr().out
    assert "idle 1t" in table and "GOMP_SPINCOUNT" not in table.split("steady-state")[1]


def test_the_precision_bench_alternates_through_the_command_line(tmp_path, capsys):
    from bench import precision

    out = tmp_path / "precision.json"
    argv = ["--models", "janet", "--seeds", "0", "1", "--epochs", "2", "--limit-train", "300"]
    assert precision.main(argv + ["--out", str(out)]) == 0
    saved = json.loads(out.read_text())["janet"]
    assert saved["config"]["limit_train"] == 300 and saved["config"]["latent"] == 50
    for p in ("fp32", "bf16"):
        runs = saved["runs"][p]
        assert [r["seed"] for r in runs] == [0, 1]
        assert all(len(r["epoch_seconds"]) == 2 and r["steady_s"] > 0 for r in runs)
        assert all(math.isfinite(r["test_loss"]) for r in runs)
        assert all(r["threads_wait"] == "OMP_WAIT_POLICY=ACTIVE" for r in runs)  # as it sets
    assert len(saved["bf16_over_fp32"]) == 2
    fp32, bf16 = (saved["runs"][p][0]["test_loss"] for p in ("fp32", "bf16"))
    assert fp32 != bf16 and bf16 == pytest.approx(fp32, rel=0.1)  # bf16 did run, and learned
    table = capsys.readouterr().out
    assert "bf16/fp32" in table and "janet" in table and "1.0" in table


def test_the_allocator_bench_alternates_both_arms_through_the_command_line(tmp_path, capsys):
    from bench import allocator

    out = tmp_path / "allocator.json"
    argv = ["--models", "conv_same", "--pairs", "2", "--epochs", "2", "--train-size", "300"]
    assert allocator.main(argv + ["--no-settle", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]["conv_same"]
    for arm in ("glibc", "kept"):
        assert len(rows[arm]) == 2
        assert all(len(r["epoch_s"]) == 2 and r["steady_epoch_s"] > 0 for r in rows[arm])
        assert all(r["page_faults"] > 0 and r["peak_rss_mb"] > 0 for r in rows[arm])
    printed = capsys.readouterr().out.splitlines()
    runs = [line.split()[1] for line in printed if line.startswith("  conv_same")]
    assert runs == ["glibc", "kept", "kept", "glibc"]  # alternating, pair by pair
    assert printed[-2].startswith("conv_same")


def test_the_evaluation_bench_times_both_batch_sizes(capsys):
    from bench import evaluation

    argv = ["--dataset", "digits", "--models", "conv_same", "janet", "--rounds", "1"]
    assert evaluation.main(argv) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[2:]]
    assert [(r[0], r[1]) for r in rows] == [("conv_same", "128"), ("janet", "1000")]
    assert all(len(r) == 8 and float(r[4]) > 0 and float(r[7]) > 0 for r in rows)  # the ratios


def test_the_kernels_tables_time_every_batchnorm_layout_and_the_products(capsys, monkeypatch):
    from bench import kernels

    layouts_seen = []
    real = kernels.bn_relu_ms

    def spy(channels, dtype, layout, *args):
        layouts_seen.append((channels, dtype, layout))
        return real(channels, dtype, layout, *args)

    monkeypatch.setattr(kernels, "bn_relu_ms", spy)
    assert kernels.main(["--batch", "4", "--steps", "2", "--repeats", "1"]) == 0
    assert len(set(layouts_seen)) == 2 * 2 * 3
    lines = capsys.readouterr().out.splitlines()
    assert "channels-last via NCHW" in lines[1]
    rows = [line.split() for line in lines[2:6]]
    assert [(r[0], r[1]) for r in rows] == [
        ("float32", "8"),
        ("float32", "16"),
        ("bf16", "8"),
        ("bf16", "16"),
    ]
    assert all(float(ms) > 0 for r in rows for ms in r[2:])
    products = lines[lines.index("") + 2 :]
    assert len(products) == 4 and products[-1].startswith("2048x2048")
    for line in products[:3]:  # vae_mlp's products: float32 and bf16 GFLOP/s
        fp32, bf16 = map(float, line.split()[-2:])
        assert fp32 > 0 and bf16 > 0
    assert float(products[3].split()[-1]) > 0


def test_the_click_bench_times_the_default_configuration_cold_then_warm(
    tmp_path, monkeypatch, capsys
):
    """bench/gpu_check.sh's third part, here on the CPU: the default config from submit to
    results, trained twice (seeds the bundle lacks), in an empty runs folder of its own."""
    from aecore import train
    from bench import click

    monkeypatch.setenv("AECORE_OFFLINE", "1")  # no MNIST: the default falls back to digits
    monkeypatch.setenv("AECORE_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "runs"))  # click.main replaces it
    monkeypatch.setattr(train, "pick_device", train.pick_device)  # and --device patches this
    out = tmp_path / "click.json"
    assert click.main(["--device", "cpu", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["device"] == "cpu" and result["config"]["dataset"] == "digits"
    for row in result["rows"].values():
        assert not row["cached"] and row["click_to_results_s"] >= row["train_s"] > 0
        assert row["step"].startswith("eager on cpu") and row["psnr"] > 0
    printed = capsys.readouterr().out
    assert printed.startswith("cold: click to results") and "\nwarm: " in printed
