"""Free text and codes in what merchants and producers send: what every text field refuses.

Text is stored in PostgreSQL (which refuses NUL), published on Kafka and shown to operators, so
every free-text field (description, metadata keys and values, cardholder name, refund reason)
refuses control characters (C0 U+0000-U+001F, including tab and newline, DEL, and C1
U+0080-U+009F) and unpaired surrogates, which cannot be encoded as UTF-8. Free text must not
carry a card number either (`cards.screen`). Refusals carry a specific error type, which the
HTTP layer reports as the error code.
"""

from __future__ import annotations

import re
from typing import Final

from pydantic_core import PydanticCustomError

from payment_service.cards.redact import contains_card_number

CONTROL_CHARACTERS: Final = "control_characters"
CARD_NUMBER_IN_TEXT: Final = "card_number_in_text"
# For JSON Schema and pydantic `pattern=` (surrogates cannot reach a Rust regex at all).
NO_CONTROL_PATTERN: Final = r"^[^\x00-\x1f\x7f-\x9f]*$"
_REFUSED: Final = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# Error types raised by our validators, reported as the error's `code` (the rest are pydantic's
# generic ones, reported as `validation_error`).
VALIDATION_CODES: Final = frozenset(
    {
        CONTROL_CHARACTERS,
        CARD_NUMBER_IN_TEXT,
        "invalid_amount",
        "amount_too_large",
        "amount_too_precise",
        "invalid_currency",
        "invalid_card_number",
        "invalid_security_code",
        "number_out_of_range",
    }
)


def has_control_characters(value: str) -> bool:
    """True for text with a control character or an unpaired surrogate."""
    return _REFUSED.search(value) is not None


def plain_text(value: str) -> str:
    """`value`, if it has no control character nor unpaired surrogate."""
    if has_control_characters(value):
        raise PydanticCustomError(
            CONTROL_CHARACTERS,
            "must not contain control characters (U+0000-U+001F, U+007F-U+009F) "
            "or unpaired surrogates",
        )
    return value


def free_text(value: str) -> str:
    """`value`, if it is plain text and holds no card number."""
    plain_text(value)
    # Free text is stored and published in clear: a card number must never ride along in it.
    if contains_card_number(value):
        raise PydanticCustomError(
            CARD_NUMBER_IN_TEXT,
            "must not contain a card number (card data belongs in card_data only)",
        )
    return value
