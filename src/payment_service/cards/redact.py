"""A logging filter that scrubs card data from records: defence in depth behind the masked types.

`CardDataFilter` rewrites, in place, before any handler formats the record:

* card numbers: any run of 13-19 digits, optionally split by single spaces or dashes, that passes
  Luhn becomes `[REDACTED ****1234]` (last four only, as DESIGN.md §5 allows);
* sensitive fields: the value of any key named cvv/cvc/security_code/card_number (any case, `_`,
  `-` or nothing between words) becomes `[REDACTED]`, in mapping arguments, in `extra=` attributes
  and in `key=value` / `"key": "value"` text;
* the message (with its arguments), `extra=` attributes, the exception text and the stack text.

A record is changed only when something was found; then its message is formatted once and its
arguments are dropped. Attach the filter to handlers (logger filters do not see propagated records).
Some false positives (e.g. a 13-digit epoch-millisecond timestamp that happens to pass Luhn) are
the accepted price. Digit runs longer than 19 with no separator are not searched inside.

Merchant input is screened by a different, stricter rule (`cards.screen.contains_card_number`,
re-exported here): it never takes digits glued to an identifier (a UUID's `c3-4567-8901-2345`)
for a card number, because a false alarm there refuses a payment. This filter does mask such
runs: in a log line, masking an identifier's digits costs nothing.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Final

from payment_service.cards.screen import contains_card_number
from payment_service.core.masking import luhn_valid

__all__ = [
    "REDACTED",
    "CardDataFilter",
    "contains_card_number",
    "is_sensitive_key",
    "redact_text",
    "redact_value",
]

REDACTED: Final = "[REDACTED]"
_SENSITIVE_KEYS: Final = frozenset(
    {"cvv", "cvv2", "cvc", "cvc2", "securitycode", "cardsecuritycode", "cardnumber", "pan"}
)
_KEY_NAMES: Final = r"cvv2?|cvc2?|(?:card[_-]?)?security[_-]?code|card[_-]?number|pan"
_KEY_VALUE = re.compile(
    rf"""(?P<key>(?<![A-Za-z0-9])(?:{_KEY_NAMES})(?![A-Za-z0-9])['"]?\s*[:=]\s*)"""
    r"""(?P<value>"[^"]*"|'[^']*'|[^\s,;&)}\]]+)""",
    re.IGNORECASE,
)
_DIGIT_RUN = re.compile(r"(?<![0-9])[0-9]+(?:[ -][0-9]+)*(?![0-9])")
_DIGIT_GROUP = re.compile(r"[0-9]+")
# 13 digits with at most single spaces or dashes between: any text that can hold a card number
# holds this. Most log text (ids, durations, UUIDs) does not, and then skips the costly search.
_CANDIDATE = re.compile(r"[0-9](?:[ -]?[0-9]){12}")
_MAX_DEPTH: Final = 6
# Attributes every LogRecord has; anything else came from `extra=`.
_STANDARD_ATTRS: Final = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
}

# Trace ids injected by ddtrace/OpenTelemetry are long numbers that may pass Luhn; keep them.
_TRACE_ATTR_PREFIXES: Final = ("dd.", "otel")


def is_sensitive_key(key: object) -> bool:
    """True for field names that hold a card number or a security code."""
    return isinstance(key, str) and _sensitive_name(key)


@functools.lru_cache(maxsize=4096)
def _sensitive_name(key: str) -> bool:
    # Field names repeat on every record (extra= keys, JSON keys): normalise each once.
    return re.sub(r"[^a-z0-9]", "", key.lower()) in _SENSITIVE_KEYS


def _redact_run(run: str) -> str:
    """Mask every Luhn-valid 13-19 digit span of whole digit groups in one run of digits."""
    groups = [(m.start(), m.end()) for m in _DIGIT_GROUP.finditer(run)]
    pieces: list[str] = []
    cursor = i = 0
    while i < len(groups):
        best = None
        digits = ""
        for j in range(i, len(groups)):
            digits += run[groups[j][0] : groups[j][1]]
            if len(digits) > 19:
                break
            if len(digits) >= 13 and luhn_valid(digits):
                best = (j, digits[-4:])  # keep going: prefer the longest span
        if best is None:
            i += 1
            continue
        j, last4 = best
        pieces += [run[cursor : groups[i][0]], f"[REDACTED ****{last4}]"]
        cursor, i = groups[j][1], j + 1
    return "".join(pieces) + run[cursor:]


def redact_text(text: str) -> str:
    """`text` with card numbers masked and sensitive `key=value` values redacted."""
    text = _KEY_VALUE.sub(lambda m: m["key"] + REDACTED, text)
    if _CANDIDATE.search(text) is None:
        return text
    return _DIGIT_RUN.sub(lambda m: _redact_run(m[0]), text)


def redact_value(value: object, depth: int = 0) -> object:
    """`value` with card data removed from the strings, mappings and sequences in it.

    Returns `value` itself when there was nothing to remove.
    """
    if isinstance(value, str):
        cleaned = redact_text(value)
        return value if cleaned == value else cleaned
    if depth >= _MAX_DEPTH or isinstance(value, bool | float | None):
        return value
    if isinstance(value, int) and -(10**12) < value < 10**12:
        return value  # fewer than 13 digits: no card number (counts, sizes, durations)
    if isinstance(value, Mapping):
        items = {
            k: REDACTED if is_sensitive_key(k) else redact_value(v, depth + 1)
            for k, v in value.items()
        }
        same = all(items[k] is v for k, v in value.items())
        return value if same else items
    if isinstance(value, list | tuple):
        elements = [redact_value(v, depth + 1) for v in value]
        if all(n is o for n, o in zip(elements, value, strict=True)):
            return value
        return tuple(elements) if isinstance(value, tuple) else elements
    text = str(value)
    redacted = redact_text(text)
    return value if redacted == text else redacted


class CardDataFilter(logging.Filter):
    """Redacts card data from every record it sees; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        self._scrub_message(record)
        for name, value in list(vars(record).items()):
            if name in _STANDARD_ATTRS or name.startswith(_TRACE_ATTR_PREFIXES):
                continue
            cleaned = REDACTED if is_sensitive_key(name) else redact_value(value)
            if cleaned is not value:
                setattr(record, name, cleaned)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_text(record.exc_text)
        if record.stack_info:
            record.stack_info = redact_text(record.stack_info)
        return True

    @staticmethod
    def _scrub_message(record: logging.LogRecord) -> None:
        """Format the message with redacted arguments; keep the record as is if nothing changed."""
        args = record.args
        try:
            original = record.getMessage()
        except (TypeError, ValueError, KeyError):
            # Logging would print these arguments raw in its "Logging error" report: drop them.
            record.msg, record.args = redact_text(str(record.msg)) + " [arguments dropped]", None
            return
        if isinstance(args, Mapping | tuple):
            record.args = redact_value(args)  # type: ignore[assignment]
        try:
            cleaned = redact_text(record.getMessage())
        except (TypeError, ValueError):  # a masked number no longer fits its %d
            cleaned = redact_text(original)
        if cleaned != original:
            record.msg, record.args = cleaned, None
        else:
            record.args = args
