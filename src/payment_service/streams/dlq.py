"""What a dead letter keeps: the message without card data, and its headers (DESIGN.md §3).

A producer may have sent a card number in the clear (in any field, or in bytes that are not
JSON at all); the DLQ keeps a topic's retention, so nothing of that may reach it. `redacted()`:

1. parses the value as JSON when it can, replaces every sensitive field (card number, security
   code, ...) and every sealed envelope (`number_envelope`: ciphertext of a card number has no
   business outliving its command) with `[REDACTED]`;
2. masks every Luhn-valid 13-19 digit run left anywhere in the text (`cards.redact`), which also
   covers values nested deeper than the field walk goes and bytes that are not JSON;
3. does the same to every header value; the reason headers are added after, unchanged.

The DLQ copy is a record for operators, not a replay source: its bytes no longer verify against
the producer's signature. Replays re-produce the original command from `payments.requests`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from payment_service.cards.redact import REDACTED, redact_text, redact_value

_ENVELOPE_KEYS: Final = frozenset({"number_envelope", "envelope", "cvv_envelope"})
_MAX_DEPTH: Final = 32


def _drop_envelopes(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return REDACTED  # nesting no command has: keep nothing of it
    if isinstance(value, dict):
        return {
            k: REDACTED if k in _ENVELOPE_KEYS else _drop_envelopes(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_drop_envelopes(v, depth + 1) for v in value]
    return value


def redacted_value(raw: bytes | None) -> bytes:
    """The message value with card data and sealed envelopes removed (steps 1-2)."""
    if not raw:
        return b""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return redact_text(raw.decode("utf-8", "replace")).encode()
    cleaned = redact_value(_drop_envelopes(parsed))
    return redact_text(json.dumps(cleaned, ensure_ascii=False, default=str)).encode()


def redacted(raw: bytes | None, headers: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """The value and headers a dead letter may keep."""
    return redacted_value(raw), {k: redact_text(v) for k, v in headers.items()}
