"""The configuration sidebar is built from app_pages._config.FIELDS: one row per TrainConfig
field, so adding a field to the config is adding one row there."""

from __future__ import annotations

from dataclasses import fields

from aecore.config import RANGES, TrainConfig
from app_pages._config import FIELDS

KINDS = {"select", "radio", "number", "checkbox", "level"}


def test_every_config_field_has_exactly_one_row():
    names = [f.name for f in FIELDS]
    assert sorted(names) == sorted(f.name for f in fields(TrainConfig))


def test_number_rows_are_the_fields_with_a_range():
    assert {f.name for f in FIELDS if f.kind == "number"} == set(RANGES)
    assert all(f.step is not None for f in FIELDS if f.kind == "number")


def test_each_row_is_a_known_widget_with_what_it_needs():
    types = {f.name: str(f.type) for f in fields(TrainConfig)}
    for row in FIELDS:
        assert row.kind in KINDS, row.name
        if row.kind in ("select", "radio"):
            assert types[row.name] == "str" and len(row.options()) > 0, row.name
        if row.kind == "checkbox":
            assert types[row.name] == "bool", row.name
