"""Keep one of the service's processes running: restart it when it exits, with backoff.

`start_apps` launches each app (banksim, processor, api) under this supervisor, as docker
compose's `restart: unless-stopped` would:

    python3 scripts/stackctl/supervise.py <state folder> <name> -- <app command...>

The supervisor's pid is `pids/<name>.pid` (`stop` signals it: it passes the signal on to the app,
waits for it and exits without restarting); the app's own pid is `pids/<name>.child.pid` (what a
fault test kills). A restart waits 1 s, doubling to 30 s while the app keeps failing, and from
1 s again once it ran a minute. Every exit and restart is a JSON line in the app's log, and
`restarts/<name>.json` keeps the count and the last exit (`make status` shows them). Standard
library only, like the rest of the package.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
# An app that ran this long had recovered: its next failure starts the backoff afresh.
HEALTHY_RUN = 60.0


def restarts_file(state: Path, name: str) -> Path:
    return state / "restarts" / f"{name}.json"


def child_pidfile(state: Path, name: str) -> Path:
    return state / "pids" / f"{name}.child.pid"


def restart_record(state: Path, name: str) -> dict[str, Any]:
    """The restart count and last exit of `name` ({} before its first restart)."""
    try:
        record: dict[str, Any] = json.loads(restarts_file(state, name).read_text())
    except (OSError, ValueError):
        return {}
    return record


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _line(name: str, level: str, message: str) -> None:
    """One JSON line on stdout (the app's log), like every line of the service's logs."""
    entry = {
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "level": level,
        "process": "stack",
        "logger": "supervise",
        "service": name,
        "message": message,
    }
    print(json.dumps(entry), flush=True)


class Supervisor:
    def __init__(self, state: Path, name: str, argv: list[str]) -> None:
        self.state, self.name, self.argv = state, name, argv
        self.stopping = threading.Event()
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stopping.set()
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signum)

    def run(self) -> int:
        delay = FIRST_DELAY
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL)
            _write(child_pidfile(self.state, self.name), f"{self.child.pid}\n")
            status = self.child.wait()
            child_pidfile(self.state, self.name).unlink(missing_ok=True)
            if self.stopping.is_set():
                return status if status >= 0 else 0
            if time.monotonic() - started >= HEALTHY_RUN:
                delay = FIRST_DELAY
            self.restarts += 1
            record = {
                "count": self.restarts,
                "last_exit": status,
                "last_exit_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "next_delay_seconds": delay,
            }
            _write(restarts_file(self.state, self.name), json.dumps(record) + "\n")
            _line(
                self.name,
                "warning",
                f"{self.name} exited with status {status}; restart {self.restarts} in {delay:.0f}s",
            )
            if self.stopping.wait(delay):
                return 0
            delay = min(delay * 2, MAX_DELAY)


def main(argv: list[str]) -> int:
    if len(argv) < 4 or argv[2] != "--":
        print("usage: supervise <state folder> <name> -- <command...>", file=sys.stderr)
        return 2
    supervisor = Supervisor(Path(argv[0]), argv[1], argv[3:])
    signal.signal(signal.SIGTERM, supervisor.on_signal)
    signal.signal(signal.SIGINT, supervisor.on_signal)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(restarts_file(supervisor.state, supervisor.name))  # a fresh start: count anew
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
