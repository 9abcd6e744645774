"""Types for card data whose `str`/`repr` never reveal it.

A `CardNumber` shows only its brand and last four digits; a `SecurityCode` shows nothing. The clear
value is reached only through `.reveal()`, so every place that handles clear card data is greppable.
"""

from __future__ import annotations

from typing import Final

_BRAND_PREFIXES: Final[tuple[tuple[str, tuple[str, ...]], ...]] = (
    ("amex", ("34", "37")),
    ("visa", ("4",)),
    ("mastercard", tuple(str(p) for p in range(51, 56)) + tuple(str(p) for p in range(2221, 2721))),
    ("discover", ("6011", "65", *(str(p) for p in range(644, 650)))),
    ("diners", ("36", "38", "300", "301", "302", "303", "304", "305")),
    ("jcb", tuple(str(p) for p in range(3528, 3590))),
    ("unionpay", ("62",)),
)


def ascii_digits(text: str) -> bool:
    """True when `text` is one or more of 0-9 (`str.isdigit` also takes Arabic-Indic and others)."""
    return text.isascii() and text.isdigit()


def luhn_valid(digits: str) -> bool:
    """True when `digits` (only 0-9) passes the Luhn check."""
    if not ascii_digits(digits):
        return False
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def card_brand(digits: str) -> str:
    """The card network by IIN prefix, or "unknown"."""
    for brand, prefixes in _BRAND_PREFIXES:
        if digits.startswith(prefixes):
            return brand
    return "unknown"


class CardNumber:
    """A primary account number. Its text forms show brand and last four only."""

    __slots__ = ("_digits",)

    def __init__(self, digits: str) -> None:
        self._digits = digits

    def reveal(self) -> str:
        """The clear number: for encryption and the bank call only."""
        return self._digits

    @property
    def last4(self) -> str:
        return self._digits[-4:]

    @property
    def brand(self) -> str:
        return card_brand(self._digits)

    def __repr__(self) -> str:
        return f"CardNumber({self.brand} ****{self.last4})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CardNumber) and other._digits == self._digits

    def __hash__(self) -> int:
        return hash(("CardNumber", self._digits))


class SecurityCode:
    """A card security code (CVV/CVC). Never shown, never stored durably."""

    __slots__ = ("_digits",)

    def __init__(self, digits: str) -> None:
        self._digits = digits

    def reveal(self) -> str:
        """The clear code: for the short-lived Redis envelope and the bank call only."""
        return self._digits

    def __repr__(self) -> str:
        return "SecurityCode(***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecurityCode) and other._digits == self._digits

    def __hash__(self) -> int:
        return hash(("SecurityCode", self._digits))
