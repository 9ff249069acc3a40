"""The configuration sidebar is built from app_pages._config.FIELDS: one row per TrainConfig
field, so adding a field to the config is adding one row there."""

from __future__ import annotations

from dataclasses import fields

from aecore.config import RANGES, TrainConfig
from app_pages._config import FIELDS

KINDS = {"select", "radio", "number", "checkbox", "text", "level"}


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
        if row.kind == "text":
            assert types[row.name] == "str", row.name


def test_beta_shows_for_a_vae_and_classes_reach_the_url(empty_runs):
    from tests.app.conftest import TINY_VAE, page

    at = page("train", TINY_VAE).run()
    assert not at.exception
    before = at.query_params.get("classes", "")
    at.number_input(key="cfg_beta").set_value(4.0).run()
    assert at.query_params["beta"] == "4.0"
    at.text_input(key="cfg_classes").input("5-9").run()
    assert not at.exception
    assert at.query_params["classes"] == "5,6,7,8,9" != before


def test_bad_classes_get_a_message_not_a_traceback(empty_runs):
    from tests.app.conftest import TINY, page

    at = page("train", TINY).run()
    assert not any(w.key == "cfg_beta" for w in at.number_input)  # not a VAE: no β
    at.text_input(key="cfg_classes").input("0-42").run()
    assert not at.exception
    assert any("classes must lie between 0 and 9" in e.value for e in at.sidebar.error)


def test_precision_reaches_the_url_and_warns_where_bf16_is_emulated(empty_runs, monkeypatch):
    import aecore.train
    from tests.app.conftest import TINY, page

    at = page("train", TINY).run()
    assert at.query_params["precision"] == "fp32"
    monkeypatch.setattr(aecore.train, "native_bf16", lambda device: False)
    at.radio(key="cfg_precision").set_value("bf16").run()
    assert not at.exception
    assert at.query_params["precision"] == "bf16"
    assert any("no bfloat16 arithmetic" in c.value for c in at.sidebar.caption)
    monkeypatch.setattr(aecore.train, "native_bf16", lambda device: True)
    at.run()
    assert not any("no bfloat16 arithmetic" in c.value for c in at.sidebar.caption)


def test_a_link_with_a_bad_precision_gets_a_warning(empty_runs):
    from tests.app.conftest import TINY, page

    at = page("train", TINY)
    at.query_params["precision"] = "fp8"
    at.run()
    assert not at.exception
    assert at.radio(key="cfg_precision").value == "fp32"
    assert any("precision" in w.value for w in [*at.warning, *at.sidebar.warning])
