"""python -m aecore: JSON last lines, the seed counts, caching, and one-line errors with exit 2."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aecore.cli import main

ROOT = Path(__file__).resolve().parents[2]
TRAIN = [
    "train",
    "--dataset",
    "digits",
    "--model",
    "dense",
    "--latent",
    "4",
    "--epochs",
    "1",
    "--corruption",
    "salt_pepper",
    "--level",
    "0.1",
    "--device",
    "cpu",
    "--json",
]
REPORT_KEYS = {
    "config_hash",
    "checkpoint",
    "sec_per_epoch",
    "test_loss",
    "test_psnr",
    "test_psnr_noisy",
    "test_ssim",
    "test_psnr_median3",
}


def run_cli(capsys, *argv) -> tuple[int, dict | None, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return code, (json.loads(lines[-1]) if lines and "--json" in argv else None), err


def test_list(capsys):
    code, data, _ = run_cli(capsys, "list", "--json")
    assert code == 0
    assert "digits" in [d["name"] for d in data["datasets"]]
    assert {"salt_pepper", "gaussian", "masking", "stripes", "block", "blur", "none"} <= {
        c["name"] for c in data["corruptions"]
    }
    names = [m["name"] for m in data["models"]]
    assert {"dense", "janet", "deep_mlp", "conv_same", "conv_pool", "conv_transpose"} <= set(names)
    assert {"vae_mlp", "vae_conv"} <= set(names) and names[0] == "dense"  # listed simplest first


@pytest.mark.parametrize(
    "model, dataset, latent, params",
    [
        ("dense", "mnist", 1, 2353),
        ("conv_same", "mnist", 32, 3265),  # with BatchNorm (issue #11)
        ("conv_same_plain", "mnist", 32, 3217),  # the seed's original layers
        ("conv_transpose", "cifar10", 32, 10_107),  # BatchNorm, 4x4 transposed convs
        ("conv_transpose_plain", "cifar10", 32, 6467),
    ],
)
def test_summary_gives_the_seed_counts(capsys, model, dataset, latent, params):
    code, data, _ = run_cli(
        capsys, "summary", model, "--dataset", dataset, "--latent", str(latent), "--json"
    )
    assert code == 0 and data["params"] == params
    assert sum(layer["params"] for layer in data["layers"]) == params


def test_train_then_cached_then_evaluate(capsys):
    code, first, err = run_cli(capsys, *TRAIN)
    assert code == 0 and set(first) >= REPORT_KEYS and not first["cached"]
    assert "epoch 1/1" in err  # progress goes to stderr, the JSON alone to stdout
    assert Path(first["checkpoint"]).is_file()
    code, second, _ = run_cli(capsys, *TRAIN)
    assert second["cached"] and second["config_hash"] == first["config_hash"]
    assert second["test_psnr"] == first["test_psnr"]
    code, ev, _ = run_cli(
        capsys,
        "evaluate",
        first["checkpoint"],
        "--corruption",
        "gaussian",
        "--level",
        "0.3",
        "--json",
    )
    assert code == 0 and REPORT_KEYS - {"sec_per_epoch"} <= set(ev)
    assert ev["corruption"] == "gaussian" and ev["test_psnr_noisy"] != first["test_psnr_noisy"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--level", "5"], "sigma must be between"),
        (["train", "--model", "nope"], "invalid choice"),
        (["train", "--epochs", "abc"], "invalid int value"),
        (["train", "--dataset", "digits", "--model", "dense", "--latent", "0"], "latent"),
        (["evaluate", "/nonexistent/run.pt"], "no checkpoint"),
        (["evaluate", str(ROOT / "pyproject.toml")], "not a readable checkpoint"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_arguments_print_one_line_and_exit_2(capsys, argv, message):
    code, _, err = run_cli(capsys, *argv)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_module_entry_point_smoke():
    """The real `python -m aecore` process: exit codes and the JSON last line."""
    env = {**os.environ}
    ok = subprocess.run(
        [sys.executable, "-m", "aecore", *TRAIN],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout.strip().splitlines()[-1])
    assert set(report) >= REPORT_KEYS
    if sys.platform == "linux":
        assert report["peak_rss_mb"] > 50
    bad = subprocess.run(
        [sys.executable, "-m", "aecore", "train", "--batch-size", "-1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: batch_size")
    assert "Traceback" not in bad.stderr


def test_the_cli_stands_alone_from_the_repository(tmp_path):
    """Run outside the repository, the command line imports neither experiments/ nor bench/ and
    adds nothing to sys.path; the experiments run as `python -m experiments.run` instead."""
    code = (
        "import sys; before = list(sys.path); from aecore import cli; "
        "cli.build_parser().parse_args(['list']); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('experiments', 'bench'))); "
        "print(sys.path == before)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["[]", "True"]


def test_the_experiments_subcommand_points_nowhere(capsys):
    code, _, err = run_cli(capsys, "experiments", "--quick")
    assert code == 2 and "invalid choice: 'experiments'" in err


@pytest.mark.skipif(sys.platform != "linux", reason="VmHWM is Linux's")
def test_peak_memory_is_the_process_own_not_its_parents():
    """A child started by a large process reports its own peak: getrusage's ru_maxrss would
    start at the parent's (Linux keeps it across exec), and a benchmark read its parent's."""
    import numpy as np

    ballast = np.ones(200_000_000)  # 1,526 MB resident in this process
    code = (
        "import resource; from aecore.cli import peak_rss_mb; "
        "print(peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    own, inherited = map(float, out.stdout.split())
    assert ballast.sum() > 0
    assert inherited > 1500 and own < inherited - 600, (own, inherited)
