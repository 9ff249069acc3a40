"""The router (streamlit_app.py): it runs the page asked for, then hands back the memory the
page run freed (aecore.allocator; never while a run trains, which release() checks itself)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from aecore import allocator
from tests.app.conftest import ROOT, TIMEOUT


def test_a_page_run_ends_by_handing_freed_memory_back(monkeypatch, empty_runs):
    released = []
    monkeypatch.setattr(allocator, "release", lambda: released.append(True) or True)
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=TIMEOUT).run()
    assert not at.exception
    assert at.title[0].value == "Autoencoder lab"  # Home, the default page
    assert released  # once per page run (a rerun the menu asks for is a run of its own)
