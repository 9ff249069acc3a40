"""aecore.settings: the one reader of the AECORE_* variables. Defaults, parsed values, what a
bad value falls back to (as the code before it did), and parsing once per environment."""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import pytest

from aecore import checkpoints, data, runcache, settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in settings.ENV:
        monkeypatch.delenv(name, raising=False)
    settings._parse.cache_clear()  # so a warning of an earlier test's value is logged again
    yield
    settings._parse.cache_clear()


def test_defaults():
    s = settings.current()
    home = Path.home() / ".cache" / "aecore"
    assert (s.data_dir, s.runs_dir) == (home / "data", home / "runs")
    assert not s.offline and s.runs_max_bytes == 500 * 2**20
    assert (s.page_slots, s.run_budget_s) == (2, 300.0)
    assert s.bundled_dir == Path(__file__).resolve().parents[2] / "checkpoints"
    assert s.manifest.is_file() and s.bundled_classifier_dir.is_dir()


def test_values_are_parsed_and_the_old_functions_read_them(monkeypatch, tmp_path):
    monkeypatch.setenv("AECORE_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("AECORE_RUNS_DIR", str(tmp_path / "r"))
    monkeypatch.setenv("AECORE_OFFLINE", "1")
    monkeypatch.setenv("AECORE_RUNS_MAX_MB", "1.5")
    monkeypatch.setenv("AECORE_PAGE_SLOTS", "4")
    monkeypatch.setenv("AECORE_RUN_BUDGET_S", "90")
    s = settings.current()
    assert (data.data_dir(), checkpoints.runs_dir()) == (tmp_path / "d", tmp_path / "r")
    assert data.offline() and runcache.max_bytes() == int(1.5 * 2**20)
    assert (s.page_slots, s.run_budget_s) == (4, 90.0)
    assert s.runs_classifier_dir == tmp_path / "r" / "classifiers"


@pytest.mark.parametrize(
    ("value", "offline"),
    [("", False), ("0", False), ("false", False), ("False", False), ("1", True), ("no", True)],
)
def test_offline_is_anything_but_the_false_words(monkeypatch, value, offline):
    monkeypatch.setenv("AECORE_OFFLINE", value)
    assert settings.current().offline is offline


def test_an_empty_folder_variable_means_the_default(monkeypatch):
    monkeypatch.setenv("AECORE_RUNS_DIR", "")
    monkeypatch.setenv("AECORE_DATA_DIR", "")
    assert settings.current() == settings._parse((None,) * len(settings.ENV), settings.BUNDLED_DIR)


@pytest.mark.parametrize(
    ("value", "slots"), [("3", 3), (" 3 ", 3), ("0", 1), ("-5", 1), ("two", 2), ("", 2)]
)
def test_page_slots_fall_back_or_clip(monkeypatch, value, slots):
    monkeypatch.setenv("AECORE_PAGE_SLOTS", value)
    assert settings.current().page_slots == slots


@pytest.mark.parametrize(
    ("value", "budget", "warned"),
    [("60", 60.0, False), ("0.2", 1.0, False), ("nan", 1.0, False), ("soon", 300.0, True)],
)
def test_the_run_budget_falls_back_with_a_warning(monkeypatch, caplog, value, budget, warned):
    monkeypatch.setenv("AECORE_RUN_BUDGET_S", value)
    with caplog.at_level(logging.WARNING, logger="aecore.settings"):
        assert settings.current().run_budget_s == budget
    assert ("AECORE_RUN_BUDGET_S" in caplog.text) == warned


def test_parsed_once_per_environment_and_again_when_it_changes(monkeypatch, caplog):
    monkeypatch.setenv("AECORE_RUNS_MAX_MB", "lots")
    with caplog.at_level(logging.WARNING, logger="aecore.settings"):
        first, second = settings.current(), settings.current()
    assert first is second and caplog.text.count("AECORE_RUNS_MAX_MB") == 1
    monkeypatch.setenv("AECORE_RUNS_MAX_MB", "2")
    assert settings.current().runs_max_bytes == 2 * 2**20


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.current().page_slots = 9


def test_nothing_else_in_aecore_or_the_pages_reads_these_variables():
    root = Path(__file__).resolve().parents[2]
    names = "|".join(settings.ENV)
    read = re.compile(rf"(environ\b[^\n]*|getenv\([^\n]*)[\"'](?:{names})[\"']")
    readers = [
        p.relative_to(root).as_posix()
        for folder in ("aecore", "app_pages")
        for p in (root / folder).rglob("*.py")
        if read.search(p.read_text())
    ]
    assert readers == []  # settings.py reads them by name from its ENV tuple
    assert "os.environ.get(name) for name in ENV" in (root / "aecore/settings.py").read_text()
