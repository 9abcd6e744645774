"""The acquirer's operations and their amount rules, each run once per idempotency key.

Every function runs inside the ledger's write transaction (`store.LedgerStore.write`), on its
single writer thread: a rule is checked and its effect committed with nothing in between, so the
rules hold under any mix of concurrent requests.

- `authorize` places a hold (`authorizations`, status `open`).
- `sale` is authorize and capture in one message (ISO 8583 0200): one entry, captured at once.
- `capture` takes at most the held amount, once per authorization; the rest of the hold is
  released (a partial capture). There is no multi-capture.
- `void` releases a whole open hold; a voided authorization cannot be captured, and a captured
  one cannot be voided (refund it instead).
- `refund` returns money captured for a reference, all refunds together at most what was captured.

A refusal is executed and recorded too (`Rejection`): a retry under its key replays the refusal.
`accounts` keeps each reference's totals: authorized, captured, refunded and released.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from datetime import UTC, datetime
from typing import Final

from payment_service.bank.simulator.issuer import APPROVED, Verdict, decide
from payment_service.bank.simulator.ledger import Answer, Rejection, Txn
from payment_service.bank.wire import (
    AuthorizeRequest,
    CaptureRequest,
    RefundRequest,
    SaleRequest,
    VoidRequest,
)
from payment_service.core.masking import card_brand

logger = logging.getLogger(__name__)

VOIDED: Final = Verdict(True, "00", None, "Authorization voided")
# ISO 4217's "no currency", for a refused void of an authorization the bank does not know.
_NO_CURRENCY = "XXX"

_UPSERT_ACCOUNT = """
INSERT INTO accounts (reference, currency, authorized_minor, captured_minor) VALUES (?, ?, ?, ?)
ON CONFLICT (reference) DO UPDATE SET
    authorized_minor = authorized_minor + excluded.authorized_minor,
    captured_minor = captured_minor + excluded.captured_minor
"""


def authorize(txn: Txn, req: AuthorizeRequest) -> Answer:
    """Ask the issuer; an approval places a hold of `amount_minor`."""
    return _authorize(txn, "authorize", req, captured=False)


def sale(txn: Txn, req: SaleRequest) -> Answer:
    """Authorize and capture in one message: one ledger entry, the whole amount captured."""
    return _authorize(txn, "sale", req, captured=True)


def _authorize(txn: Txn, operation: str, req: AuthorizeRequest, *, captured: bool) -> Answer:
    verdict = decide(req.card, datetime.now(UTC).date())
    logger.debug(
        "%s %s: %s (card ****%s)",
        operation,
        req.reference,
        verdict.response_code,
        req.card.number[-4:],
    )
    auth_id = _ordered_id("auth") if verdict.approved else None
    answer = txn.record(
        operation,
        req.reference,
        req.amount_minor,
        req.currency,
        verdict,
        authorization_id=auth_id,
        bank_transaction_id=_new_id("sal" if captured else "btx"),
        card_brand=card_brand(req.card.number),
        card_last4=req.card.number[-4:],
    )
    if auth_id is not None:
        taken = req.amount_minor if captured else 0
        txn.run(
            "INSERT INTO authorizations (authorization_id, opened_seq, reference, amount_minor,"
            " currency, status, captured_minor) VALUES (?, ?, ?, ?, ?, ?, ?)",
            auth_id,
            txn.seq,
            req.reference,
            req.amount_minor,
            req.currency,
            "captured" if captured else "open",
            taken,
        )
        txn.run(_UPSERT_ACCOUNT, req.reference, req.currency, req.amount_minor, taken)
    return answer


def capture(txn: Txn, req: CaptureRequest) -> Answer:
    """Capture up to the held amount, once; the remainder of the hold is released."""
    where = ("capture", req.reference, req.amount_minor, req.currency)
    auth = _authorization(txn, req.authorization_id)
    refusal = _capture_refusal(auth, req)
    if refusal is not None or auth is None:
        return txn.record(*where, refusal or _NOT_FOUND, authorization_id=req.authorization_id)
    released = auth["amount_minor"] - req.amount_minor
    txn.run(
        "UPDATE authorizations SET status = 'captured', captured_minor = ?, released_minor = ?"
        " WHERE authorization_id = ?",
        req.amount_minor,
        released,
        req.authorization_id,
    )
    txn.run(
        "UPDATE accounts SET captured_minor = captured_minor + ?,"
        " released_minor = released_minor + ? WHERE reference = ?",
        req.amount_minor,
        released,
        req.reference,
    )
    return txn.record(
        *where,
        APPROVED,
        authorization_id=req.authorization_id,
        bank_transaction_id=_new_id("cap"),
    )


_NOT_FOUND: Final = Rejection(404, "authorization_not_found", "no such authorization")


def _capture_refusal(auth: sqlite3.Row | None, req: CaptureRequest) -> Rejection | None:
    if auth is None:
        return _NOT_FOUND
    if auth["reference"] != req.reference:
        return Rejection(422, "reference_mismatch", "authorization is for another reference")
    if auth["currency"] != req.currency:
        return Rejection(422, "currency_mismatch", f"authorized in {auth['currency']}")
    if auth["status"] == "captured":
        return Rejection(409, "already_captured", "authorization already captured")
    if auth["status"] == "voided":
        return Rejection(409, "authorization_voided", "authorization was voided")
    if req.amount_minor > auth["amount_minor"]:
        return Rejection(
            422,
            "amount_exceeds_authorized",
            f"capture of {req.amount_minor} exceeds the {auth['amount_minor']} authorized",
        )
    return None


def void(txn: Txn, req: VoidRequest) -> Answer:
    """Release a whole open hold. The entry's amount is the amount released."""
    auth = _authorization(txn, req.authorization_id)
    amount = auth["amount_minor"] if auth is not None else 0
    currency = auth["currency"] if auth is not None else _NO_CURRENCY
    where = ("void", req.reference, amount, currency)
    refusal = _void_refusal(auth, req)
    if refusal is not None:
        return txn.record(*where, refusal, authorization_id=req.authorization_id)
    txn.run(
        "UPDATE authorizations SET status = 'voided', released_minor = amount_minor"
        " WHERE authorization_id = ?",
        req.authorization_id,
    )
    txn.run(
        "UPDATE accounts SET released_minor = released_minor + ? WHERE reference = ?",
        amount,
        req.reference,
    )
    return txn.record(
        *where, VOIDED, authorization_id=req.authorization_id, bank_transaction_id=_new_id("void")
    )


