"""TrainConfig: everything that decides a training run. Frozen; its key() names the checkpoint.

Validated on construction, so a config that exists is one that can train. Fields a run ignores
are normalised (a conv model's latent size to 0, the level of a corruption without one to 0) so
that runs which would be identical share one key and one checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass, fields
from typing import Any

from aecore.corruptions import CORRUPTIONS, check_level, has_level
from aecore.data import DATASETS
from aecore.models import MODELS, REGULARIZERS, check_shape, has_weight, is_variational

LOSSES = ("mse", "bce")
# "fixed": every batch is corrupted at `level`; "uniform": each training batch draws its level
# from U(0, level) (rounded for integer levels), so one model serves every level up to `level`.
LEVEL_SAMPLINGS = ("fixed", "uniform")
OPTIMIZERS = ("adam", "adadelta")
# The training step's arithmetic. "bf16": the matrix products and convolutions of forward and
# backward in bfloat16 (torch.autocast), while weights, optimizer state and the loss stay float32.
# On this project's AVX-512 BF16 CPU an epoch took 4-27% less in 15 of 18 timed pairs (the others
# within the machine's noise), at test losses within 3.5% of float32's (bench/precision.py); not
# yet measured on a GPU. Evaluation is always float32.
PRECISIONS = ("fp32", "bf16")
PRECISION_LABELS = {"fp32": "float32", "bf16": "bfloat16 mixed"}
SCHEMA = 1  # bump when a change to training makes old checkpoints stale

# (low, high) for every numeric field: the one table behind TrainConfig's checks, the sidebar's
# widgets and the clamping of a link's values, so a value one of them takes the others take too.
RANGES: dict[str, tuple[float, float]] = {
    "latent": (1, 1024),
    "width": (8, 4096),
    "reg_weight": (0.0, 10.0),
    "lr": (1e-6, 10.0),
    "batch_size": (1, 4096),
    "epochs": (1, 200),
    "seed": (0, 2**31 - 1),
    "limit_train": (0, 10_000_000),
    "beta": (0.0, 16.0),
}


# Fields added after checkpoints were first named: key() leaves each out at this default value.
KEY_DEFAULTS = {"level_sampling": "fixed", "beta": 1.0, "classes": "", "precision": "fp32"}


def normalise_classes(text: str, num_classes: int) -> str:
    """ "4, 0-2" -> "0,1,2,4": sorted, without repeats; "" (and every class) -> "" (all)."""
    chosen: set[int] = set()
    for part in filter(None, (p.strip() for p in text.split(","))):
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise ValueError(f"classes must be numbers like 0,1,2 or 0-4, got {text!r}") from None
        if not 0 <= first <= last < num_classes:
            raise ValueError(f"classes must lie between 0 and {num_classes - 1}, got {part!r}")
        chosen.update(range(first, last + 1))
    if len(chosen) == num_classes:
        return ""
    return ",".join(str(c) for c in sorted(chosen))


@dataclass(frozen=True)
class TrainConfig:
    dataset: str = "mnist"
    corruption: str = "gaussian"
    level: float = 0.5
    model: str = "conv_same"
    latent: int = 32  # code size of MLP models and VAEs; conv models have a feature-map code
    width: int = 256  # hidden width of deep_mlp (layers 2w and w)
    regularizer: str = "none"  # none | sparse (L1 on the code) | contractive (encoder Jacobian)
    reg_weight: float = 0.0
    loss: str = "mse"
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 5
    seed: int = 0
    limit_train: int = 0  # train on the first K training images only; 0 = all
    augment: bool = False  # random flips and small rotations of the clean images
    level_sampling: str = "fixed"  # fixed | uniform (training batches only; val/test use level)
    # VAEs: the weight of the KL term (a beta-VAE, Higgins et al. 2017); 1 is the plain ELBO.
    beta: float = 1.0
    # Train on these classes only, e.g. "0,1,2,3,4" (the anomaly detector's normal set); "" = all.
    # Training and validation images of those classes; the test set keeps all of them (what was
    # left out is what an anomaly detector must flag).
    classes: str = ""
    precision: str = "fp32"  # fp32 | bf16 (mixed: see PRECISIONS)

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), f.type)
        for name in ("dataset", "corruption", "model"):
            {"dataset": DATASETS, "corruption": CORRUPTIONS, "model": MODELS}[name][
                getattr(self, name)
            ]
        if self.regularizer not in REGULARIZERS:
            raise ValueError(
                f"regularizer must be one of {', '.join(REGULARIZERS)}, got {self.regularizer!r}"
            )
        if has_level(self.corruption):  # one without a level takes any and stores 0
            check_level(self.corruption, self.level)
        meta = MODELS[self.model].meta
        unused = {
            "latent": not meta["uses_latent"],
            "width": not meta["uses_width"],
            "reg_weight": not has_weight(self.regularizer),
            "beta": not is_variational(self.model),
        }
        for name, (low, high) in RANGES.items():
            value = getattr(self, name)
            if not unused.get(name) and not low <= value <= high:
                raise ValueError(f"{name} must be between {low} and {high}, got {value!r}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}"
            )
        if self.level_sampling not in LEVEL_SAMPLINGS:
            raise ValueError(
                f"level_sampling must be one of {', '.join(LEVEL_SAMPLINGS)}, "
                f"got {self.level_sampling!r}"
            )
        if is_variational(self.model) and has_weight(self.regularizer):
            raise ValueError("a VAE is already regularised by its KL term; use regularizer 'none'")
        self._check_against_dataset(unused["latent"])
        normalised = {
            "level": float(self.level) if has_level(self.corruption) else 0.0,
            "latent": 0 if unused["latent"] else self.latent,
            "width": 0 if unused["width"] else self.width,
            "reg_weight": 0.0 if unused["reg_weight"] else float(self.reg_weight),
            "lr": float(self.lr),
            "level_sampling": self.level_sampling if has_level(self.corruption) else "fixed",
            "beta": 1.0 if unused["beta"] else float(self.beta),
            "classes": normalise_classes(self.classes, DATASETS[self.dataset].meta["num_classes"]),
        }
        for name, value in normalised.items():
            object.__setattr__(self, name, value)

    def _check_against_dataset(self, latent_unused: bool) -> None:
        """Checks that need the dataset's image shape, made here so that a config that exists
        never fails after training (the PCA baseline needs a code no larger than the image)."""
        shape = tuple(DATASETS[self.dataset].meta["shape"])
        check_shape(self.model, shape)
        pixels = math.prod(shape)
        if not latent_unused and self.latent > pixels:
            raise ValueError(
                f"latent (code size) must be at most {pixels}, the number of values in one "
                f"{DATASETS[self.dataset].label} image; got {self.latent}"
            )

    def key(self) -> str:
        """A stable 16-hex-digit name: equal across processes and machines (not Python's hash())."""
        values = asdict(self)
        # Fields left out at their defaults, so keys from before the fields existed still hold.
        for name, default in KEY_DEFAULTS.items():
            if values[name] == default:
                del values[name]
        blob = json.dumps({"schema": SCHEMA, **values}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Build from untrusted values (a URL, a checkpoint, JSON); unknown names are refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(unknown)}")
        return cls(**values)


def _check_type(name: str, value: Any, annotation: Any) -> None:
    expected = {"str": str, "int": int, "float": float, "bool": bool}[str(annotation)]
    if expected is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    elif expected is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise ValueError(f"{name} must be a {expected.__name__}, got {value!r}")


def config_from_strings(given: dict[str, str], base: TrainConfig) -> tuple[TrainConfig, list[str]]:
    """A config from text values (a link's query parameters) over `base`, and a note for each
    value that could not be used as given. A number outside RANGES (or a level outside its
    corruption's range) becomes the nearest allowed value; a value that is not a number or not
    a known name keeps base's value. Names that are not fields are ignored."""
    types = {f.name: str(f.type) for f in fields(TrainConfig)}
    values = base.to_dict()
    notes: list[str] = []
    for name, text in given.items():
        if name not in types:
            continue
        try:
            values[name] = _from_text(name, text, types[name])
        except ValueError as err:
            notes.append(f"{err}; showing the default, {values[name]!r}, instead")
    model_meta = MODELS[values["model"]].meta if values["model"] in MODELS.names() else {}
    regularizer = values["regularizer"]
    unused = {
        "latent": not model_meta.get("uses_latent", True),
        "width": not model_meta.get("uses_width", False),
        "reg_weight": regularizer in REGULARIZERS and not has_weight(regularizer),
        "beta": not model_meta.get("variational", False),
    }
    for name, (low, high) in RANGES.items():
        if not unused.get(name):  # TrainConfig stores 0 in a field the model does not use
            values[name] = _clamped(name, values[name], low, high, notes)
    if not unused["latent"] and values["dataset"] in DATASETS.names():
        pixels = math.prod(DATASETS[values["dataset"]].meta["shape"])
        values["latent"] = _clamped("latent", values["latent"], 1, pixels, notes)
    if values["corruption"] in CORRUPTIONS.names() and has_level(values["corruption"]):
        meta = CORRUPTIONS[values["corruption"]].meta
        values["level"] = _clamped("level", values["level"], meta["min"], meta["max"], notes)
    try:
        return TrainConfig.from_dict(values), notes
    except ValueError as err:
        return base, [*notes, f"{err}; showing the defaults instead"]


def _from_text(name: str, text: str, kind: str) -> Any:
    if kind == "bool":
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"{name} must be true or false, got {text!r}")
        return text.lower() in ("true", "1")
    try:
        value = {"int": int, "float": float, "str": str}[kind](text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text!r}") from None
    if kind == "float" and not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {text!r}")
    registry = {"dataset": DATASETS, "corruption": CORRUPTIONS, "model": MODELS}.get(name)
    if registry is not None and value not in registry.names():
        raise ValueError(f"{name} {text[:40]!r} is not a known {registry.kind}")
    return value


