"""Money: ISO 4217 currencies, their minor-unit exponents, and exact parsing into minor units.

Amounts never pass through a float. HTTP bodies are parsed with `Decimal` for JSON numbers; from
there every amount is an integer count of the currency's minor unit (cents, yen, fils).
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


class MoneyError(ValueError):
    """An amount or currency that cannot be accepted; the message says which rule it broke."""


def currency_exponent(currency: str) -> int:
    """The number of minor-unit digits of an ISO 4217 currency code (USD 2, JPY 0, KWD 3)."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except KeyError:
        raise MoneyError(
            f"unknown currency {currency!r}: use an ISO 4217 code such as USD"
        ) from None


def to_minor_units(amount: Decimal | int | str, currency: str) -> int:
    """Convert a major-unit amount ("99.99" USD) to minor units (9999), exactly.

    Rule: the amount must be positive and have no more fractional digits than the currency has
    minor digits; "10.001" USD is refused rather than rounded, because rounding money silently
    charges the customer a different amount than the merchant asked for.
    """
    exponent = currency_exponent(currency)
    if isinstance(amount, float):
        raise MoneyError("amounts must not be binary floats")
    try:
        value = Decimal(amount) if not isinstance(amount, Decimal) else amount
    except (InvalidOperation, ValueError):
        raise MoneyError("amount must be a decimal number") from None
    if not value.is_finite():
        raise MoneyError("amount must be a finite number")
    if value <= 0:
        raise MoneyError("amount must be greater than zero")
    scaled = value.scaleb(exponent)
    if scaled != scaled.to_integral_value():
        raise MoneyError(
            f"amount has more than {exponent} decimal places, the most {currency} allows"
        )
    minor = int(scaled)
    if minor > MAX_AMOUNT_MINOR:
        raise MoneyError("amount is too large")
    return minor


def to_major_units(amount_minor: int, currency: str) -> Decimal:
    """Minor units back to a major-unit `Decimal` with the currency's exponent (9999 -> 99.99)."""
    exponent = currency_exponent(currency)
    return Decimal(amount_minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))
