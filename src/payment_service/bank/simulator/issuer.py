"""The simulated issuer's verdict on a card: Stripe's test cards and the checks a real issuer makes.

Order of checks (the first that fails declines): Luhn (14), expiry date in the past (54),
malformed security code (N7), then the test-card table; any other valid card is approved.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Final

from payment_service.bank.wire import CardIn
from payment_service.core.masking import card_brand, luhn_valid


@dataclass(frozen=True, slots=True)
class Verdict:
    approved: bool
    response_code: str  # ISO 8583-style
    decline_code: str | None  # Stripe-style
    message: str


APPROVED: Final = Verdict(True, "00", None, "Approved")
INVALID_NUMBER: Final = Verdict(False, "14", "incorrect_number", "Invalid card number")
EXPIRED: Final = Verdict(False, "54", "expired_card", "Expired card")
# N7 is Visa's "decline for CVV2 failure"; ISO 8583 has no generic security-code code.
INCORRECT_CVC: Final = Verdict(False, "N7", "incorrect_cvc", "Decline for CVV2 failure")

TEST_CARDS: Final[dict[str, Verdict]] = {
    "4242424242424242": APPROVED,
    "4111111111111111": APPROVED,
    "4000000000000002": Verdict(False, "05", "generic_decline", "Do not honour"),
    "4000000000009995": Verdict(False, "51", "insufficient_funds", "Insufficient funds"),
    "4000000000009987": Verdict(False, "41", "lost_card", "Lost card, pick up"),
    "4000000000009979": Verdict(False, "43", "stolen_card", "Stolen card, pick up"),
    "4000000000000069": EXPIRED,
    "4000000000000127": INCORRECT_CVC,
    # 91: the issuer could not be reached. A decline the payer may retry later, not a bank error.
    "4000000000000119": Verdict(False, "91", "processing_error", "Issuer or switch inoperative"),
}


def decide(card: CardIn, today: date) -> Verdict:
    """The issuer's answer for `card` on `today`."""
    number = card.number
    if not luhn_valid(number):
        return INVALID_NUMBER
    # A card is valid through the last day of its expiry month.
    if (card.expiry_year, card.expiry_month) < (today.year, today.month):
        return EXPIRED
    if card.cvc is not None and not _cvc_well_formed(card.cvc, number):
        return INCORRECT_CVC
    return TEST_CARDS.get(number, APPROVED)


def _cvc_well_formed(cvc: str, number: str) -> bool:
    length = 4 if card_brand(number) == "amex" else 3
    return len(cvc) == length and cvc.isdigit()
