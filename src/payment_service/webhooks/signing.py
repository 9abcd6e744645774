"""The `Payment-Signature` header: Stripe's scheme, so Stripe's verifiers accept it.

    Payment-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

The key is the whole secret string (`whsec_...`) as UTF-8 bytes, as Stripe's libraries use it.
`verify` is what a merchant runs (docs/webhooks.md shows it standalone); the tests use it too.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Final

HEADER: Final = "Payment-Signature"
DEFAULT_TOLERANCE_SECONDS: Final = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def header_value(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The header for `body` signed now (or at `timestamp`)."""
    t = int(time.time()) if timestamp is None else timestamp
    return f"t={t},v1={signature(secret, t, body)}"


class SignatureError(ValueError):
    """The header is missing, malformed, too old, or no v1 signature matches."""


def verify(
    header: str | None,
    body: bytes,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a received header against the raw body; returns its timestamp or raises."""
    if not header:
        raise SignatureError("no Payment-Signature header")
    timestamps, candidates = [], []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            timestamps.append(value)
        elif key == "v1":
            candidates.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or not candidates:
        raise SignatureError("malformed Payment-Signature header")
    t = int(timestamps[0])
    if abs((time.time() if now is None else now) - t) > tolerance:
        raise SignatureError("timestamp outside the tolerance")
    expected = signature(secret, t, body)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise SignatureError("no signature matches")
    return t
