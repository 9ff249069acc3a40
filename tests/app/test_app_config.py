""".streamlit/config.toml keeps its security settings, Streamlit reads them as written, and an
error in a page shows visitors a generic message while the server log gets the traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".streamlit" / "config.toml"
EXPECTED = {
    "server.enableXsrfProtection": True,
    "server.enableCORS": True,
    "server.fileWatcherType": "none",
    "server.maxUploadSize": 5,
    "client.showErrorDetails": "none",
}


def run_in_repo(code: str) -> subprocess.CompletedProcess:
    """Python in a fresh process whose working folder is the repository (where Streamlit looks
    for .streamlit/config.toml)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_file_states_the_security_settings():
    config = tomllib.loads(CONFIG.read_text())
    for dotted, value in EXPECTED.items():
        section, key = dotted.split(".")
        assert config[section][key] == value, dotted


def test_streamlit_reads_them_as_written():
    """A misspelt key would be ignored by Streamlit: ask Streamlit itself."""
    done = run_in_repo(
        f"""
        import json
        from streamlit import config
        config.get_config_options(force_reparse=True)
        print(json.dumps({{k: config.get_option(k) for k in {list(EXPECTED)!r}}}))
        """
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == EXPECTED


def test_an_error_is_redacted_for_visitors_and_logged_on_the_server(tmp_path):
    script = tmp_path / "boom.py"
    script.write_text('import streamlit as st\nraise RuntimeError("secret detail 8e1f")\n')
    done = run_in_repo(
        f"""
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(script)!r}).run()
        exc = at.exception[0]
        print("SHOWN:", exc.message, "|", list(exc.stack_trace))
        """
    )
    assert done.returncode == 0, done.stderr
    logged, shown = done.stdout.split("SHOWN:", 1)
    assert "redacted" in shown and "secret detail 8e1f" not in shown and "boom.py" not in shown
    # The server's console: Python's logging on stderr, or, where the `rich` package is installed,
    # Streamlit's rich traceback on stdout (in colour).
    console = re.sub(r"\x1b\[[0-9;]*m", "", done.stderr + logged)
    assert "Traceback" in console and "secret detail 8e1f" in console
