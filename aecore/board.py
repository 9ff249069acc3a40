"""The class board: a class's runs of one task ranked on the fixed test set, the median filter
and PCA as the lines to beat, and each student's guess of a run's PSNR against its result.

A task is (dataset, corruption, level): every run of it is scored on the same test images
corrupted with the same seed (its `test_psnr`), so the ranking is fair whatever model, code
size or training settings it used. Runs come from the run index (aecore.runindex) and the
bundled manifest; nothing here loads weights.

Guesses, the pinned task and the resets live in one small JSON file in the runs folder
(BOARD_FILE), read and rewritten whole (aecore.artifacts.write_atomic) under a lock, so two
sessions saving at once both keep their guess. The file is bounded: MAX_GUESSES guesses (the
oldest go first), one per visitor and run, nicknames of at most NICK_MAX plain characters.

A guess counts only if it was made before the run's result existed: `before_result` is recorded
when it is saved, and the board also checks that it is older than the run. A teacher (who knows
AECORE_TEACHER_CODE, aecore.settings) can pin a task and reset its board: runs and guesses from
before the reset are no longer shown; no file is deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import math
import re
import threading
import time
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from aecore import artifacts
from aecore.config import TrainConfig
from aecore.corruptions import CORRUPTIONS, check_level, has_level
from aecore.data import DATASETS, ImageDataset
from aecore.evaluate import baseline_metrics
from aecore.presets import preset_config

try:  # another process (a second server on the same runs folder) may write the file too
    import fcntl
except ImportError:  # Windows: one process per runs folder, the thread lock is enough
    fcntl = None

log = logging.getLogger(__name__)

BOARD_FILE = "class-board.json"
FORMAT, VERSION = "aecore-class-board", 1
MAX_GUESSES = 1000  # ~150 bytes each: the file stays under 200 KB
MAX_FILE_BYTES = 1 << 20
MAX_RESETS = 256
NICK_MAX = 24
GUESS_RANGE = (0.0, 100.0)  # dB; metrics.psnr caps a perfect reconstruction at 100 dB
WRONG_CODES = 5  # wrong teacher codes a visitor may enter per LOCKOUT_S
LOCKOUT_S = 600.0

_lock = threading.Lock()
_failures: dict[str, list[float]] = {}  # visitor -> times of wrong teacher codes


class TeacherRefused(Exception):
    """A teacher control was asked for without the right code; the message says why."""


@dataclass(frozen=True)
class Task:
    dataset: str
    corruption: str
    level: float

    def __post_init__(self) -> None:
        DATASETS[self.dataset], CORRUPTIONS[self.corruption]  # unknown names raise KeyError
        level = float(self.level) if has_level(self.corruption) else 0.0
        if has_level(self.corruption):
            check_level(self.corruption, level)
        object.__setattr__(self, "level", level)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.corruption}/{self.level:g}"

    @property
    def title(self) -> str:
        """ "Denoise MNIST: Salt and pepper, probability p = 0.5"."""
        data = re.sub(r"\s*\(.*?\)", "", DATASETS[self.dataset].label).strip()
        if not has_level(self.corruption):
            return f"Reconstruct {data} (no corruption)"
        meta = CORRUPTIONS[self.corruption].meta
        what = re.sub(r"\s*\(.*?\)", "", CORRUPTIONS[self.corruption].label).strip()
        return f"Denoise {data}: {what}, {meta['level_name']} = {self.level:g}"

    @classmethod
    def from_key(cls, key: Any) -> Task | None:
        """The task a key names, or None for anything else (the file is untrusted)."""
        try:
            dataset, corruption, level = str(key).split("/")
            return cls(dataset, corruption, float(level))
        except (ValueError, KeyError, TypeError):
            return None


def task_of(cfg: TrainConfig) -> Task:
    """The task a run is scored on: its test set is corrupted at cfg.level (also for a run
    trained on levels drawn up to it)."""
    return Task(cfg.dataset, cfg.corruption, cfg.level)


@dataclass(frozen=True)
class Guess:
    run_key: str  # TrainConfig.key() of the run guessed
    task: str  # Task.key
    guess: float  # dB
    nickname: str
    made_at: float  # seconds since the epoch
    before_result: bool  # no result of the run existed when it was made
    visitor: str = ""  # a hash: one guess per visitor and run


@dataclass(frozen=True)
class BoardState:
    guesses: tuple[Guess, ...] = ()
    pinned: str | None = None  # a Task.key
    resets: dict[str, float] = field(default_factory=dict)  # Task.key -> time of the reset

    def reset_at(self, task: Task) -> float:
        return self.resets.get(task.key, 0.0)


# -- checking what a visitor types ---------------------------------------------------------------


def clean_nickname(text: Any) -> str:
    """A nickname fit to show anywhere: tags removed, then letters, digits, spaces and - _ . '
    only (no markup, no control characters), single spaces, at most NICK_MAX characters; ""
    if none is left."""
    text = unicodedata.normalize("NFKC", str(text or ""))[: NICK_MAX * 8]
    text = re.sub(r"<[^<>]{0,64}>", " ", text)  # markup goes whole: "<b>Ada</b>" -> "Ada"
    text = re.sub(r"[^\w .'-]", " ", text)
    return " ".join(text.split())[:NICK_MAX].strip()


def check_guess(value: Any) -> float:
    """A guess in dB as a float; ValueError with a plain message if it is not a sane one."""
    low, high = GUESS_RANGE
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"A guess is a number of dB, like 18.5; got {value!r:.40}.") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"A guess must lie between {low:g} and {high:g} dB.")
    return round(number, 2)


def _visitor_hash(visitor: str) -> str:
    return hashlib.sha256(visitor.encode()).hexdigest()[:16] if visitor else ""


# -- the file ----------------------------------------------------------------------------------


def board_path(folder: Path | str) -> Path:
    return Path(folder) / BOARD_FILE


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One writer at a time: threads of this process, and (where fcntl exists) processes."""
    with _lock:
        if fcntl is None:
            yield
            return
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f".{BOARD_FILE}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def read_board(folder: Path | str) -> BoardState:
    """The board's state; a missing, damaged or foreign file reads as an empty board."""
    path = board_path(folder)
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError("too large")
        data, intact = artifacts.read_json(path, MAX_FILE_BYTES)
        if data.get("format") != FORMAT or data.get("version") != VERSION or intact is False:
            raise ValueError("not a class board")
        return _state_from(data)
    except FileNotFoundError:
        return BoardState()
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as err:
        log.warning("ignoring the class board file %s: %s", path, err)
        return BoardState()