def _clamped(name: str, value: Any, low: float, high: float, notes: list[str]) -> Any:
    """value moved into [low, high] (keeping its type), with a note if it moved."""
    nearest = type(value)(min(max(value, low), high))
    if nearest != value:
        notes.append(
            f"{name} {value:g} is outside the allowed {low:g} to {high:g}: using {nearest:g}, "
            "the nearest allowed value"
        )
    return nearest


# -- names a student can read -----------------------------------------------------------------


def epochs_text(n: int) -> str:
    """'1 epoch', '3 epochs'."""
    return f"{n} epoch" if n == 1 else f"{n} epochs"


# Fields named after the core of a run's name when they differ from the base config.
_EXTRAS = {
    "epochs": epochs_text,
    "lr": lambda v: f"lr {v:g}",
    "batch_size": lambda v: f"batch {v}",
    "limit_train": lambda v: f"{v:,} images" if v else "all images",
    "seed": lambda v: f"seed {v}",
    "loss": lambda v: v.upper(),
    "optimizer": lambda v: v.capitalize(),
    "augment": lambda v: "augmented" if v else "no augmentation",
    "level_sampling": lambda v: "levels 0 up to it" if v == "uniform" else "fixed level",
    "width": lambda v: f"width {v}",
    "precision": PRECISION_LABELS.get,
}


