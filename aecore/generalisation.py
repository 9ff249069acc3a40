"""Generalisation across corruptions: U-Nets trained on one corruption, tested on every other
(experiments/RESULTS.md, section 7), as a PSNR matrix.

Rows are models (plus two references: the corrupted input itself and a 3x3 median filter),
columns are test corruptions; a cell is the mean PSNR of the row's output on the first
`limit` test images corrupted as the column says, with evaluate.TEST_SEED, so every row sees the
same images. The row models are ordinary TrainConfigs (row_configs), so they load, train and
cache through the job manager like any run, and can be bundled.

The recipe is section 7's: a U-Net, batch 32, Adam at 1e-3, 2 epochs on MNIST, at gaussian 0.5,
salt and pepper 0.2, 10 black rows and a 10x10 gray block. Sized per dataset: stripes and block
scale with the image height (3 of 8 rows on the 8x8 digits), and a small dataset trains more
epochs for a comparable number of steps.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import plotly.graph_objects as go
import torch

from aecore.baselines import median_filter
from aecore.config import TrainConfig
from aecore.corruptions import CORRUPTIONS
from aecore.data import DATASETS, ImageDataset
from aecore.evaluate import corrupted_test_set, reconstruct
from aecore.metrics import psnr
from aecore.models import Autoencoder
from aecore.presets import is_small

MATRIX_IMAGES = 1000  # test images per cell: enough for a stable mean, quick on a CPU
MODEL = "unet"
# (corruption, level on 28-pixel-high images, whether the level counts pixels of height)
RECIPE: tuple[tuple[str, float, bool], ...] = (
    ("gaussian", 0.5, False),
    ("salt_pepper", 0.2, False),
    ("stripes", 10, True),
    ("block", 10, True),
)
REFERENCE_HEIGHT = 28  # the recipe's image height (MNIST)
EPOCHS = {"large": 2, "small": 40}  # small: 1,500 digits at batch 32 are 47 steps an epoch
INPUT, MEDIAN = "corrupted input", "median 3x3"


@dataclass(frozen=True)
class Column:
    """One test corruption of the matrix (and the corruption its row's model trains on)."""

    corruption: str
    level: float

    @property
    def label(self) -> str:
        """ "Gaussian noise 0.5", "Gray block 3": the corruption's label without its note."""
        name = re.sub(r"\s*\(.*?\)", "", CORRUPTIONS[self.corruption].label).strip()
        return f"{name} {self.level:g}"


@dataclass(frozen=True)
class Matrix:
    """PSNR in dB; rows[i] has one value per column, None where the row is not trained."""

    columns: tuple[Column, ...]
    rows: tuple[str, ...]
    values: tuple[tuple[float | None, ...], ...]
    images: int  # test images behind each cell

    def row(self, name: str) -> tuple[float | None, ...]:
        return self.values[self.rows.index(name)]


def columns(dataset: str) -> tuple[Column, ...]:
    """The recipe's corruptions for `dataset`: a level in pixels of height scales with it."""
    height = DATASETS[dataset].meta["shape"][1]
    out = []
    for corruption, level, in_pixels in RECIPE:
        if in_pixels:
            level = float(max(1, round(level * height / REFERENCE_HEIGHT)))
        out.append(Column(corruption, float(level)))
    return tuple(out)


def row_config(dataset: str, column: Column) -> TrainConfig:
    """The U-Net of the row trained on `column`'s corruption."""
    return TrainConfig(
        dataset=dataset,
        corruption=column.corruption,
        level=column.level,
        model=MODEL,
        batch_size=32,
        lr=1e-3,
        epochs=EPOCHS["small" if is_small(dataset) else "large"],
    )


def row_configs(dataset: str) -> list[TrainConfig]:
    """Every row model of `dataset`'s matrix, in column order (the diagonal)."""
    return [row_config(dataset, c) for c in columns(dataset)]


def row_name(column: Column) -> str:
    return f"U-Net trained on {column.label}"


def images_used(ds: ImageDataset, limit: int = MATRIX_IMAGES) -> int:
    return min(limit, len(ds.test_images))


def _test_sets(ds: ImageDataset, limit: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [corrupted_test_set(ds, c.corruption, c.level, "cpu", limit) for c in columns(ds.name)]


def _mean_psnr(x: torch.Tensor, clean: torch.Tensor) -> float:
    return float(psnr(x.clamp(0.0, 1.0), clean).mean())


def row_cells(model: Autoencoder, ds: ImageDataset, limit: int = MATRIX_IMAGES) -> list[float]:
    """One model's PSNR on each column's test images (the first `limit`)."""
    return [_mean_psnr(reconstruct(model, noisy), clean) for clean, noisy in _test_sets(ds, limit)]


def reference_rows(ds: ImageDataset, limit: int = MATRIX_IMAGES) -> dict[str, list[float]]:
    """The rows every model should beat: the corrupted input as it is, and a 3x3 median."""
    sets = _test_sets(ds, limit)
    return {
        INPUT: [_mean_psnr(noisy, clean) for clean, noisy in sets],
        MEDIAN: [_mean_psnr(median_filter(noisy, 3), clean) for clean, noisy in sets],
    }


def assemble(
    dataset: str,
    references: Mapping[str, Sequence[float]],
    trained: Mapping[Column, Sequence[float] | None],
    images: int,
) -> Matrix:
    """The matrix: reference rows first, then one row per column's model (None: untrained)."""
    cols = columns(dataset)
    rows = [*references]
    values: list[tuple[float | None, ...]] = [tuple(v) for v in references.values()]
    for c in cols:
        rows.append(row_name(c))
        cells = trained.get(c)
        values.append(tuple(cells) if cells is not None else (None,) * len(cols))
    return Matrix(cols, tuple(rows), tuple(values), images)


def model_rows(m: Matrix) -> list[tuple[int, Column]]:
    """(row index, the column it was trained on) of the model rows."""
    return [(m.rows.index(row_name(c)), c) for c in m.columns]


def below_input(m: Matrix) -> list[tuple[Column, Column]]:
    """(trained on, tested on) of the off-diagonal cells that do worse than the input itself."""
    base = m.row(INPUT)
    out = []
    for i, trained_on in model_rows(m):
        for j, tested_on in enumerate(m.columns):
            value = m.values[i][j]
            if trained_on != tested_on and value is not None and value < base[j]:
                out.append((trained_on, tested_on))
    return out


def verdict(m: Matrix) -> str:
    """What the matrix says, in a sentence or two."""
    trained = [c for i, c in model_rows(m) if m.values[i][0] is not None]
    if not trained:
        return "No row model is trained yet: only the references are shown."
    bad = below_input(m)
    if not bad:
        return (
            "Every trained model improves on the corrupted input, even for corruptions it "
            "never saw."
        )
    pairs = "; ".join(f"trained on {a.label}, tested on {b.label}" for a, b in bad)
    return (
        f"Off the diagonal, {len(bad)} cell(s) do worse than leaving the input alone ({pairs}). "
        "A denoiser only helps against corruptions that resemble what it was trained on."
    )


def _gain_colours(m: Matrix) -> list[list[float | None]]:
    """Each cell's gain over the corrupted input (dB): the heatmap's colour."""
    base = m.row(INPUT)
    return [[None if v is None else v - base[j] for j, v in enumerate(row)] for row in m.values]


def heatmap(m: Matrix) -> go.Figure:
    """The matrix as a heatmap: PSNR printed in each cell, colour = gain over the corrupted
    input (red: worse than doing nothing), the diagonal outlined."""
    gains = _gain_colours(m)
    finite = [abs(g) for row in gains for g in row if g is not None and math.isfinite(g)]
    span = max(finite, default=1.0) or 1.0
    text = [["not trained" if v is None else f"{v:.2f}" for v in row] for row in m.values]
    fig = go.Figure(
        go.Heatmap(
            z=gains,
            x=[c.label for c in m.columns],
            y=list(m.rows),
            text=text,
            texttemplate="%{text}",
            textfont={"size": 15},
            colorscale="RdBu",
            zmid=0.0,
            zmin=-span,
            zmax=span,
            colorbar={"title": {"text": "dB over<br>the input"}},
            hovertemplate="%{y}<br>tested on %{x}<br>PSNR %{text} dB<extra></extra>",
        )
    )
    for i, c in model_rows(m):
        j = m.columns.index(c)
        fig.add_shape(
            type="rect",
            x0=j - 0.5,
            x1=j + 0.5,
            y0=i - 0.5,
            y1=i + 0.5,
            line={"color": "black", "width": 3},
        )
    fig.update_yaxes(autorange="reversed", title="trained on (rows)")
    fig.update_xaxes(side="top", title="tested on (columns)")
    fig.update_layout(
        height=120 + 52 * len(m.rows),
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
        font={"size": 14},
    )
    return fig
