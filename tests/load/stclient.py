"""Just enough of a browser's side of Streamlit's websocket protocol to drive a page headlessly:
open a page with a query string, click a button, keep fragments polling (run_every) as the
browser does, and read what each full script run showed.

Thirty of these cost a few MB and little CPU, where thirty Chromium tabs would need more than a
2-core machine has; the server cannot tell the difference (the same BackMsg/ForwardMsg protos).
Written against Streamlit 1.67 (Starlette server, /_stcore/stream).

    async with Session(url, "train", "dataset=digits&epochs=1") as s:
        view = await s.open()
        await s.click("train")
        view = await s.until(lambda v: "Test results" in v.headings, timeout=120)
"""

from __future__ import annotations

import asyncio
import os
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

from streamlit.proto.Alert_pb2 import Alert
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Common_pb2 import UploadedFileInfo
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.asyncio.client import connect

FULL_RUN = ForwardMsg.FINISHED_SUCCESSFULLY
ALERTS = {
    Alert.ERROR: "error",
    Alert.WARNING: "warning",
    Alert.INFO: "info",
    Alert.SUCCESS: "success",
}


@dataclass
class View:
    """What one complete (non-fragment) script run put on the page."""

    headings: list[str] = field(default_factory=list)
    alerts: list[tuple[str, str]] = field(default_factory=list)  # (kind, body)
    texts: list[str] = field(default_factory=list)  # markdown and captions
    buttons: dict[str, str] = field(default_factory=dict)  # user key -> widget id
    uploaders: dict[str, str] = field(default_factory=dict)  # user key -> widget id
    exceptions: list[str] = field(default_factory=list)
    charts: int = 0

    def alert(self, kind: str) -> list[str]:
        return [body for k, body in self.alerts if k == kind]


