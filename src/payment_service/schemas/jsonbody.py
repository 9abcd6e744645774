"""Bounded JSON for request bodies: numbers, nesting and keys are limited while parsing.

`loads` reads strict UTF-8 JSON into Python values with `Decimal` for every number that has a
fraction or an exponent (an amount must never pass through a float), and refuses, before any
validation runs:

* nesting deeper than `MAX_DEPTH` (`json_too_deep`): our bodies are three levels deep;
* a key given twice in one object (`duplicate_key`): which one wins differs between parsers;
* `NaN`, `Infinity` and invalid UTF-8 (`malformed_json`).

A number literal longer than `MAX_NUMBER_CHARS`, or whose decimal exponent is beyond
`MAX_NUMBER_MAGNITUDE`, is not converted at all: it becomes an `OutOfRange` value that no field
accepts, so the field it was sent for is named in a 422. That keeps `1e300000` (eight bytes that
cost seconds as an integer) and 5,000-digit integers (beyond Python's int-string limit) away from
any arithmetic.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Final

from payment_service.core.errors import InvalidRequest

MAX_DEPTH: Final = 16
MAX_NUMBER_CHARS: Final = 64
MAX_NUMBER_MAGNITUDE: Final = 40


class OutOfRange:
    """A JSON number too long or too far from 1 to be any value a field accepts.

    `too_large` tells a huge number (`1e300000`, 5,000 nines) from a too precise one
    (`1e-300000`, 5,000 decimal places), so a field can say which.
    """

    __slots__ = ("too_large",)

    def __init__(self, *, too_large: bool) -> None:
        self.too_large = too_large

    def __repr__(self) -> str:
        return f"OutOfRange(too_large={self.too_large})"


def _bounded(literal: str) -> Decimal | OutOfRange:
    # Decimal() of a literal is linear in its length (no context, no rounding); only the
    # integer conversion and exponent arithmetic are dangerous, and they come after this check.
    value = Decimal(literal)
    magnitude = 0 if value.is_zero() else value.adjusted()
    if magnitude > MAX_NUMBER_MAGNITUDE:
        return OutOfRange(too_large=True)
    if magnitude < -MAX_NUMBER_MAGNITUDE or len(literal) > MAX_NUMBER_CHARS:
        return OutOfRange(too_large=False)
    return value


def _float(literal: str) -> Decimal | OutOfRange:
    return _bounded(literal)


def _int(literal: str) -> int | OutOfRange:
    value = _bounded(literal)
    return value if isinstance(value, OutOfRange) else int(literal)


def _constant(name: str) -> Any:
    raise InvalidRequest(
        f"request body is not valid JSON ({name} is not a number)", code="malformed_json"
    )


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidRequest("request body has a key twice in one object", code="duplicate_key")
    return result


def _depth_within(value: Any, limit: int) -> bool:
    """True when `value` nests no deeper than `limit` (walked iteratively: no recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def _too_deep() -> InvalidRequest:
    return InvalidRequest(
        f"request body nests deeper than {MAX_DEPTH} levels", code="json_too_deep"
    )


def loads(raw: bytes) -> Any:
    """The JSON value of `raw` (bounded as the module docstring says), or InvalidRequest (400)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("request body is not valid UTF-8", code="malformed_json") from None
    try:
        value = json.loads(
            text,
            parse_float=_float,
            parse_int=_int,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except RecursionError:
        # The C decoder refuses nesting past the interpreter's recursion limit, cleanly.
        raise _too_deep() from None
    except ValueError:
        raise InvalidRequest("request body is not valid JSON", code="malformed_json") from None
    if not _depth_within(value, MAX_DEPTH):
        raise _too_deep()
    return value