def _state_from(data: dict[str, Any]) -> BoardState:
    guesses = [g for g in map(_guess_from, data.get("guesses") or []) if g is not None]
    pinned = data.get("pinned")
    pinned = pinned if Task.from_key(pinned) is not None else None
    resets = {
        str(k): float(v)
        for k, v in dict(data.get("resets") or {}).items()
        if Task.from_key(k) is not None and isinstance(v, int | float) and math.isfinite(v)
    }
    return BoardState(tuple(guesses[-MAX_GUESSES:]), pinned, resets)


def _guess_from(item: Any) -> Guess | None:
    """A guess read back from the file, checked as one typed in (the file may be edited)."""
    try:
        g = Guess(**item)
        ok = (
            Task.from_key(g.task) is not None
            and re.fullmatch(r"[0-9a-f]{16}", g.run_key) is not None
            and math.isfinite(float(g.made_at))
        )
        values = asdict(g) | {
            "guess": check_guess(g.guess),
            "nickname": clean_nickname(g.nickname),
            "made_at": float(g.made_at),
            "before_result": bool(g.before_result),
            "visitor": str(g.visitor)[:16],
        }
        return Guess(**values) if ok else None
    except (TypeError, ValueError):
        return None


def _write(folder: Path, state: BoardState) -> None:
    record = artifacts.envelope(
        FORMAT,
        VERSION,
        "class-board",
        guesses=[asdict(g) for g in state.guesses[-MAX_GUESSES:]],
        pinned=state.pinned,
        resets=dict(sorted(state.resets.items(), key=lambda kv: kv[1])[-MAX_RESETS:]),
    )
    text = json.dumps(artifacts.seal(record), indent=0) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    artifacts.write_atomic(board_path(folder), text.encode())


def _update(folder: Path | str, change) -> BoardState:
    """Read, change (a function of the state) and write the board under the lock."""
    folder = Path(folder)
    with _locked(folder):
        state = change(read_board(folder))
        _write(folder, state)
    return state


# -- guesses -------------------------------------------------------------------------------------