class Session:
    """One browser session on one page. Use as an async context manager."""

    def __init__(self, base_url: str, page: str, query: str, cookie: str | None = None) -> None:
        self.url = base_url.replace("http", "ws", 1) + "/_stcore/stream"
        # A browser brings the XSRF cookie Streamlit set when it loaded the page; the app tells
        # visitors apart by its token. One new browser per Session unless `cookie` is given.
        self.cookie = cookie or xsrf_cookie()
        self.page, self.query = page, query
        self.page_hash = ""
        self.running = False  # a script run (full or fragment) is under way
        self.runs = 0  # complete full runs seen
        self.view = View()  # the last complete full run
        self._current = View()
        self._timers: dict[str, asyncio.Task] = {}  # fragment id -> its auto-rerun loop
        self._registered: set[str] = set()
        self._ws = None
        self.session_id = ""  # the server's id of this session (upload URLs name it)
        self._file_urls: dict = {}  # request id -> FileURLsResponse

    async def __aenter__(self) -> Session:
        # max_size=None: a results page with Plotly figures is one message of a few hundred kB.
        self._ws = await connect(
            self.url,
            subprotocols=["streamlit"],
            max_size=None,
            open_timeout=60,
            additional_headers={"Cookie": f"_streamlit_xsrf={self.cookie}"},
        )
        return self

    async def __aexit__(self, *exc) -> None:
        for task in self._timers.values():
            task.cancel()
        await self._ws.close()

    # -- sending -----------------------------------------------------------------------------

    async def _rerun(self, widgets: list[WidgetState] = (), fragment_id: str = "") -> None:
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = self.query
        state.page_script_hash = self.page_hash
        state.page_name = "" if self.page_hash else self.page
        if fragment_id:
            state.fragment_id = fragment_id
            state.is_auto_rerun = True
        state.widget_states.widgets.extend(widgets)
        self.running = True
        await self._ws.send(msg.SerializeToString())

    async def open(self, timeout: float = 120.0) -> View:
        """Load the page (the first script run) and return what it showed."""
        await self._rerun()
        return await self.until(lambda v: True, timeout)

    async def click(self, key: str) -> None:
        """Click the button with user key `key` on the current view."""
        widget = WidgetState(id=self.view.buttons[key], trigger_value=True)
        runs = self.runs
        await self._rerun([widget])
        await self.until(lambda v: self.runs > runs, timeout=120.0)

    async def upload(self, key: str, name: str, data: bytes, timeout: float = 60.0) -> View:
        """Upload one file into the file_uploader with user key `key`, as a browser does: ask
        for an upload URL, PUT the file there with the XSRF header, then rerun with the
        widget's new state. Returns the view of the run that follows."""
        request_id = os.urandom(8).hex()
        msg = BackMsg()
        msg.file_urls_request.request_id = request_id
        msg.file_urls_request.file_names.append(name)
        msg.file_urls_request.session_id = self.session_id
        await self._ws.send(msg.SerializeToString())
        deadline = time.monotonic() + timeout
        while request_id not in self._file_urls:
            raw = await asyncio.wait_for(self._ws.recv(), max(0.1, deadline - time.monotonic()))
            forward = ForwardMsg()
            forward.ParseFromString(raw)
            self._handle(forward)
        urls = self._file_urls.pop(request_id).file_urls[0]
        base = self.url.replace("ws", "http", 1).rsplit("/_stcore/", 1)[0]
        await asyncio.to_thread(self._put, base + urls.upload_url, name, data)
        info = UploadedFileInfo(file_id=urls.file_id, name=name, size=len(data), file_urls=urls)
        widget = WidgetState(id=self.view.uploaders[key])
        widget.file_uploader_state_value.uploaded_file_info.append(info)
        runs = self.runs
        await self._rerun([widget])
        return await self.until(lambda v: self.runs > runs, timeout)

    def _put(self, url: str, name: str, data: bytes) -> None:
        boundary = os.urandom(12).hex()
        body = (
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "X-Xsrftoken": self.cookie,
            "Cookie": f"_streamlit_xsrf={self.cookie}",
        }
        request = urllib.request.Request(url, body, headers, method="PUT")
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()

    # -- receiving ---------------------------------------------------------------------------

    async def until(self, done: Callable[[View], bool], timeout: float) -> View:
        """The view of the last full run once done(view) holds: at once if it already does (and
        nothing is running), else after the next full run that makes it so. TimeoutError if
        none does within `timeout` seconds."""
        if self.runs and not self.running and done(self.view):
            return self.view
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.page}: not there after {timeout:.0f} s: {self.view}")
            try:
                raw = await asyncio.wait_for(self._ws.recv(), left)
            except TimeoutError:
                continue
            msg = ForwardMsg()
            msg.ParseFromString(raw)
            if self._handle(msg) and done(self.view):
                return self.view

    def _handle(self, msg: ForwardMsg) -> bool:
        """Update state from one message; True when a full script run has just finished."""
        kind = msg.WhichOneof("type")
        if kind == "file_urls_response":
            self._file_urls[msg.file_urls_response.response_id] = msg.file_urls_response
        elif kind == "new_session":
            self.session_id = msg.new_session.initialize.session_id or self.session_id
            self.running = True
            self._current, self._registered = View(), set()
        elif kind == "navigation" and msg.navigation.page_script_hash:
            self.page_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":
            self.query = msg.page_info_changed.query_string  # the app rewrote the URL
        elif kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
            self._element(msg.delta.new_element)
        elif kind == "auto_rerun":
            self._schedule(msg.auto_rerun.fragment_id, msg.auto_rerun.interval)
        elif kind == "script_finished":
            # A run that ended early for a rerun (st.rerun) is followed at once by the next one:
            # a fragment rerun sent in between would interrupt that full run.
            self.running = msg.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN
            if msg.script_finished == FULL_RUN:
                self.view, self.runs = self._current, self.runs + 1
                for fid in set(self._timers) - self._registered:  # fragments no longer polling
                    self._timers.pop(fid).cancel()
                return True
        return False

    def _element(self, el) -> None:
        view, kind = self._current, el.WhichOneof("type")
        if kind == "heading":
            view.headings.append(el.heading.body)
        elif kind == "alert":
            view.alerts.append((ALERTS.get(el.alert.format, "other"), el.alert.body))
        elif kind == "markdown":
            view.texts.append(el.markdown.body)
        elif kind == "button":
            view.buttons[el.button.id.rsplit("-", 1)[-1]] = el.button.id
        elif kind == "file_uploader":
            view.uploaders[el.file_uploader.id.rsplit("-", 1)[-1]] = el.file_uploader.id
        elif kind == "exception":
            view.exceptions.append(f"{el.exception.type}: {el.exception.message}")
        elif kind == "plotly_chart":
            view.charts += 1

    def _schedule(self, fragment_id: str, interval: float) -> None:
        """Rerun the fragment every `interval` seconds, as the browser does for run_every."""
        self._registered.add(fragment_id)
        if fragment_id in self._timers:
            return

        async def poll() -> None:
            while True:
                await asyncio.sleep(interval)
                if not self.running:  # the browser, too, waits for the run in progress
                    await self._rerun(fragment_id=fragment_id)

        self._timers[fragment_id] = asyncio.get_running_loop().create_task(poll())


def xsrf_cookie() -> str:
    """A new browser's `_streamlit_xsrf` cookie in Tornado's format: "2|mask|masked token|time"."""
    mask, token = os.urandom(4), os.urandom(16)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(token))
    return f"2|{mask.hex()}|{masked.hex()}|{int(time.time())}"
