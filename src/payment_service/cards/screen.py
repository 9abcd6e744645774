"""The free-text card screen: does merchant text (description, metadata, names) hold a card number?

Stricter about what counts as a card number than the log filter (`cards.redact`), because a
false alarm here refuses a real merchant's request, while in a log line it only masks digits.
A card number is what people print, copy and paste:

* 13-19 ASCII digits in one run, or
* digit groups in a printed layout (`4242 4242 4242 4242`, `4242-4242-4242-4242`,
  `3782 822463 10005`): a first group of 4-6 digits, then groups of 3-6 (the last may be
  shorter), 13-19 digits in all, separated by spaces or single dashes,

that passes Luhn, and that stands on its own: a digit run glued to letters, digits or id
characters (`_`, `.`, `/`, `\\`, `#`, `@`, or `-` next to an alphanumeric) belongs to an
identifier and is never a card number. So UUIDs (`...c3-4567-8901-2345...`), hex ids, ULIDs,
order numbers (`ORD-2026-000123`), SKUs and decimal amounts pass, whatever their digits are.

Runs joined by dashes are one word (an identifier or a card, taken whole); runs separated by
spaces are separate words, and any printed layout among consecutive words counts
(`qty 2 4242 4242 4242 4242` is refused).
"""

from __future__ import annotations

import re
from typing import Final

from payment_service.core.masking import luhn_valid

# Digit groups joined by runs of spaces or by single dashes, taken whole (atomic: no backtracking),
# from the start of a chain only, and only where the next 13 characters could be one (fast skip).
_CHAIN: Final = re.compile(r"(?<![0-9])(?=[0-9][0-9 -]{12})(?>[0-9]+(?:(?: +|-)[0-9]+)*)")
_SPACES: Final = re.compile(r" +")
_JOINERS: Final = frozenset("-_./\\#@")
MIN_DIGITS: Final = 13
MAX_DIGITS: Final = 19


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _glued_before(text: str, start: int) -> bool:
    """True when the run starting at `start` continues an identifier to its left."""
    if start == 0:
        return False
    before = text[start - 1]
    if _is_word_char(before):
        return True
    return before in _JOINERS and start >= 2 and _is_word_char(text[start - 2])


def _glued_after(text: str, end: int) -> bool:
    """True when the run ending at `end` continues into an identifier to its right."""
    if end >= len(text):
        return False
    after = text[end]
    if _is_word_char(after):
        return True
    return after in _JOINERS and end + 1 < len(text) and _is_word_char(text[end + 1])


def _printed_layout(groups: list[str]) -> bool:
    """Digit groups in a layout cards are printed in (4-4-4-4, 4-6-5, 4-6-4, 4-4-4-4-3...)."""
    total = sum(map(len, groups))
    if not MIN_DIGITS <= total <= MAX_DIGITS:
        return False
    if len(groups) == 1:
        return True
    if not 4 <= len(groups[0]) <= 6:
        return False
    return all(3 <= len(g) <= 6 for g in groups[1:-1]) and 1 <= len(groups[-1]) <= 6


def _card_like(groups: list[str]) -> bool:
    return _printed_layout(groups) and luhn_valid("".join(groups))


def _spaced_words_hold_card(groups: list[str]) -> bool:
    """Any run of consecutive space-separated digit words in a printed layout that passes Luhn."""
    for i in range(len(groups)):
        total = 0
        for j in range(i, len(groups)):
            total += len(groups[j])
            if total > MAX_DIGITS:
                break
            if total >= MIN_DIGITS and _card_like(groups[i : j + 1]):
                return True
    return False


def _chain_holds_card(words: list[str]) -> bool:
    """Words of one chain (space-separated; each word may be dash-joined groups)."""
    plain: list[str] = []
    for word in words:
        if "-" in word:
            # A dash-joined word is taken whole: a card written with dashes, or an identifier.
            if _spaced_words_hold_card(plain) or _card_like(word.split("-")):
                return True
            plain = []
        else:
            plain.append(word)
    return _spaced_words_hold_card(plain)


def contains_card_number(text: str) -> bool:
    """True when `text` holds a card number as people write one (see the module docstring)."""
    for match in _CHAIN.finditer(text):
        chain = match[0]
        if len(chain) < MIN_DIGITS:
            continue
        words = _SPACES.split(chain)
        if _glued_before(text, match.start()):
            words = words[1:]
        if words and _glued_after(text, match.end()):
            words = words[:-1]
        if words and _chain_holds_card(words):
            return True
    return False
