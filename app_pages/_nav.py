"""The page menu in the sidebar: links that carry the configuration in their URL.

Streamlit's own menu opens a page without the URL's query; the page then writes the configuration
back into the URL, a second browser history entry, so Back needed two presses per page. These
links open the page with the configuration already in the URL: one entry, one press.

The links are drawn before the page runs (the menu is there while a page computes, and also when
it ends early with st.stop()), with the URL's configuration at that moment. A page that changes the
configuration in its run (an edit in the sidebar) writes the new URL in _config._write_query,
which calls `refresh()`: the same links, drawn again with the new query. A stale link would reopen
the old configuration and undo the edit.

The placeholder lives in a thread-local: each session's script runs in a thread of its own, and a
run sets it before the page and reads it while the page runs.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence

import streamlit as st
from streamlit.navigation.page import StreamlitPage

_run = threading.local()


def start(pages: Mapping[str, Sequence[StreamlitPage]]) -> None:
    """Make this run's menu at the top of the sidebar and draw it."""
    _run.pages, _run.placeholder = pages, st.sidebar.empty()
    refresh()


def refresh() -> None:
    """Draw this run's menu again with the URL's query as it is now; nothing outside the router
    (a page run on its own, as the app tests do)."""
    placeholder = getattr(_run, "placeholder", None)
    if placeholder is None:
        return
    query = st.query_params.to_dict()
    with placeholder.container():
        for section, pages in _run.pages.items():
            st.caption(section)
            for page in pages:
                st.page_link(page, query_params=query)


def stop() -> None:
    """The run is over: a later run on this thread starts from nothing."""
    _run.placeholder = None
