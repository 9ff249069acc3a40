"""Interactive steps of the app against their targets and against the old code, in the same run.

Issue #11, item 7 ("class-speed steps"), on this machine's CPU:

1. Denoise, a test-level slider step with the bundled U-Net (`unet_mnist_stripes`, MNIST): the
   page is open; the slider moves to a level not seen before; the page reruns (corrupted test
   images, reconstructions, median filter and the metrics of model and baselines at that level).
   Target 1 s. Median of the steps to 4 new levels.
2. Compare, side by side: opening the page in a server that has imported everything (scikit-learn
   included) but computed nothing yet (its default, the `digits` runs), switching it to MNIST
   (three bundled runs), and corrupting their shared inputs otherwise (salt and pepper). Target
   3 s each.
3. A training job's testing: `aecore.runs.train_and_save` of the app's default configuration
   (at the time) with model `vae_mlp` (MNIST, 20,000 training images, 3 epochs, gaussian 0.5,
   code size 64, so the PCA baseline has 64 components): the seconds of
   training against the seconds after it (testing against the baselines, saving). Target:
   testing no longer than training. The new code is timed with an empty runs folder ("new":
   the first run ever, nothing cached), again in the folder that run left ("new_warm": the same
   corruption and level, the baselines' metrics read from it), and there at another level
   ("new_level", gaussian 0.6: the filters run again, the PCA basis is read from it).

Every figure comes from a fresh process (so one measurement's caches never help another) whose
runs folder is a new empty temp folder, and the old and the new code alternate: old, new, new,
old, ... so a busy machine slows both alike. The old code is `git archive <ref>` (default: the
commit before these changes) unpacked to a temp folder; "new" is this working tree.

    python -m bench.steps                       # 3 rounds of every step
    python -m bench.steps --rounds 1 --steps denoise compare
    python -m bench.steps --old HEAD            # against another commit

Needs MNIST under AECORE_DATA_DIR (default ../shared/data). Results: bench/results/steps.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OLD_REF = "6eae8708ee4fc09ff03f6cb82915c5109b40a5ff"  # the code before the class-speed changes
TARGETS = {
    "denoise_step_s": 1.0,
    "compare_open_s": 3.0,
    "compare_mnist_s": 3.0,
    "compare_corruption_s": 3.0,
}
DENOISE_MODEL = "unet_mnist_stripes"
# The job's versions: old; new with an empty runs folder ("new": nothing cached, the first run
# ever); new again in that folder ("new_warm": same corruption and level); and at another level
# there ("new_level": the filters run again, the PCA basis is read from the folder).
VERSIONS = ("old", "new", "new_warm", "new_level")
NEW_LEVEL = 0.6
# The app's default configuration when this was written (app_pages/_config.py APP_DEFAULTS), with
# the MLP VAE: the same in the old and the new code, whatever the app's defaults become.
JOB_CONFIG = {
    "dataset": "mnist",
    "corruption": "gaussian",
    "level": 0.5,
    "model": "vae_mlp",
    "latent": 64,
    "lr": 3e-3,
    "epochs": 3,
    "limit_train": 20000,
}
DENOISE_LEVELS = (6, 8, 12, 14)  # trained at 10; each step goes to a level not seen before


# -- the workers: one measurement each, run in a fresh process inside a code tree -----------------


def _bundled_config(tree: Path, name: str) -> dict:
    manifest = json.loads((tree / "checkpoints" / "manifest.json").read_text())
    return next(m["config"] for m in manifest["models"] if m["name"] == name)


def _page(tree: Path, name: str) -> Path:
    """A page's script: app_pages/ now, pages/ in older trees."""
    new = tree / "app_pages" / f"{name}.py"
    return new if new.is_file() else tree / "pages" / f"{name}.py"


def _texts(at) -> str:
    return "\n".join(str(e.value) for kind in ("caption", "markdown") for e in at.get(kind))