def add_guess(
    folder: Path | str,
    cfg: TrainConfig,
    guess: Any,
    nickname: Any = "",
    visitor: str = "",
    result_exists: bool = False,
    now: float | None = None,
) -> Guess:
    """Save a visitor's guess of cfg's test PSNR (replacing their earlier guess of that run).
    Raises ValueError for a guess that is not a sane number of dB, OSError if it cannot be
    written."""
    made = Guess(
        run_key=cfg.key(),
        task=task_of(cfg).key,
        guess=check_guess(guess),
        nickname=clean_nickname(nickname),
        made_at=time.time() if now is None else float(now),
        before_result=not result_exists,
        visitor=_visitor_hash(visitor),
    )

    def change(state: BoardState) -> BoardState:
        kept = [
            g
            for g in state.guesses
            if not (made.visitor and (g.visitor, g.run_key) == (made.visitor, made.run_key))
        ]
        return BoardState(tuple([*kept, made][-MAX_GUESSES:]), state.pinned, state.resets)

    _update(folder, change)
    return made


def withdraw(folder: Path | str, guess: Guess) -> None:
    """Take back a guess saved for a run that was then not started (the queue refused it)."""

    def change(state: BoardState) -> BoardState:
        kept = tuple(g for g in state.guesses if g != guess)
        return BoardState(kept, state.pinned, state.resets)

    _update(folder, change)


# -- the teacher -------------------------------------------------------------------------------


def check_code(given: str, expected: str, visitor: str, now: float | None = None) -> None:
    """Raise TeacherRefused unless `given` is the teacher code; a visitor gets WRONG_CODES tries
    per LOCKOUT_S, so the code cannot be guessed by trying."""
    if not expected:
        raise TeacherRefused(
            "The teacher controls are off on this server: it was started without "
            "AECORE_TEACHER_CODE."
        )
    now = time.time() if now is None else now
    with _lock:
        recent = [t for t in _failures.get(visitor, []) if now - t < LOCKOUT_S]
        _failures[visitor] = recent
        if len(recent) >= WRONG_CODES:
            wait = math.ceil((LOCKOUT_S - (now - recent[0])) / 60)
            raise TeacherRefused(f"Too many wrong codes: try again in {wait} minute(s).")
        if hmac.compare_digest(str(given).encode(), expected.encode()):
            return
        recent.append(now)
        if len(_failures) > 4096:  # bounded: forget the oldest visitors
            _failures.pop(next(iter(_failures)))
    raise TeacherRefused("That is not the teacher code.")


def pin(folder: Path | str, task: Task | None) -> BoardState:
    """Pin `task` first in every student's list (None: unpin). Check the code first."""
    key = task.key if task is not None else None
    return _update(folder, lambda s: BoardState(s.guesses, key, s.resets))


def reset(folder: Path | str, task: Task, now: float | None = None) -> BoardState:
    """Start the task's board afresh: runs and guesses from before now are no longer shown."""
    at = time.time() if now is None else float(now)
    return _update(folder, lambda s: BoardState(s.guesses, s.pinned, {**s.resets, task.key: at}))


# -- the board -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """A run on the board: its place, its index entry (aecore.runindex.RunEntry) and score."""

    rank: int
    entry: Any
    psnr: float


@dataclass(frozen=True)
class GuessPoint:
    guess: Guess
    result: float | None  # the run's test PSNR; None while it is not trained
    counts: bool  # made before the result existed

    @property
    def error(self) -> float | None:
        return None if self.result is None else self.guess.guess - self.result


def _score(entry: Any) -> float | None:
    value = entry.metrics.get("test_psnr")
    return value if isinstance(value, float) and math.isfinite(value) else None


def ranking(task: Task, entries: Sequence[Any], state: BoardState) -> list[Placed]:
    """The task's runs since its reset, best test PSNR first; a run listed twice (runs folder
    and bundled) counts once."""
    since, seen, scored = state.reset_at(task), set(), []
    for e in entries:
        key, score = e.config.key(), _score(e)
        if key in seen or score is None or task_of(e.config) != task or e.trained_at < since:
            continue
        seen.add(key)
        scored.append((score, e))
    scored.sort(key=lambda pair: -pair[0])
    return [Placed(i + 1, e, s) for i, (s, e) in enumerate(scored)]


def guess_points(task: Task, placed: Sequence[Placed], state: BoardState) -> list[GuessPoint]:
    """The task's guesses since its reset, each with its run's result once there is one."""
    runs = {p.entry.config.key(): p for p in placed}
    out = []
    for g in state.guesses:
        if g.task != task.key or g.made_at < state.reset_at(task):
            continue
        run = runs.get(g.run_key)
        result = run.psnr if run is not None else None
        counts = g.before_result and (run is None or g.made_at <= run.entry.trained_at + 1.0)
        out.append(GuessPoint(g, result, counts))
    return out


