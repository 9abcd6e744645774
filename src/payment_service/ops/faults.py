"""Crash points for fault-injection tests: signal this process at a named step of a flow.

Active only when ENVIRONMENT=test and PROCESSOR_CRASH_AT names the point; the tests use it to
kill the processor between the bank's answer and the database write, or between the database
write and the offset commit, or the audit relay between producing events and saving its
cursor, and then prove nothing was lost or charged twice, and to interrupt
the rewrap job (SIGINT, as an operator's Ctrl-C) right after it re-sealed a card.
"""

from __future__ import annotations

import os
import signal

CRASH_POINTS = frozenset(
    {
        "after_authorize",
        "after_capture_recorded",
        "after_refund_bank",
        "rewrap_after_swap",
        "after_capture_bank",
        "after_void_bank",
        "relay_after_produce",
    }
)


def crash_point(name: str, sig: signal.Signals = signal.SIGKILL) -> None:
    assert name in CRASH_POINTS, name
    if os.environ.get("ENVIRONMENT") == "test" and os.environ.get("PROCESSOR_CRASH_AT") == name:
        os.kill(os.getpid(), sig)
