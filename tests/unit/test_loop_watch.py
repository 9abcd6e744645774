"""A held event loop is noticed from outside, timed, and named by the code that held it."""

from __future__ import annotations

import logging
import time

import pytest

from payment_service.ops.loop_watch import LoopWatch
from payment_service.streams.sink import SideLoop

LOGGER = "payment_service.ops.loop_watch"


async def _hold_the_loop(seconds: float) -> None:
    time.sleep(seconds)  # noqa: ASYNC251 (the blocking call the watch must catch)


def _holds(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOGGER]


def test_a_held_loop_is_logged_with_how_long_and_the_code_holding_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    side = SideLoop("test-io")
    watch = LoopWatch(side.loop, "test-io", held_ms=50.0, period_s=0.01)
    try:
        with caplog.at_level(logging.INFO, LOGGER):
            watch.install()
            side.run(_hold_the_loop(0.3), timeout=10)
            deadline = time.monotonic() + 10
            while not _holds(caplog) and time.monotonic() < deadline:
                side.run(_hold_the_loop(0), timeout=10)  # beats resume: the hold is reported
        (record,) = _holds(caplog)
    finally:
        watch.remove()
        side.stop()
    assert record.__dict__["loop"] == "test-io"
    # The beat could not run during the 300 ms sleep: it was held at least that less one period.
    assert record.__dict__["held_ms"] >= 290 - 10
    assert record.__dict__["samples"] >= 1
    assert "_hold_the_loop" in record.__dict__["stacks"][0]


def test_the_watch_stops_its_thread_and_beat_when_removed() -> None:
    side = SideLoop("test-io")
    watch = LoopWatch(side.loop, "test-io", period_s=0.01).install()
    side.run(_hold_the_loop(0), timeout=10)
    watch.remove()
    side.stop()
    assert not watch._watcher.is_alive()