def worker_denoise(tree: Path) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(_page(tree, "denoise")), default_timeout=600)
    at.query_params.update({k: str(v) for k, v in _bundled_config(tree, DENOISE_MODEL).items()})
    t0 = time.perf_counter()
    at.run()
    first = time.perf_counter() - t0
    assert not at.exception, at.exception
    steps = []
    for level in DENOISE_LEVELS:
        t0 = time.perf_counter()
        at.slider(key="dn_level").set_value(level).run()
        steps.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
        assert f"at level {level}" in _texts(at), "the metrics of the new level are not shown"
    return {"denoise_first_s": first, "denoise_step_s": statistics.median(steps), "steps": steps}


def worker_compare(tree: Path) -> dict:
    import importlib

    from streamlit.testing.v1 import AppTest

    # A server that has served pages before: every module imported (scikit-learn too, which
    # loading the digits imports: 1.2 s once per process), no cache filled.
    package = _page(tree, "compare").parent.name  # app_pages, or pages in older trees
    modules = [f"{package}.{m}" for m in ("_ui", "_views", "_classify", "_sweep")]
    modules.append("sklearn.datasets")
    for name in modules:
        importlib.import_module(name)
    at = AppTest.from_file(str(_page(tree, "compare")), default_timeout=600)
    out = {}
    t0 = time.perf_counter()
    at.run()
    out["compare_open_s"] = time.perf_counter() - t0
    assert not at.exception, at.exception
    t0 = time.perf_counter()
    at.selectbox(key="cmp_dataset").select("mnist").run()
    out["compare_mnist_s"] = time.perf_counter() - t0
    assert not at.exception, at.exception
    out["runs"] = list(at.multiselect(key="cmp_runs_mnist").value)
    t0 = time.perf_counter()
    at.selectbox(key="cmp_corruption_mnist").select("salt_pepper").run()
    out["compare_corruption_s"] = time.perf_counter() - t0
    assert not at.exception, at.exception
    assert len(at.dataframe) >= 1
    return out


def worker_job(tree: Path) -> dict:
    from aecore.config import TrainConfig
    from aecore.data import load_dataset
    from aecore.runs import train_and_save

    level = float(os.environ.get("AECORE_BENCH_LEVEL", JOB_CONFIG["level"]))
    cfg = TrainConfig(**(JOB_CONFIG | {"level": level}))
    load_dataset("mnist")  # as in a server: the dataset was loaded before
    t0 = time.perf_counter()
    ckpt = train_and_save(cfg, device="cpu", out_dir=Path(os.environ["AECORE_RUNS_DIR"]))
    total = time.perf_counter() - t0
    train_s = ckpt.info["train_seconds"]
    return {
        "job_train_s": train_s,
        "job_test_s": total - train_s,
        "config": cfg.to_dict(),
        "test_psnr_median5": ckpt.metrics["test_psnr_median5"],
        "test_psnr_pca": ckpt.metrics["test_psnr_pca"],
        "test_loss": ckpt.metrics["test_loss"],
    }


WORKERS = {"denoise": worker_denoise, "compare": worker_compare, "job": worker_job}


def run_worker(step: str, tree: Path, runs_dir: Path, data_dir: Path, level=None) -> dict:
    env = os.environ | {
        "PYTHONPATH": str(tree),
        "AECORE_RUNS_DIR": str(runs_dir),
        "AECORE_DATA_DIR": str(data_dir),
        "AECORE_OFFLINE": "1",
    }
    if level is not None:
        env["AECORE_BENCH_LEVEL"] = str(level)
    # -P: no script folder on sys.path, so PYTHONPATH's tree is the only code imported (the old
    # tree's aecore, not this one's, even where this repository is installed editable).
    cmd = [
        sys.executable,
        "-P",
        str(Path(__file__).resolve()),
        "--worker",
        step,
        "--tree",
        str(tree),
    ]
    proc = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{step} in {tree} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- the driver -----------------------------------------------------------------------------------


