"""Money: ISO 4217 currencies, their minor-unit exponents, and exact parsing into minor units.

Amounts never pass through a float. HTTP bodies are parsed with `Decimal` for JSON numbers; from
there every amount is an integer count of the currency's minor unit (cents, yen, fils).

Every amount is bounded before any arithmetic (`check_amount_bounds`): at most
`MAX_AMOUNT_DIGITS` significant digits and a decimal exponent within `MAX_AMOUNT_MAGNITUDE`.
`1e300000` is eight characters, but turning it into an integer takes seconds of CPU, and
`Decimal.scaleb` on it overflows; the bounds make both impossible. The conversion itself works on
the digits (no `Decimal` context), so it never rounds: the default context keeps 28 digits, and
`scaleb` under it would turn 1.0000000000000000000000000001 USD into exactly 100 cents.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final


# Active ISO 4217 codes (funds, metals and testing codes left out: they are not card currencies).
def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


_ZERO_DECIMAL: Final = _codes(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF "
)
_THREE_DECIMAL: Final = _codes("BHD IQD JOD KWD LYD OMR TND ")
_FOUR_DECIMAL: Final = _codes("CLF UYW ")
_TWO_DECIMAL: Final = _codes(
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHF CNY COP CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS "
    "GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR "
    "LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD "
    "PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN "
    "SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD UYU UZS VED VES WST XCD XCG YER ZAR "
    "ZMW ZWG "
)

CURRENCY_EXPONENTS: Final[dict[str, int]] = {
    **dict.fromkeys(_TWO_DECIMAL, 2),
    **dict.fromkeys(_ZERO_DECIMAL, 0),
    **dict.fromkeys(_THREE_DECIMAL, 3),
    **dict.fromkeys(_FOUR_DECIMAL, 4),
}

# The largest amount we accept in minor units: fits a PostgreSQL BIGINT with room for sums.
MAX_AMOUNT_MINOR: Final = 10**15
# Written forms beyond these are refused before any arithmetic (see the module docstring).
MAX_AMOUNT_DIGITS: Final = 30
MAX_AMOUNT_MAGNITUDE: Final = 20


class MoneyError(ValueError):
    """An amount or currency that cannot be accepted; the message says which rule it broke.

    `code` is the machine-readable reason: `invalid_amount`, `amount_too_large`,
    `amount_too_precise` or `invalid_currency`.
    """

    def __init__(self, message: str, code: str = "invalid_amount") -> None:
        super().__init__(message)
        self.code = code


def currency_exponent(currency: str) -> int:
    """The number of minor-unit digits of an ISO 4217 currency code (USD 2, JPY 0, KWD 3)."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        shown = repr(currency) if len(currency) <= 8 and currency.isprintable() else "given"
        raise MoneyError(
            f"unknown currency {shown}: use an ISO 4217 code such as USD", "invalid_currency"
        ) from None


def check_amount_bounds(value: Decimal) -> Decimal:
    """`value` itself, if its written form is small enough to do arithmetic on (else MoneyError).

    Costs time proportional to the digits written, never to the exponent.
    """
    if not value.is_finite():
        raise MoneyError("amount must be a finite number")
    if value.is_zero():
        return value
    magnitude = value.adjusted()  # the power of ten of the leading digit
    if magnitude > MAX_AMOUNT_MAGNITUDE:
        raise MoneyError("amount is too large", "amount_too_large")
    if magnitude < -MAX_AMOUNT_MAGNITUDE:
        raise MoneyError("amount has more decimal places than any currency", "amount_too_precise")
    if len(_significant(value)[0]) > MAX_AMOUNT_DIGITS:
        raise MoneyError(
            f"amount has more than {MAX_AMOUNT_DIGITS} significant digits", "amount_too_precise"
        )
    return value


def _significant(value: Decimal) -> tuple[str, int]:
    """The digits without trailing zeros, and the power of ten of the last one ("10.50" -> 105, -1).

    Only for finite, non-zero values.
    """
    _sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    stripped = text.rstrip("0")
    return stripped, exponent + len(text) - len(stripped)


def to_minor_units(amount: Decimal | int | str, currency: str) -> int:
    """Convert a major-unit amount ("99.99" USD) to minor units (9999), exactly.

    Rule: the amount must be positive and have no more fractional digits than the currency has
    minor digits; "10.001" USD is refused rather than rounded, because rounding money silently
    charges the customer a different amount than the merchant asked for.
    """
    exponent = currency_exponent(currency)
    if isinstance(amount, float):
        raise MoneyError("amounts must not be binary floats")
    if isinstance(amount, str) and len(amount) > 2 * MAX_AMOUNT_DIGITS:
        raise MoneyError(f"amount is longer than {2 * MAX_AMOUNT_DIGITS} characters")
    try:
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except (InvalidOperation, ValueError):
        raise MoneyError("amount must be a decimal number") from None
    check_amount_bounds(value)
    if value <= 0:
        raise MoneyError("amount must be greater than zero")
    if value.adjusted() + exponent > len(str(MAX_AMOUNT_MINOR)):
        raise MoneyError("amount is too large", "amount_too_large")
    digits, last_power = _significant(value)
    # Small: at most MAX_AMOUNT_DIGITS digits, times at most ~16 powers of ten.
    power: int = last_power + exponent
    if power < 0:
        raise MoneyError(
            f"amount has more than {exponent} decimal places, the most {currency} allows",
            "amount_too_precise",
        )
    minor: int = int(digits) * pow(10, power)
    if minor > MAX_AMOUNT_MINOR:
        raise MoneyError("amount is too large", "amount_too_large")
    return minor


def to_major_units(amount_minor: int, currency: str) -> Decimal:
    """Minor units back to a major-unit `Decimal` with the currency's exponent (9999 -> 99.99)."""
    exponent = currency_exponent(currency)
    return Decimal(amount_minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))
