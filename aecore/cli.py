"""python -m aecore: the same functions the app uses, from a terminal.

Every failure the user can fix (a bad argument, a missing dataset, a corrupt checkpoint) prints
one line and exits with code 2; no traceback. Files are written only under the runs folder
(AECORE_RUNS_DIR), as <model>-<dataset>-<key>.pt, and the names in that path come from the
registries, never from free text; `evaluate` only reads the file it is given.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, fields
from pathlib import Path

import torch

from aecore import threads
from aecore.config import LEVEL_SAMPLINGS, LOSSES, OPTIMIZERS, PRECISIONS, TrainConfig
from aecore.corruptions import CORRUPTIONS, has_level
from aecore.data import DATASETS, DatasetUnavailable, available_offline
from aecore.models import MODELS, REGULARIZERS, build_model, count_params, summary


class UsageError(Exception):
    pass


MAX_MESSAGE = 300  # characters of an error line: a 100 kB argument is not echoed back whole


def one_line(message: str) -> str:
    """message on one line, clipped to MAX_MESSAGE characters."""
    text = " ".join(message.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 3] + "..."


class Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line instead of argparse's usage block
        raise UsageError(f"{message} (see: python -m aecore {self.prog.split()[-1]} --help)")


def device_arg(text: str) -> str:
    """--device: cpu, cuda, cuda:N or mps, and only one this machine has."""
    if not re.fullmatch(r"cpu|mps|cuda(:\d{1,2})?", text):
        raise argparse.ArgumentTypeError(
            f"unknown device {text[:40]!r}; use cpu, cuda, cuda:N or mps"
        )
    if text.startswith("cuda"):
        index = int(text.partition(":")[2] or 0)
        if not torch.cuda.is_available() or index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text} is not available on this machine; use cpu")
    if text == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError("mps is not available on this machine; use cpu")
    return text


def cmd_list(args) -> dict:
    return {
        "datasets": [
            {
                "name": e.name,
                "label": e.label,
                "shape": list(e.meta["shape"]),
                "on_disk": available_offline(e.name),
            }
            for e in DATASETS
        ],
        "corruptions": [
            {"name": e.name, "label": e.label} | {k: v for k, v in e.meta.items() if k != "label"}
            for e in CORRUPTIONS
        ],
        "models": [
            {
                "name": e.name,
                "label": e.label,
                "family": e.meta["family"],
                "uses_latent": e.meta.get("uses_latent", True),
            }
            for e in MODELS
        ],
    }


def cmd_summary(args) -> dict:
    shape = tuple(DATASETS[args.dataset].meta["shape"])
    cfg = TrainConfig(args.dataset, model=args.model, latent=args.latent, width=args.width)
    model = build_model(cfg, shape)
    return {
        "model": args.model,
        "dataset": args.dataset,
        "input_shape": list(shape),
        "params": count_params(model),
        "layers": [asdict(r) | {"output_shape": list(r.output_shape)} for r in summary(model)],
    }


def _config_from_args(args) -> TrainConfig:
    names = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in vars(args).items() if k in names})


def print_epoch(stats) -> None:
    """One line per epoch on stderr (stdout keeps the report)."""
    kl = f" kl {stats.val_kl:.3f}" if stats.val_kl is not None else ""
    print(
        f"epoch {stats.epoch}/{stats.epochs}  train {stats.train_loss:.4f}  "
        f"val {stats.val_loss:.4f}{kl}  val PSNR {stats.val_psnr_db:.2f} dB  "
        f"{stats.seconds:.1f} s",
        file=sys.stderr,
        flush=True,
    )


def peak_rss_mb() -> float | None:
    """This process's resident-memory peak in MB (Linux's VmHWM; None elsewhere). Not
    getrusage's ru_maxrss, which a process started by a large one inherits across exec."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    kb = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")), None)
    return int(kb) / 1024 if kb else None


def _run_report(ckpt, cached: bool) -> dict:
    cfg = ckpt.config
    return {
        "config_hash": cfg.key(),
        "config": cfg.to_dict(),
        "checkpoint": ckpt.info.get("path"),
        "cached": cached,
        "params": count_params(ckpt.model),
        "epochs": len(ckpt.history),
        "device": ckpt.info.get("device"),
    } | ckpt.metrics


