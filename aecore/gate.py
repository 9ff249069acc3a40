"""A gate that lets a few page runs compute at once; the others wait their turn, briefly.

Why: Streamlit runs every session's script in its own thread of one Python process, and its web
server (websockets, /_stcore/health) is one more thread that needs the GIL. When 30 sessions
rendered the Train page at once on 2 cores, the server thread waited its turn among 30 others
and health checks took 1.1-1.7 s (4 runs at a time: still 1.1-1.2 s). With 2 at a time they took
at most 0.5 s, and the 30 sessions were served no slower, since the runs share one GIL anyway
(tests/load/test_load.py). A run that waits longer than max_wait goes ahead regardless, so one
slow page (a long sweep) never holds the others up for long.

    with page_gate():
        st.navigation(pages).run()
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from aecore import settings

DEFAULT_SLOTS = settings.DEFAULT_PAGE_SLOTS  # page runs computing at once (AECORE_PAGE_SLOTS)
MAX_WAIT = 10.0  # seconds a run waits for a slot before it goes ahead anyway


class Gate:
    """At most `slots` holders at once; a caller waits up to max_wait seconds for a slot."""

    def __init__(self, slots: int = DEFAULT_SLOTS, max_wait: float = MAX_WAIT) -> None:
        if slots < 1 or max_wait < 0:
            raise ValueError("slots must be >= 1 and max_wait >= 0")
        self.slots, self.max_wait = slots, max_wait
        self._sem = threading.BoundedSemaphore(slots)

    @contextmanager
    def __call__(self) -> Iterator[bool]:
        """Hold a slot for the block; yields False if it went ahead without one (timed out)."""
        acquired = self._sem.acquire(timeout=self.max_wait)
        try:
            yield acquired
        finally:
            if acquired:
                self._sem.release()


# One gate per process: every session's script thread passes through it.
page_gate = Gate(settings.current().page_slots)
