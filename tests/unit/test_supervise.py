"""The stack's supervisor: an app that exits is restarted (counted, logged); SIGTERM ends both."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from scripts.stackctl.procs import alive
from scripts.stackctl.supervise import child_pidfile, restart_record

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SUPERVISOR = ROOT / "scripts" / "stackctl" / "supervise.py"
# Exits 3 on its first run (no marker yet), then runs until signalled.
APP = """
import pathlib, sys, time
marker = pathlib.Path(sys.argv[1])
if not marker.exists():
    marker.write_text("ran")
    sys.exit(3)
while True:
    time.sleep(0.1)
"""


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_an_app_that_exits_is_restarted_and_sigterm_stops_it_for_good(tmp_path: Path) -> None:
    log = (tmp_path / "app.log").open("wb")
    argv = [sys.executable, "-c", APP, str(tmp_path / "marker")]
    supervisor = subprocess.Popen(
        [sys.executable, str(SUPERVISOR), str(tmp_path), "demo", "--", *argv],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(lambda: restart_record(tmp_path, "demo").get("count") == 1, "the restart")
        assert restart_record(tmp_path, "demo")["last_exit"] == 3
        _wait_for(lambda: child_pidfile(tmp_path, "demo").is_file(), "the new child's pid")
        child = int(child_pidfile(tmp_path, "demo").read_text())
        _wait_for(lambda: alive(child), "the new child")
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(30) == 0
        _wait_for(lambda: not alive(child), "the child to stop with its supervisor")
        assert restart_record(tmp_path, "demo")["count"] == 1  # a stop is not a restart
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        log.close()
    text = (tmp_path / "app.log").read_text()
    lines = [json.loads(line) for line in text.splitlines()]  # JSON, like every service log
    assert any("restart 1" in line["message"] for line in lines), text
