"""The page menu in the sidebar: links that carry the session's settings in their URL.

Streamlit's own menu opens a page without the URL's query; the page then writes the settings
back into the URL, a second browser history entry, so Back needed two presses per page. These
links open the page with the settings already in the URL: one entry, one press.

The links carry what _config._write_query last wrote for this session (a validated TrainConfig
as strings), never the URL's own query: a link with junk or oversized values is not copied into
every menu entry. They are drawn before the page runs (the menu is there while a page computes,
and also when it ends early with st.stop()); a page that writes new settings in its run (an edit
in the sidebar) calls `carry`, which draws them again. A stale link would reopen the old settings
and undo the edit.

Back pressed twice faster than the app answers (a slow server, an impatient class) met a race in
Streamlit (1.67): its answer to the first Back pushed that page into the history again, after the
second had already left it, so Forward had nowhere to go. HISTORY_GUARD, drawn with the menu,
drops a push to another page that comes after a Back or Forward with no click or key press since:
every page switch the user asks for begins with one, and the URL updates that Streamlit owes a
Back or Forward replace the entry rather than push one.

The placeholder lives in a thread-local: each session's script runs in a thread of its own, and a
run sets it before the page and clears it after.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import streamlit as st
from streamlit.navigation.page import StreamlitPage

QUERY = "_nav_query"  # session key: the settings the links carry
# The session's checked settings as strings, or None: set by app_pages._config when it loads. The
# menu cannot import it itself (it needs torch, and Home's first picture must not wait for it).
settings_now: Callable[[], dict[str, str] | None] | None = None
_run = threading.local()
# The style hides the empty element that holds the script: it would add a gap under the menu.
HISTORY_GUARD = """<style>
[data-testid="stElementContainer"]:has(#aecore-history-guard) { display: none; }
</style>
<script id="aecore-history-guard">
(() => {
  if (window.aecoreHistoryGuard) return;
  window.aecoreHistoryGuard = true;
  let sinceBack = false;  // a Back or Forward, and no click or key press since
  addEventListener("popstate", () => { sinceBack = true; }, true);
  for (const kind of ["pointerdown", "keydown"]) {
    addEventListener(kind, () => { sinceBack = false; }, true);
  }
  const push = history.pushState.bind(history);
  history.pushState = (state, title, url) => {
    const path = url == null ? location.pathname : new URL(url, location.href).pathname;
    if (sinceBack && path !== location.pathname) return;  // a stale answer: see _nav.py
    return push(state, title, url);
  };
})();
</script>"""


def start(pages: Mapping[str, Sequence[StreamlitPage]]) -> None:
    """Make this run's menu at the top of the sidebar and draw it."""
    _run.pages, _run.placeholder = pages, st.sidebar.empty()
    _draw(st.session_state.get(QUERY, {}))


def carry(query: Mapping[str, str]) -> None:
    """The links carry `query` from now on; this run's menu is drawn again if it changed. Outside
    the router (a page run on its own, as the app tests do) only the session remembers it."""
    st.session_state[QUERY] = dict(query)
    if getattr(_run, "placeholder", None) is not None and _run.drawn != query:
        _draw(query)


def stop() -> None:
    """The run is over: a later run on this thread starts from nothing. A session whose pages
    wrote no settings yet (it opened Home or Learn first) gets the ones it would see, defaults or
    a link's, so that its first page switch is one history entry too."""
    if QUERY not in st.session_state and settings_now is not None:
        query = settings_now()
        if query is not None:
            carry(query)
    _run.placeholder = None


def _draw(query: Mapping[str, str]) -> None:
    _run.drawn = dict(query)
    with _run.placeholder.container():
        for section, pages in _run.pages.items():
            st.caption(section)
            for page in pages:
                st.page_link(page, query_params=_run.drawn)
        st.html(HISTORY_GUARD, unsafe_allow_javascript=True)