def tasks(entries: Sequence[Any], state: BoardState) -> list[Task]:
    """Every task with a run or a guess: the pinned one first, then by runs, most first."""
    counts: dict[Task, int] = {}
    for e in entries:
        if _score(e) is not None:
            t = task_of(e.config)
            counts[t] = counts.get(t, 0) + 1
    for g in state.guesses:
        t = Task.from_key(g.task)
        if t is not None:
            counts.setdefault(t, 0)
    pinned = Task.from_key(state.pinned)
    if pinned is not None:
        counts.setdefault(pinned, 0)
    order = sorted(counts, key=lambda t: (t != pinned, -counts[t], t.key))
    return order


# -- the lines to beat ---------------------------------------------------------------------------


def pca_components(dataset: str) -> int:
    """The PCA line's components: the code size of the Learn page's denoising preset, a code
    a student's first dense denoiser typically has."""
    return preset_config("denoising", dataset).latent


def lines_to_beat(
    ds: ImageDataset, task: Task, cache_dir: Path | str | None = None
) -> dict[str, float]:
    """Test PSNR of the 3x3 median filter and of PCA on the task's whole test set (the images
    every run is scored on); cached on disk by aecore.evaluate. Without a corruption the
    median filter only blurs, so it is left out there."""
    k = pca_components(ds.name)
    m = baseline_metrics(ds, task.corruption, task.level, k, "cpu", None, cache_dir)
    lines = {f"PCA, {k} components": m["test_psnr_pca"]}
    if has_level(task.corruption):
        lines = {"median filter 3x3": m["test_psnr_median3"], **lines}
    return lines


def recorded_lines(task: Task, placed: Sequence[Placed]) -> dict[str, float]:
    """The lines as the runs recorded them, for a dataset that is not on this computer: the
    median from any run, PCA from a run whose code has pca_components units."""
    lines: dict[str, float] = {}
    k = pca_components(task.dataset)
    for p in placed:
        median, pca = (p.entry.metrics.get(f"test_psnr_{m}") for m in ("median3", "pca"))
        if has_level(task.corruption) and isinstance(median, float) and math.isfinite(median):
            lines.setdefault("median filter 3x3", median)
        if p.entry.config.latent == k and isinstance(pca, float) and math.isfinite(pca):
            lines.setdefault(f"PCA, {k} components", pca)
    return dict(sorted(lines.items(), key=lambda kv: not kv[0].startswith("median")))


def guess_chart(points: Sequence[GuessPoint], lines: dict[str, float]) -> go.Figure:
    """Guess (x) against result (y), one dot per guess with a result: on the dashed y = x line
    a guess was exact, above it the run beat the guess. The lines to beat are horizontal."""
    shown = [p for p in points if p.result is not None]
    values = [v for p in shown for v in (p.guess.guess, p.result)] + list(lines.values())
    low, high = (min(values) - 2, max(values) + 2) if values else (0.0, 40.0)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[low, high], y=[low, high], mode="lines", name="guess = result",
            line={"dash": "dash", "color": "#555"}, hoverinfo="skip",
        )
    )  # fmt: skip
    for counts, name, colour in ((True, "guess", "#1f77b4"), (False, "not counted", "#aaa")):
        group = [p for p in shown if p.counts == counts]
        fig.add_trace(
            go.Scatter(
                x=[p.guess.guess for p in group],
                y=[p.result for p in group],
                mode="markers",
                name=name,
                marker={"size": 12, "color": colour},
                text=[p.guess.nickname or "anonymous" for p in group],
                hovertemplate="%{text}<br>guess %{x:.1f} dB<br>result %{y:.2f} dB<extra></extra>",
            )
        )
    for i, (name, value) in enumerate(lines.items()):
        fig.add_hline(
            y=value, line_dash="dot", line_color=("#d62728", "#2ca02c")[i % 2],
            annotation_text=f"{name}: {value:.2f}",
            annotation_position=("bottom right", "top left")[i % 2],
        )  # fmt: skip
    fig.update_layout(
        xaxis_title="guess (dB)", yaxis_title="result: test PSNR (dB)",
        xaxis_range=[low, high], yaxis_range=[low, high], height=420,
        margin={"l": 60, "r": 10, "t": 20, "b": 40}, font={"size": 14},
        legend={"orientation": "h", "y": -0.18},
    )  # fmt: skip
    return fig
