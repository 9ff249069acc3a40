"""Rerun the experiments and write RESULTS.md with tables and PNG figures.

From the repository's root (experiments/ is not part of the installed package):

    python -m experiments.run                   # all of them, into experiments/
    python -m experiments.run --only 2 9        # just these sections; the others are kept
    python -m experiments.run --quick           # smoke run: 2,000 training images, 1 epoch

Every number in the document comes from this code. Configs that match a bundled checkpoint
(checkpoints/manifest.json) or an earlier run (AECORE_RUNS_DIR) are loaded, not retrained.
Each section is also stored in sections.json, so `--only` rewrites one section and keeps the rest.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import torch

from aecore.best_classical import VAL_IMAGES
from aecore.checkpoints import hardware, runs_dir
from aecore.cli import print_epoch
from aecore.history import EpochStats
from experiments import beyond, classic
from experiments.report import QUICK_TEST, QUICK_TRAIN, Context, Section

HERE = Path(__file__).resolve().parent
EXPERIMENTS: dict[int, Callable[[Context], Section]] = {
    1: classic.janet_salt_pepper,
    2: classic.latent_sizes,
    3: classic.gaussian_denoising,
    4: classic.inpainting,
    5: classic.vae_latents,
    6: beyond.classifier_input,
    7: beyond.generalisation,
    8: beyond.cifar_deblur,
    9: beyond.best_denoiser,
    10: beyond.ae_beats_pca,
}


def run_all(
    quick: bool = False,
    only: list[int] | None = None,
    out_dir: Path | str | None = None,
    on_epoch: Callable[[EpochStats], None] = lambda stats: None,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> Path:
    """Run the chosen experiments (all by default) and return the path of RESULTS.md."""
    unknown = sorted(set(only or []) - set(EXPERIMENTS))
    if unknown:
        raise ValueError(f"no experiment {unknown}; choose from 1-{len(EXPERIMENTS)}")
    out = Path(out_dir) if out_dir else (runs_dir() / "experiments-quick" if quick else HERE)
    ctx = Context(out, quick=quick, on_epoch=on_epoch)
    store = out / "sections.json"
    sections = json.loads(store.read_text()) if store.is_file() else {}
    for number, fn in EXPERIMENTS.items():
        if only and number not in only:
            continue
        log(f"== experiment {fn.__doc__.splitlines()[0]}")
        t0 = time.perf_counter()
        section = fn(ctx)
        section.seconds = time.perf_counter() - t0
        sections[str(number)] = asdict(section)
        store.write_text(json.dumps(sections, indent=1) + "\n")
    path = out / "RESULTS.md"
    path.write_text(render(sections, ctx))
    sources = [where for _, where in ctx.used]
    log(f"checkpoints: {', '.join(f'{sources.count(w)} {w}' for w in sorted(set(sources)))}")
    return path


def render(sections: dict[str, dict], ctx: Context) -> str:
    # a section stored before sections had dates is "an earlier run", never today
    ordered = [Section(**{"date": "", **sections[k]}) for k in sorted(sections, key=int)]
    mode = "the full run"
    if ctx.quick:
        mode = f"a quick smoke run: {QUICK_TRAIN:,} training images, 1 epoch, {QUICK_TEST} test"
        mode += " images"
    lines = [
        "# aecore: the classic autoencoder experiments, reproduced and measured",
        "",
        f"Written by `python -m experiments.run`, {mode}: {_when(ordered)}; on {hardware()}, "
        f"torch {torch.__version__}. "
        "Every number and figure comes from the code in `experiments/`; the models are the "
        "bundled checkpoints in `checkpoints/` where a config matches, and otherwise were trained "
        "for this document with the configs in the code. Test sets are complete (10,000 images, "
        "unless the run was a quick one), corrupted with a fixed seed; PSNR in dB, SSIM as "
        "scikit-image computes it. Models are held against the 3x3 median filter (what the "
        "tutorials use) and against the best classical method for the task, tuned on "
        f"{VAL_IMAGES} validation images and never on the test set (`aecore.best_classical`).",
        "",
        "## Headlines",
        "",
    ]
    lines += [f"- **{s.number}.** {s.headline}" for s in ordered if s.headline]
    for s in ordered:
        when = f", run on {s.date}" if s.date else ""
        lines += [
            "",
            f"## {s.number}. {s.title}",
            "",
            s.body,
            "",
            f"*({s.seconds / 60:.1f} min{when})*",
        ]
    return "\n".join(lines) + "\n"


def _when(sections: list[Section]) -> str:
    """Which sections were run on which day, newest first: `--only` reruns some, keeps the rest."""
    days: dict[str, list[str]] = {}
    for s in sections:
        days.setdefault(s.date or "an earlier day", []).append(str(s.number))
    parts = []
    for day in sorted(days, key=lambda d: (d[0].isdigit(), d), reverse=True):
        numbers = days[day]
        noun = "section" if len(numbers) == 1 else "sections"
        listed = ", ".join(numbers[:-1]) + " and " + numbers[-1] if len(numbers) > 1 else numbers[0]
        parts.append(f"{noun} {listed} run on {day}")
    return "; ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data and one epoch")
    parser.add_argument("--only", nargs="+", type=int, metavar="N", help="only these experiments")
    parser.add_argument("--out", default=None, help="output folder (default: experiments/)")
    args = parser.parse_args(argv)
    print(run_all(args.quick, args.only, args.out, on_epoch=print_epoch))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