def _void_refusal(auth: sqlite3.Row | None, req: VoidRequest) -> Rejection | None:
    if auth is None:
        return _NOT_FOUND
    if auth["reference"] != req.reference:
        return Rejection(422, "reference_mismatch", "authorization is for another reference")
    if auth["status"] == "captured":
        return Rejection(
            409, "already_captured", "a captured authorization cannot be voided: refund it"
        )
    if auth["status"] == "voided":
        return Rejection(409, "already_voided", "authorization already voided")
    return None


def refund(txn: Txn, req: RefundRequest) -> Answer:
    """Refund in the captured currency; all refunds together at most what was captured."""
    where = ("refund", req.reference, req.amount_minor, req.currency)
    account = txn.one("SELECT * FROM accounts WHERE reference = ?", req.reference)
    captured = account["captured_minor"] if account is not None else 0
    refusal: Rejection | None = None
    if account is None or captured == 0:
        refusal = Rejection(422, "payment_not_captured", "nothing captured")
    elif account["currency"] != req.currency:
        refusal = Rejection(422, "currency_mismatch", f"captured in {account['currency']}")
    elif req.amount_minor > (left := captured - account["refunded_minor"]):
        refusal = Rejection(
            422,
            "amount_exceeds_captured",
            f"refund of {req.amount_minor} exceeds the {left} left to refund",
        )
    if refusal is not None:
        return txn.record(*where, refusal, refund_reference=req.refund_reference)
    txn.run(
        "UPDATE accounts SET refunded_minor = refunded_minor + ? WHERE reference = ?",
        req.amount_minor,
        req.reference,
    )
    return txn.record(
        *where,
        APPROVED,
        bank_transaction_id=_new_id("rfd"),
        refund_reference=req.refund_reference,
    )


def _authorization(txn: Txn, authorization_id: str) -> sqlite3.Row | None:
    return txn.one("SELECT * FROM authorizations WHERE authorization_id = ?", authorization_id)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _ordered_id(prefix: str) -> str:
    """An id that sorts by creation time: new holds append to their index instead of landing
    on a random page (fewer pages written per commit)."""
    return f"{prefix}_{time.time_ns():016x}{secrets.token_hex(4)}"
