"""A missing DogStatsD agent, reported once and then counted, never line by line.

The `datadog` client logs a warning for every datagram the kernel refuses ("Error submitting
packet: [Errno 111] Connection refused"), which without a local agent was 83-89 % of all our log
lines. `AgentDropFilter` sits on the client's logger: the first such record becomes one warning
that says what is happening and what to do; later ones are counted and swallowed, and at most
once per `report_every_seconds`, while drops go on, one line reports how many were dropped since.
The client's debug lines about reconnecting after each failure go too, once the agent is known to
be missing (at DEBUG they were two more lines per dropped packet).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

STATSD_LOGGER: Final = "datadog.dogstatsd"
REPORT_EVERY_SECONDS: Final = 600.0
_DROP_PREFIXES: Final = ("Error submitting packet", "Connection error submitting packet")
_RECONNECT_PREFIXES: Final = ("Connecting to", "Connected to")


class AgentDropFilter(logging.Filter):
    """Turns the client's per-packet send failures into one warning and a periodic count."""

    def __init__(
        self,
        agent: str,
        *,
        report_every_seconds: float = REPORT_EVERY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._agent = agent
        self._every = report_every_seconds
        self._clock = clock
        self._lock = threading.Lock()  # the client flushes from its own thread too
        self.dropped = 0  # every failed send since start
        self._since_report = 0
        self._reported_at: float | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        if record.msg.startswith(_RECONNECT_PREFIXES):
            return self._reported_at is None
        if not record.msg.startswith(_DROP_PREFIXES):
            return True
        with self._lock:
            self.dropped += 1
            self._since_report += 1
            now = self._clock()
            if self._reported_at is None:
                message = (
                    "DogStatsD agent at %s is not reachable (%s): metrics are dropped until it "
                    "is; further failures are counted, reported every %d s (set "
                    "DD_METRICS_ENABLED=false to stop sending)"
                )
                args: tuple[object, ...] = (
                    self._agent,
                    _reason(record),
                    int(self._every),
                )
            elif now - self._reported_at >= self._every:
                message = "DogStatsD agent at %s still not reachable: %d packets dropped in %d s"
                args = (self._agent, self._since_report, int(now - self._reported_at))
            else:
                return False
            self._reported_at = now
            self._since_report = 0
        record.msg, record.args = message, args
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.dogstatsd_dropped_total = self.dropped
        return True


def _reason(record: logging.LogRecord) -> str:
    args = record.args if isinstance(record.args, tuple) else ()
    return str(args[0]) if args else "send failed"
