"""Settings and paths: the one module of aecore (and the app) that reads its environment
variables and knows where the bundled files live.

    AECORE_DATA_DIR      datasets (torchvision's layout); default ~/.cache/aecore/data
    AECORE_OFFLINE       anything but "", "0", "false", "False": never download a dataset
    AECORE_RUNS_DIR      trained runs; default ~/.cache/aecore/runs
    AECORE_RUNS_MAX_MB   size limit of the runs folder in MB (fractions allowed); 0: no limit
    AECORE_PAGE_SLOTS    page runs computing at once in the app (at least 1)
    AECORE_RUN_BUDGET_S  the longest run the app takes, in estimated seconds (at least 1)
    AECORE_CLUSTER       the Dask scheduler that trains the runs (tcp://host:8786, aecore.cluster);
                         unset: runs train inside the app process
    AECORE_TEACHER_CODE  the code that unlocks the Class board's teacher controls (pin a task,
                         reset its board); unset or shorter than 4 characters: no controls
    AECORE_STORE         one artifact store that every server and worker shares (aecore.store):
                         an absolute folder, file:///shared/runs or s3://bucket/prefix (any
                         fsspec URL); unset: none, each process keeps its own runs folder

A value that cannot be used falls back to its default with a warning in the log (an empty
variable counts as unset), so a typo never stops the app. `current()` parses the variables once
per distinct set of raw values: a process that never changes them parses once, and a test that
sets them (monkeypatch.setenv) sees its own values at the next call.
"""

from __future__ import annotations

import functools
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

REPO_DIR = Path(__file__).resolve().parent.parent
BUNDLED_DIR = REPO_DIR / "checkpoints"  # the pretrained models that ship with the code
MANIFEST_NAME = "manifest.json"  # the bundled folder's list of its models (aecore.pretrain)
CLASSIFIER_FOLDER = "classifiers"  # under the runs folder and under the bundled folder
CACHE_HOME = Path.home() / ".cache" / "aecore"
RUNS = CACHE_HOME / "runs"  # the runs folder's default

DEFAULT_RUNS_MAX_MB = 500.0  # a few hundred MNIST-sized runs
DEFAULT_PAGE_SLOTS = 2  # about one per core (aecore.gate says why)
DEFAULT_RUN_BUDGET_S = 300.0  # five minutes of estimated training per run in the app

ENV = (
    "AECORE_DATA_DIR",
    "AECORE_OFFLINE",
    "AECORE_RUNS_DIR",
    "AECORE_RUNS_MAX_MB",
    "AECORE_PAGE_SLOTS",
    "AECORE_RUN_BUDGET_S",
    "AECORE_STORE",
    "AECORE_CLUSTER",
)
# Read apart from ENV (and never logged): a secret, only the Class board's controls need it.
TEACHER_CODE_ENV = "AECORE_TEACHER_CODE"
MIN_TEACHER_CODE = 4  # a shorter code is guessed in a few tries: the controls stay off


@dataclass(frozen=True)
class Settings:
    """Every setting, parsed and validated; build it with current()."""

    data_dir: Path
    offline: bool
    runs_dir: Path
    runs_max_bytes: int | None  # None: no limit
    page_slots: int  # >= 1
    run_budget_s: float  # >= 1
    bundled_dir: Path = BUNDLED_DIR
    teacher_code: str = field(default="", repr=False)  # "": no teacher controls (aecore.board)
    store_url: str | None = None  # None: no shared artifact store (aecore.store)
    cluster: str = ""  # the Dask scheduler's address; "": the in-process runner (aecore.jobs)

    @property
    def runs_classifier_dir(self) -> Path:
        """Where classifiers trained on demand are saved."""
        return self.runs_dir / CLASSIFIER_FOLDER

    @property
    def bundled_classifier_dir(self) -> Path:
        return self.bundled_dir / CLASSIFIER_FOLDER

    @property
    def manifest(self) -> Path:
        return self.bundled_dir / MANIFEST_NAME


def current() -> Settings:
    """The settings of the environment as it is now (parsed once per distinct environment)."""
    return _parse(
        tuple(os.environ.get(name) for name in ENV), BUNDLED_DIR, os.environ.get(TEACHER_CODE_ENV)
    )


@functools.lru_cache(maxsize=64)
def _parse(raw: tuple[str | None, ...], bundled: Path, teacher: str | None = None) -> Settings:
    values = dict(zip(ENV, raw, strict=True))
    return Settings(
        data_dir=_folder(values["AECORE_DATA_DIR"], CACHE_HOME / "data"),
        offline=(values["AECORE_OFFLINE"] or "") not in ("", "0", "false", "False"),
        runs_dir=_folder(values["AECORE_RUNS_DIR"], RUNS),
        runs_max_bytes=_runs_max_bytes(values["AECORE_RUNS_MAX_MB"]),
        page_slots=_page_slots(values["AECORE_PAGE_SLOTS"]),
        run_budget_s=_run_budget(values["AECORE_RUN_BUDGET_S"]),
        bundled_dir=bundled,
        teacher_code=_teacher_code(teacher),
        store_url=_store_url(values["AECORE_STORE"], _folder(values["AECORE_RUNS_DIR"], RUNS)),
        cluster=_cluster(values["AECORE_CLUSTER"]),
    )


