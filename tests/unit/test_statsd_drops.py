"""A missing DogStatsD agent: one warning, then a count, never a line per packet."""

from __future__ import annotations

import logging

import pytest

from payment_service.ops.statsd_drops import AgentDropFilter

pytestmark = pytest.mark.unit

REFUSED = ConnectionRefusedError(111, "Connection refused")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(msg: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("datadog.dogstatsd", level, __file__, 1, msg, args, None)


def failure() -> logging.LogRecord:
    return record(
        "Error submitting packet: %s, dropping the packet and closing the socket", REFUSED
    )


def test_the_first_failure_is_one_warning_and_the_next_ones_are_counted() -> None:
    clock = Clock()
    drops = AgentDropFilter("localhost:8125", report_every_seconds=600, clock=clock)
    first = failure()
    assert drops.filter(first)
    assert first.levelno == logging.WARNING
    text = first.getMessage()
    assert "localhost:8125 is not reachable" in text
    assert "Connection refused" in text
    assert "DD_METRICS_ENABLED=false" in text
    clock.now += 599
    assert [drops.filter(failure()) for _ in range(500)] == [False] * 500
    assert drops.dropped == 501


def test_while_drops_go_on_one_line_per_interval_says_how_many() -> None:
    clock = Clock()
    drops = AgentDropFilter("agent:8125", report_every_seconds=600, clock=clock)
    drops.filter(failure())
    for _ in range(41):
        drops.filter(failure())
    clock.now += 600
    summary = failure()
    assert drops.filter(summary)
    assert summary.getMessage() == (
        "DogStatsD agent at agent:8125 still not reachable: 42 packets dropped in 600 s"
    )
    assert not drops.filter(failure())  # and quiet again until the next interval


def test_reconnect_chatter_goes_once_the_agent_is_known_missing() -> None:
    drops = AgentDropFilter("agent:8125")
    connecting = record("Connecting to %s:%s", "agent", 8125, level=logging.DEBUG)
    assert drops.filter(connecting)  # before any failure: the client's own debug line
    drops.filter(failure())
    again = record("Connecting to %s:%s", "agent", 8125, level=logging.DEBUG)
    connected = record("Connected to: %s", ("agent", 8125), level=logging.DEBUG)
    assert not drops.filter(again)
    assert not drops.filter(connected)


def test_other_records_of_the_client_pass_untouched() -> None:
    drops = AgentDropFilter("agent:8125")
    other = record("Statsd buffering is disabled", level=logging.DEBUG)
    assert drops.filter(other)
    assert other.getMessage() == "Statsd buffering is disabled"
    assert drops.dropped == 0