def old_tree(ref: str, into: Path) -> Path:
    """The code at `ref`, unpacked from `git archive` (read-only for this repository)."""
    archive = into / "old.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "archive", ref], cwd=ROOT, stdout=f, check=True)
    tree = into / "old"
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def summarise(results: dict) -> dict:
    """Per figure: each version's values and their median, the old/new ratio, the target."""
    rows = {}
    figures = {
        "denoise": ["denoise_step_s"],
        "compare": ["compare_open_s", "compare_mnist_s", "compare_corruption_s"],
        "job": ["job_train_s", "job_test_s"],
    }
    for step, names in figures.items():
        for name in names:
            row = {}
            for version in VERSIONS:
                values = [r[name] for r in results.get((step, version), []) if name in r]
                if values:
                    row[version] = {"median": statistics.median(values), "values": values}
            if row:
                rows[name] = row
    for name, target in TARGETS.items():
        if name in rows:
            rows[name]["target"] = target
    return rows


def report(rows: dict) -> None:
    def med(name, version):
        return rows.get(name, {}).get(version, {}).get("median")

    print(f"\n{'figure':<24}{'target':>10}{'old':>10}{'new':>10}{'old/new':>9}  new meets target")
    for name, row in rows.items():
        if name.startswith("job_"):
            continue
        old, new, target = med(name, "old"), med(name, "new"), row.get("target")
        ratio = f"{old / new:.1f}x" if old and new else "-"
        ok = "-" if target is None or new is None else ("yes" if new <= target else "NO")
        print(f"{name:<24}{target or 0:>9.1f}s{old or 0:>9.2f}s{new or 0:>9.2f}s{ratio:>9}  {ok}")
    for version in VERSIONS:
        train, test = med("job_train_s", version), med("job_test_s", version)
        if train is not None:
            ok = "yes" if test <= train else "NO"
            print(
                f"job ({version:<8}) training {train:6.1f} s, testing {test:6.1f} s "
                f"(testing/training {test / train:.2f}; target <= 1: {ok})"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", nargs="+", choices=list(WORKERS), default=list(WORKERS))
    parser.add_argument("--old", default=OLD_REF, help="git ref of the old code")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "steps.json")
    parser.add_argument("--worker", choices=list(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--tree", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:  # inside a fresh process whose PYTHONPATH is args.tree (run_worker)
        print(json.dumps(WORKERS[args.worker](args.tree)))
        return 0

    data_dir = Path(os.environ.get("AECORE_DATA_DIR") or ROOT.parent / "shared" / "data")
    data_dir = (ROOT / data_dir).resolve() if not data_dir.is_absolute() else data_dir
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="aecore-steps-") as tmp:
        tmp = Path(tmp)
        trees = {"old": old_tree(args.old, tmp), "new": ROOT}
        n = 0
        order = ["old", "new"]
        for round_ in range(args.rounds):
            for step in args.steps:
                for version in order:
                    n += 1
                    runs = tmp / f"runs{n}"
                    r = run_worker(step, trees[version], runs, data_dir)
                    results.setdefault((step, version), []).append(r)
                    shown = {k: round(v, 2) for k, v in r.items() if isinstance(v, float)}
                    print(f"round {round_ + 1} {step:<8} {version:<4} {shown}", flush=True)
                    if step == "job" and version == "new":  # again, in the runs folder it left
                        for label, level in (("new_warm", None), ("new_level", NEW_LEVEL)):
                            r = run_worker(step, trees[version], runs, data_dir, level)
                            results.setdefault((step, label), []).append(r)
                            shown = {k: round(v, 2) for k, v in r.items() if isinstance(v, float)}
                            print(f"round {round_ + 1} {step:<8} {label:<9} {shown}", flush=True)
                order.reverse()  # old, new, then new, old: neither always goes first
    rows = summarise(results)
    report(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "old_ref": args.old,
        "rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "rows": rows,
        "raw": {f"{s}/{v}": rs for (s, v), rs in results.items()},
    }
    args.out.write_text(json.dumps(payload, indent=1))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