def _folder(text: str | None, default: Path) -> Path:
    return Path(text) if text else default  # an empty variable means unset


def _runs_max_bytes(text: str | None) -> int | None:
    """MB, fractions allowed; 0 means no limit. Not a number, negative or not finite: the
    default, with a warning."""
    text = (text or "").strip()
    mb = DEFAULT_RUNS_MAX_MB
    if text:
        try:
            mb = float(text)
        except ValueError:
            log.warning("AECORE_RUNS_MAX_MB=%r is not a number; using %g MB", text, mb)
        if not math.isfinite(mb) or mb < 0:
            log.warning(
                "AECORE_RUNS_MAX_MB=%r is out of range; using %g MB", text, DEFAULT_RUNS_MAX_MB
            )
            mb = DEFAULT_RUNS_MAX_MB
    return None if mb == 0 else int(mb * 1024 * 1024)


def _page_slots(text: str | None) -> int:
    """A whole number, at least 1 (smaller ones count as 1); anything else: the default."""
    if text is None:
        return DEFAULT_PAGE_SLOTS
    try:
        return max(1, int(text))
    except ValueError:
        log.warning(
            "AECORE_PAGE_SLOTS=%r is not a whole number; using %d", text, DEFAULT_PAGE_SLOTS
        )
        return DEFAULT_PAGE_SLOTS


def _run_budget(text: str | None) -> float:
    """Seconds, at least 1 (smaller ones and NaN count as 1); not a number: the default."""
    try:
        return max(1.0, float(text if text is not None else DEFAULT_RUN_BUDGET_S))
    except ValueError:
        log.warning("AECORE_RUN_BUDGET_S is not a number; using %g s", DEFAULT_RUN_BUDGET_S)
        return DEFAULT_RUN_BUDGET_S


def _teacher_code(text: str | None) -> str:
    """The code without surrounding spaces; too short to resist guessing: "" (off), warned."""
    code = (text or "").strip()
    if code and len(code) < MIN_TEACHER_CODE:
        log.warning(
            "AECORE_TEACHER_CODE is shorter than %d characters; the teacher controls stay off",
            MIN_TEACHER_CODE,
        )
        return ""
    return code


def _store_url(text: str | None, runs_dir: Path) -> str | None:
    """AECORE_STORE as a URL for aecore.store, or None (unset). A value that cannot be used is
    an error in the log, and no store is used: the value is never logged (a URL may hold keys)."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        return store_url(text, runs_dir)
    except ValueError as err:
        log.error("%s; no shared store is used, each process keeps its own runs", err)
        return None


def store_url(text: str, runs_dir: Path) -> str:
    """A store location as fsspec opens it: an absolute folder (as file://...), or
    <protocol>://<bucket or folder>[/prefix] of a protocol fsspec can open here. Raises
    ValueError with a sentence saying what is wrong and how to write it."""
    protocol, sep, rest = text.partition("://")
    if not sep:
        protocol, rest = "file", text
    if protocol in ("file", "local"):
        folder = Path(rest)
        if not folder.is_absolute():
            raise ValueError(
                "AECORE_STORE is not an absolute folder: write /shared/runs or "
                "file:///shared/runs (three slashes), or a bucket as s3://bucket/prefix"
            )
        if folder.resolve() == runs_dir.resolve():
            raise ValueError(
                "AECORE_STORE is the runs folder itself (AECORE_RUNS_DIR): the store must be "
                "another folder, one that every server and worker reaches"
            )
        return f"file://{folder}"
    if not rest.split("/", 1)[0]:
        raise ValueError(f"AECORE_STORE names no bucket: write {protocol}://bucket/prefix")
    _check_protocol(protocol)
    return text.rstrip("/")


def _check_protocol(protocol: str) -> None:
    """That fsspec (imported only when a store is configured) can open this protocol here."""
    try:
        import fsspec

        fsspec.get_filesystem_class(protocol)
    except ImportError as err:  # s3:// needs s3fs, gs:// gcsfs, ...
        raise ValueError(f"AECORE_STORE={protocol}://... needs a package: {err}") from None
    except ValueError:
        raise ValueError(
            f"AECORE_STORE: {protocol!r} is not a storage protocol fsspec knows "
            "(s3://bucket/prefix, gs://bucket/prefix, file:///shared/runs)"
        ) from None


CLUSTER_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss")  # Dask's comm protocols for a scheduler


def _cluster(text: str | None) -> str:
    """A scheduler address, "host:port" taken as tcp://host:port; anything else: "" (train in
    the app process), with a warning."""
    text = (text or "").strip()
    if not text:
        return ""
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    host, _, port = rest.rpartition(":")
    if scheme in CLUSTER_SCHEMES and host and "/" not in rest and port.isdigit():
        return f"{scheme}://{rest}"
    log.warning(
        "AECORE_CLUSTER=%r is not a scheduler address like tcp://host:8786; training in the app",
        text[:80],
    )
    return ""
