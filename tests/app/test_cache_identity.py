"""The pages' cached functions take runs and datasets themselves; st.cache_data's hash_funcs
(app_pages._ui.HASH_FUNCS) say what identifies them: a run by its config key, a dataset by its
test images. Called outside a Streamlit server, the caches work in memory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import streamlit as st
import torch

from aecore import latent
from aecore.checkpoints import Checkpoint
from aecore.data import load_dataset
from aecore.models import build_model
from app_pages import _ui as ui
from tests.app.conftest import TINY


@pytest.fixture(autouse=True)
def fresh_caches():
    st.cache_data.clear()
    yield
    st.cache_data.clear()


def run(cfg=TINY) -> Checkpoint:
    """A new Checkpoint object (and a new model) for cfg."""
    return Checkpoint(cfg, build_model(cfg, (1, 8, 8)))


def counted(monkeypatch, module, name: str) -> list:
    """Count the calls of module.name (cache_data hands out copies, so hits are told by calls)."""
    calls, real = [], getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def test_a_run_is_cached_by_its_config_key_not_by_the_object(monkeypatch):
    calls = counted(monkeypatch, latent, "encode_all")
    first = ui.latent_points(run(), 50, "pca")
    again = ui.latent_points(run(), 50, "pca")  # another object (and model), the same run
    assert len(calls) == 1
    np.testing.assert_array_equal(first[1], again[1])
    ui.latent_points(run(dataclasses.replace(TINY, latent=3)), 50, "pca")  # another run
    assert len(calls) == 2


def test_a_dataset_is_cached_by_its_test_images(monkeypatch):
    calls = counted(monkeypatch, ui, "corrupted_test_set")
    digits = load_dataset("digits")
    clean, _ = ui._test_images(digits, "gaussian", 0.3, 5)
    copy = dataclasses.replace(digits)  # another object holding the same images
    assert torch.equal(ui._test_images(copy, "gaussian", 0.3, 5)[0], clean)
    assert len(calls) == 1
    other = dataclasses.replace(digits, test_images=digits.test_images.flip(0))
    assert not torch.equal(ui._test_images(other, "gaussian", 0.3, 5)[0], clean)
    assert len(calls) == 2


def test_identities_name_what_decides_the_result():
    assert ui.HASH_FUNCS[Checkpoint](run()) == TINY.key()
    digits = load_dataset("digits")
    name, shape, _ = ui.HASH_FUNCS[type(digits)](digits)
    assert name == "digits" and shape == tuple(digits.test_images.shape)