def cmd_train(args) -> dict:
    from aecore.runs import load_or_train, train_and_save

    cfg = _config_from_args(args)
    if cfg.precision == "bf16":
        from aecore.train import native_bf16, pick_device

        if not native_bf16(args.device or pick_device()):
            print(
                "note: no bfloat16 arithmetic on this device: bf16 trains slower here",
                file=sys.stderr,
            )
    if args.force:
        ckpt, cached = train_and_save(cfg, on_epoch=print_epoch, device=args.device), False
    else:
        ckpt, cached = load_or_train(cfg, device=args.device, on_epoch=print_epoch)
    report = _run_report(ckpt, cached) | {"threads_wait": threads.wait_policy()}
    return report | {"peak_rss_mb": peak_rss_mb()}


def cmd_evaluate(args) -> dict:
    from aecore.checkpoints import load_checkpoint
    from aecore.data import load_dataset
    from aecore.evaluate import evaluate

    ckpt = load_checkpoint(args.checkpoint, args.device or "cpu")
    corruption = args.corruption or ckpt.config.corruption
    level = args.level if args.level is not None else ckpt.config.level
    if has_level(corruption):
        from aecore.corruptions import check_level

        check_level(corruption, level)
    ds = load_dataset(ckpt.config.dataset)
    metrics = evaluate(ckpt.model, ds, corruption, level, ckpt.config.loss)
    ckpt.info["path"] = args.checkpoint
    ckpt.metrics = metrics
    return _run_report(ckpt, True) | {"corruption": corruption, "level": level}


def cmd_pretrain(args) -> dict:
    from aecore import pretrain

    if args.classifiers:
        done = pretrain.pretrain_classifiers(
            device=args.device or "cpu",
            on_entry=lambda name: print(f"== classifier: {name}", file=sys.stderr, flush=True),
        )
        keep = ("dataset", "file", "bytes", "test_accuracy", "train_seconds")
        return {
            "folder": str(pretrain.CLASSIFIER_DIR),
            "trained": [{k: r[k] for k in keep} for r in done],
        }
    if args.baselines:
        announce = lambda task: print(f"== best classical: {task}", file=sys.stderr, flush=True)  # noqa: E731
        return {"baselines": pretrain.pretrain_baselines(on_task=announce)}
    if args.list:
        _, entries = pretrain.read_manifest()
        return {
            "manifest": str(pretrain.MANIFEST),
            "bundled_bytes": pretrain.folder_bytes(),
            "models": [
                {"name": e.name, "file": e.path.name, "status": pretrain.check(e)} for e in entries
            ],
            "classifiers": [
                {"dataset": r["dataset"], "file": r["file"], "status": pretrain.check_classifier(r)}
                for r in pretrain.classifier_manifest()
            ],
        }

    def announce(entry) -> None:
        print(f"== {entry.name}: {entry.purpose}", file=sys.stderr, flush=True)

    only = pretrain.sync_presets() if args.presets else args.only
    done = pretrain.pretrain(only, print_epoch, announce, args.device) if only != [] else []
    return {
        "manifest": str(pretrain.MANIFEST),
        "bundled_bytes": pretrain.folder_bytes(),
        "trained": [
            {"name": e.name, "file": e.record["file"], "train_seconds": e.record["train_seconds"]}
            | {k: e.record["metrics"][k] for k in ("test_psnr", "test_ssim")}
            for e in done
        ],
    }


def _add_summary(sub) -> None:
    p = sub.add_parser("summary", help="a model's layers and parameter count")
    p.add_argument("model", choices=MODELS.names())
    p.add_argument("--dataset", choices=DATASETS.names(), default="mnist")
    p.add_argument("--latent", type=int, default=32)
    p.add_argument("--width", type=int, default=256)
    p.set_defaults(fn=cmd_summary)


