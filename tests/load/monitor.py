"""Watch a server from outside: poll its health endpoint and its resident memory.

Run as its own process (`python tests/load/monitor.py URL PID`), so the figures do not depend on
the test process, whose interpreter is busy being 30 websocket clients. Prints one line per poll,
`<monotonic seconds> <health seconds or -1 for a failure> <resident bytes of PID and children>`,
until it is terminated or stdin closes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import urllib.request
from pathlib import Path

INTERVAL = 0.2  # seconds between polls
TIMEOUT = 10.0  # a health check slower than this counts as failed


def tree_rss(pid: int) -> int:
    """Resident bytes of pid and all its descendants (VmRSS from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


def health(url: str) -> float:
    """Seconds for /_stcore/health to answer "ok"; -1 if it did not."""
    t0 = time.perf_counter()
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=TIMEOUT) as r:
            ok = r.read().decode().strip() == "ok"
    except OSError:
        return -1.0
    return time.perf_counter() - t0 if ok else -1.0


def main(url: str, pid: int) -> None:
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.is_set():
        stamp = time.monotonic()
        seconds = health(url)
        print(f"{stamp:.3f} {seconds:.4f} {tree_rss(pid)}", flush=True)
        stop.wait(INTERVAL)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