def _short(label: str) -> str:
    return re.sub(r"\s*\(.*?\)", "", label).strip()


def describe_run(cfg: TrainConfig, base: TrainConfig | None = None) -> str:
    """A run's name in words: model, data, corruption and code, then whatever else differs from
    `base` (the app's default configuration), e.g. "Dense AE on MNIST, Gaussian noise 0.5,
    code 64, sparse 0.0001 (10 epochs, lr 0.01)"."""
    model = re.sub(r"-N\b", f"-{cfg.latent}", _short(MODELS[cfg.model].label))  # JANet-N
    parts = [f"{model} on {_short(DATASETS[cfg.dataset].label)}"]
    if has_level(cfg.corruption):
        parts.append(f"{_short(CORRUPTIONS[cfg.corruption].label)} {cfg.level:g}")
    else:
        parts.append("no corruption")
    if cfg.latent:
        parts.append(f"code {cfg.latent}")
    if has_weight(cfg.regularizer):
        parts.append(f"{cfg.regularizer} {cfg.reg_weight:g}")
    if cfg.beta != 1.0:
        parts.append(f"β {cfg.beta:g}")
    if cfg.classes:
        parts.append(f"classes {cfg.classes} only")
    name = ", ".join(parts)
    if base is not None:
        extras = [
            show(getattr(cfg, field))
            for field, show in _EXTRAS.items()
            if getattr(cfg, field) != getattr(base, field)
            and not (field == "width" and not cfg.width)  # 0: the model has no width
        ]
        if extras:
            name += f" ({', '.join(extras)})"
    return name