def _add_train(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser("train", help="train a configuration (or load it if trained before)")
    p.add_argument("--dataset", choices=DATASETS.names(), default=d.dataset)
    p.add_argument("--corruption", choices=CORRUPTIONS.names(), default=d.corruption)
    p.add_argument("--level", type=float, default=d.level)
    p.add_argument("--model", choices=MODELS.names(), default=d.model)
    p.add_argument("--latent", type=int, default=d.latent)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--regularizer", choices=REGULARIZERS, default=d.regularizer)
    p.add_argument("--reg-weight", dest="reg_weight", type=float, default=d.reg_weight)
    p.add_argument("--loss", choices=LOSSES, default=d.loss)
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", dest="batch_size", type=int, default=d.batch_size)
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--limit-train", dest="limit_train", type=int, default=d.limit_train)
    p.add_argument("--augment", action="store_true")
    p.add_argument("--beta", type=float, default=d.beta, help="VAEs: the KL term's weight")
    p.add_argument("--classes", default=d.classes, help='train on these classes only: "0-4"')
    p.add_argument(
        "--level-sampling", dest="level_sampling", choices=LEVEL_SAMPLINGS, default="fixed"
    )
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=d.precision,
        help="bf16: matrix products in bfloat16, the rest float32 (faster on CPUs with "
        "AVX-512 BF16 or AMX; README, 'bfloat16 mixed precision')",
    )
    p.add_argument(
        "--device", type=device_arg, default=None, help="cpu, cuda or mps (default: the fastest)"
    )
    p.add_argument("--force", action="store_true", help="retrain even if a checkpoint exists")
    p.set_defaults(fn=cmd_train)


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="test metrics of a saved checkpoint")
    p.add_argument("checkpoint")
    p.add_argument("--corruption", choices=CORRUPTIONS.names(), default=None)
    p.add_argument("--level", type=float, default=None)
    p.add_argument("--device", type=device_arg, default=None)
    p.set_defaults(fn=cmd_evaluate)


def _add_pretrain(sub) -> None:
    p = sub.add_parser("pretrain", help="rebuild the bundled checkpoints from their manifest")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these manifest entries")
    p.add_argument("--list", action="store_true", help="list the entries and check their files")
    p.add_argument(
        "--presets",
        action="store_true",
        help="add the Learn presets missing from the manifest and train those not up to date",
    )
    p.add_argument(
        "--classifiers",
        action="store_true",
        help="rebuild the bundled classifiers (MNIST, Fashion-MNIST) instead of the autoencoders",
    )
    p.add_argument(
        "--baselines",
        action="store_true",
        help="tune the classical methods for every bundled model's task (checkpoints/baselines/)",
    )
    p.add_argument("--device", type=device_arg, default=None)
    p.set_defaults(fn=cmd_pretrain)


def build_parser() -> Parser:
    parser = Parser(prog="python -m aecore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    p = sub.add_parser("list", help="datasets, corruptions and models")
    p.set_defaults(fn=cmd_list)
    for add in (_add_summary, _add_train, _add_evaluate, _add_pretrain):
        add(sub)
    # The experiments are not part of the package: `python -m experiments.run` runs them from
    # the repository's root.
    for p in sub.choices.values():
        p.add_argument("--json", action="store_true", help="print one JSON object as last line")
    return parser


def _print_human(result: dict) -> None:
    for key, value in result.items():
        if isinstance(value, list | dict):
            value = json.dumps(value)
        elif isinstance(value, float):
            value = f"{value:.4g}"
        print(f"{key:>20}: {value}")


def main(argv: list[str] | None = None) -> int:
    from aecore.checkpoints import CheckpointError
    from aecore.train import TrainingDiverged

    try:
        args = build_parser().parse_args(argv)
        result = args.fn(args)
    except (UsageError, ValueError, DatasetUnavailable, CheckpointError, TrainingDiverged) as err:
        detail = getattr(err, "detail", "")  # the folder and the settings that fix it
        print(f"error: {one_line(detail or str(err))}", file=sys.stderr)
        return 2
    except OSError as err:  # a file the user named or a folder they set: missing, unwritable...
        where = f": {err.filename}" if err.filename else ""
        print(f"error: {one_line(f'{err.strerror or err}{where}')}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cancelled; nothing was saved", file=sys.stderr)
        return 130
    if args.json:
        print(json.dumps(result))
    else:
        _print_human(result)
    return 0
