"""The experiments script as a smoke run: a quick pass over two sections writes a document."""

import json

import pytest
from PIL import Image

from aecore.best_classical import BestClassical
from experiments.figures import line_chart
from experiments.report import Context, winners
from experiments.run import render, run_all


def test_quick_run_writes_results_and_figures(tmp_path):
    path = run_all(quick=True, only=[2, 8], out_dir=tmp_path, log=lambda line: None)
    text = path.read_text()
    assert "## 2. Latent size" in text and "## 8. CIFAR-10" in text
    assert "skipped: CIFAR-10 not present" in text  # the test data folder has no CIFAR-10
    assert "| 32 |" in text  # a row of the latent-size table
    figure = tmp_path / "figures" / "e2_latent_sizes.png"
    assert Image.open(figure).mode == "L"  # grayscale grids: a third of an RGB file's bytes
    sections = json.loads((tmp_path / "sections.json").read_text())
    assert set(sections) == {"2", "8"}

    run_all(quick=True, only=[8], out_dir=tmp_path, log=lambda line: None)
    assert "## 2. Latent size" in path.read_text()  # --only keeps the other sections


def test_unknown_experiment_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no experiment"):
        run_all(quick=True, only=[99], out_dir=tmp_path)


def test_line_chart_draws_every_series(tmp_path):
    series = {"a": [(1, 0.5), (2, 0.25)], "b": [(1, 0.4), (2, 0.3)]}
    img = Image.open(line_chart(series, tmp_path / "c.png", "title", "x", "y"))
    colours = {c for _, c in img.getcolors(1 << 16)}
    assert (31, 119, 180) in colours and (214, 39, 40) in colours  # the first two line colours


def _stored(number: int, date: str | None) -> dict:
    section = {"number": number, "title": f"T{number}", "body": "b", "headline": "", "seconds": 6}
    return section | ({"date": date} if date is not None else {})


def test_header_names_the_day_each_section_was_run(tmp_path):
    sections = {str(n): _stored(n, "2026-11-26") for n in (1, 3, 9)}
    sections |= {"2": _stored(2, "2026-11-23"), "5": _stored(5, None)}  # 5: stored undated
    text = render(sections, Context(tmp_path))
    header = text.splitlines()[2]
    assert "sections 1, 3 and 9 run on 2026-11-26; section 2 run on 2026-11-23; " in header
    assert "section 5 run on an earlier day" in header  # never claimed for today
    assert "*(0.1 min, run on 2026-11-23)*" in text and "*(0.1 min)*" in text


def test_winners_names_each_tuned_method_once_with_its_levels():
    def best(label: str) -> BestClassical:
        return BestClassical("median", {}, label, {"mse": 0.0, "psnr": 20.0, "ssim": 0.5}, ())

    got = winners([0.01, 0.05, 0.9], [best("A (size 5)"), best("A (size 5)"), best("B")])
    assert got == "A (size 5) at p = 0.01, 0.05; B at p = 0.9"
