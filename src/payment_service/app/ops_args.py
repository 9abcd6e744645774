"""Argument types and shared options of `payment-service ops` (durations, offsets or times)."""

from __future__ import annotations

import argparse
import datetime as dt
import re

from payment_service.operators.messages import Bound

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(text: str) -> dt.timedelta:
    """`90s`, `15m`, `2h`, `1d`."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration such as 90s, 15m, 2h or 1d")
    return dt.timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def bound(text: str) -> Bound:
    """An offset (digits) or an ISO 8601 time (UTC when it names no zone)."""
    if text.isdigit():
        return Bound(offset=int(text))
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: an offset or an ISO 8601 time") from None
    return Bound(time=when if when.tzinfo else when.replace(tzinfo=dt.UTC))


def when(text: str) -> Bound:
    """An ISO 8601 time only (UTC when it names no zone)."""
    found = bound(text)
    if found.time is None:
        raise argparse.ArgumentTypeError(f"{text!r}: an ISO 8601 time")
    return found


def selectors(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--from", dest="start", type=bound, help="offset or ISO time")
    parser.add_argument("--to", dest="end", type=bound, help="offset or ISO time (inclusive)")
    parser.add_argument("--partition", type=int, action="append", help="repeatable")
    parser.add_argument("--transaction", help="a transaction id (the message key)")
    parser.add_argument("--merchant", help="a merchant id")
    parser.add_argument("--type", help="payment.process/v1 or payment.refund/v1")
    parser.add_argument("--producer", help="the producer-id header")
    parser.add_argument("--json", action="store_true")
