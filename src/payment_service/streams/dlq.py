"""What a dead letter keeps: the message without card data, and its headers (DESIGN.md §3).

A producer may have sent a card number in the clear (in any field, or in bytes that are not
JSON at all); the DLQ keeps a topic's retention, so nothing of that may reach it. `redacted()`:

1. parses the value as JSON when it can, replaces every sensitive field (card number, security
   code, ...) and every sealed envelope (`number_envelope`: ciphertext of a card number has no
   business outliving its command) with `[REDACTED]`;
2. masks every Luhn-valid 13-19 digit run left anywhere in the text (`cards.redact`), which also
   covers values nested deeper than the field walk goes and bytes that are not JSON;
3. masks, more widely than the log filter does, digits spread by anything but letters (dots,
   slashes, tabs, several spaces, bytes that were not UTF-8: `4242.4242.4242.4242`) when they
   hold a Luhn-valid 13-19 digit span: in every string and key of the JSON, or in the whole text;
4. does the same to the message key and to every header name and value; the reason headers are
   added after, unchanged.

The DLQ copy is a record for operators, not a replay source: its bytes no longer verify against
the producer's signature. Replays re-produce the original command from `payments.requests`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from payment_service.cards.redact import REDACTED, redact_text, redact_value
from payment_service.core.masking import luhn_valid

_ENVELOPE_KEYS: Final = frozenset({"number_envelope", "envelope", "cvv_envelope"})
_MAX_DEPTH: Final = 32
# 13 or more digits, each at most 3 characters that are neither letters nor digits from the next.
_SPREAD_DIGITS = re.compile(r"[0-9](?:[^A-Za-z0-9]{0,3}[0-9]){12,}")
# The Luhn search costs about 7 checks per digit; past this many digits in one message (digit
# soup, or a flood meant to stall the processor) every spread run is masked unsearched.
_SEARCH_BUDGET_DIGITS: Final = 4096


def _holds_card_number(digits: str) -> bool:
    return any(
        luhn_valid(digits[start : start + size])
        for size in range(13, 20)
        for start in range(len(digits) - size + 1)
    )


class _Masker:
    """Masks spread card numbers in the texts of one message, within one search budget."""

    def __init__(self) -> None:
        self.budget = _SEARCH_BUDGET_DIGITS

    def text(self, text: str) -> str:
        return _SPREAD_DIGITS.sub(self._mask, redact_text(text))

    def _mask(self, match: re.Match[str]) -> str:
        digits = "".join(ch for ch in match[0] if "0" <= ch <= "9")
        self.budget -= len(digits)
        if self.budget < 0 or _holds_card_number(digits):
            return REDACTED
        return match[0]

    def strings(self, value: Any, depth: int = 0) -> Any:
        """Every string and key in a parsed JSON value, masked."""
        if depth > _MAX_DEPTH:
            return REDACTED
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k): self.strings(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list):
            return [self.strings(v, depth + 1) for v in value]
        return value


def redacted_text(text: str) -> str:
    """`text` without card numbers, however their digits are spread (steps 2-3)."""
    return _Masker().text(text)


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
        return redacted_text(raw.decode("utf-8", "replace")).encode()
    cleaned = _Masker().strings(redact_value(_drop_envelopes(parsed)))
    return redact_text(json.dumps(cleaned, ensure_ascii=False, default=str)).encode()


def redacted(raw: bytes | None, headers: Mapping[str, str]) -> tuple[bytes, dict[str, str]]:
    """The value and headers a dead letter may keep."""
    return redacted_value(raw), {redacted_text(k): redacted_text(v) for k, v in headers.items()}


def redacted_key(key: str | None) -> str | None:
    """The message key a dead letter may keep (a producer may have keyed it by a card number)."""
    return None if key is None else redacted_text(key)
