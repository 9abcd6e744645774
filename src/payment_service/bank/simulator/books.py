"""The simulated acquirer's books: the ledger, authorizations, amount rules, idempotent execution.

Every change to the books is synchronous, with no await between a check and its commit, so the
amount rules hold under any interleaving of requests. The one await, the processing delay, is taken
inside the idempotency key's lock: a concurrent duplicate waits there and then replays the first
answer instead of executing again.

Request bodies are compared through a keyed HMAC (key random per process), so a stored
fingerprint cannot be brute-forced back to a card.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from payment_service.bank.simulator.issuer import APPROVED, Verdict
from payment_service.bank.simulator.ledger import (
    KEY_REUSE,
    Answer,
    KeyedLocks,
    LedgerEntry,
    error_answer,
    json_bytes,
)
from payment_service.bank.wire import AuthorizeRequest, CaptureRequest, RefundRequest
from payment_service.core.banking import BankInquiry, BankOperation
from payment_service.core.masking import card_brand


@dataclass(slots=True)
class _Stored:
    fingerprint: bytes
    answer: Answer
    entry: LedgerEntry


@dataclass(slots=True)
class _Authorization:
    reference: str
    amount_minor: int
    currency: str
    captured: bool = False


class Books:
    """The acquirer's state. `reset()` empties it (tests use unique references anyway)."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)
        self._locks = KeyedLocks()
        self.reset()

    def reset(self) -> None:
        self._entries: list[LedgerEntry] = []
        self._by_reference: defaultdict[str, list[LedgerEntry]] = defaultdict(list)
        self._answers: dict[str, _Stored] = {}
        self._auths: dict[str, _Authorization] = {}
        self._captured: defaultdict[str, int] = defaultdict(int)
        self._refunded: defaultdict[str, int] = defaultdict(int)
        self._currency: dict[str, str] = {}

    def fingerprint(self, operation: str, body: Any) -> bytes:
        """A keyed digest of the request, insensitive to key order and whitespace."""
        canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"))
        return hmac.new(self._secret, canonical.encode(), hashlib.sha256).digest()

    async def execute(
        self,
        key: str,
        fingerprint: bytes,
        commit: Callable[[], tuple[Answer, LedgerEntry]],
        processing: Callable[[], Awaitable[None]],
    ) -> tuple[Answer, bool]:
        """Execute `commit` once per idempotency key; returns the answer and whether it is a replay.

        Same key and same request: the first answer again, no new ledger entry. Same key, other
        request: 422 `idempotency_key_reuse`, nothing executed.
        """
        async with self._locks.hold(key):
            stored = self._answers.get(key)
            if stored is not None:
                if not hmac.compare_digest(stored.fingerprint, fingerprint):
                    return KEY_REUSE, False
                stored.entry.replays += 1
                return stored.answer, True
            await processing()
            answer, entry = commit()
            self._answers[key] = _Stored(fingerprint, answer, entry)
            return answer, False

    def authorize(
        self, key: str, req: AuthorizeRequest, verdict: Verdict
    ) -> tuple[Answer, LedgerEntry]:
        auth_id = _new_id("auth") if verdict.approved else None
        entry = self._record(
            key,
            "authorize",
            req.reference,
            req.amount_minor,
            req.currency,
            verdict,
            authorization_id=auth_id,
            bank_transaction_id=_new_id("btx"),
            card_brand=card_brand(req.card.number),
            card_last4=req.card.number[-4:],
        )
        if auth_id is not None:
            self._auths[auth_id] = _Authorization(req.reference, req.amount_minor, req.currency)
        return self._result(entry), entry

    def capture(self, key: str, req: CaptureRequest) -> tuple[Answer, LedgerEntry]:
        """Capture once per authorization, at most the authorized amount, in its currency."""
        auth = self._auths.get(req.authorization_id)
        where = (key, "capture", req.reference, req.amount_minor, req.currency)
        if auth is None:
            return self._reject(*where, 404, "authorization_not_found", "no such authorization")
        if auth.reference != req.reference:
            return self._reject(
                *where, 422, "reference_mismatch", "authorization is for another reference"
            )
        if auth.currency != req.currency:
            return self._reject(*where, 422, "currency_mismatch", f"authorized in {auth.currency}")
        if auth.captured:
            return self._reject(*where, 409, "already_captured", "authorization already captured")
        if req.amount_minor > auth.amount_minor:
            return self._reject(
                *where,
                422,
                "amount_exceeds_authorized",
                f"capture of {req.amount_minor} exceeds the {auth.amount_minor} authorized",
            )
        auth.captured = True
        self._captured[req.reference] += req.amount_minor
        self._currency[req.reference] = req.currency
        entry = self._record(
            *where,
            APPROVED,
            authorization_id=req.authorization_id,
            bank_transaction_id=_new_id("cap"),
        )
        return self._result(entry), entry

    def refund(self, key: str, req: RefundRequest) -> tuple[Answer, LedgerEntry]:
        """Refund in the captured currency; all refunds together at most what was captured."""
        where = (key, "refund", req.reference, req.amount_minor, req.currency)
        extra: dict[str, Any] = {"refund_reference": req.refund_reference}
        captured = self._captured[req.reference]
        left = captured - self._refunded[req.reference]
        if captured == 0:
            return self._reject(*where, 422, "payment_not_captured", "nothing captured", **extra)
        if self._currency[req.reference] != req.currency:
            return self._reject(
                *where,
                422,
                "currency_mismatch",
                f"captured in {self._currency[req.reference]}",
                **extra,
            )
        if req.amount_minor > left:
            return self._reject(
                *where,
                422,
                "amount_exceeds_captured",
                f"refund of {req.amount_minor} exceeds the {left} left to refund",
                **extra,
            )
        self._refunded[req.reference] += req.amount_minor
        entry = self._record(*where, APPROVED, bank_transaction_id=_new_id("rfd"), **extra)
        return self._result(entry), entry

    def inquiry(self, reference: str) -> BankInquiry | None:
        """What was executed for `reference`, or None when nothing was."""
        entries = self._by_reference.get(reference)
        if not entries:
            return None
        authorized = sum(
            e.amount_minor
            for e in entries
            if e.operation == "authorize" and e.outcome == "approved"
        )
        return BankInquiry(
            reference=reference,
            authorized_minor=authorized,
            captured_minor=self._captured[reference],
            refunded_minor=self._refunded[reference],
            operations=tuple(BankOperation.model_validate(e.to_json()) for e in entries),
        )

    def entries(
        self, reference: str | None = None, operation: str | None = None
    ) -> list[LedgerEntry]:
        found = self._by_reference.get(reference, []) if reference is not None else self._entries
        return [e for e in found if operation is None or e.operation == operation]

    def _record(
        self,
        key: str,
        operation: str,
        reference: str,
        amount_minor: int,
        currency: str,
        verdict: Verdict | None,
        **fields: Any,
    ) -> LedgerEntry:
        if verdict is not None:
            fields.update(
                outcome="approved" if verdict.approved else "declined",
                http_status=200,
                response_code=verdict.response_code,
                decline_code=verdict.decline_code,
                message=verdict.message,
            )
        entry = LedgerEntry(
            seq=len(self._entries) + 1,
            created_at=datetime.now(UTC),
            idempotency_key=key,
            reference=reference,
            operation=operation,
            amount_minor=amount_minor,
            currency=currency,
            **fields,
        )
        self._entries.append(entry)
        self._by_reference[reference].append(entry)
        return entry

    def _reject(
        self,
        key: str,
        operation: str,
        reference: str,
        amount_minor: int,
        currency: str,
        status: int,
        code: str,
        message: str,
        **fields: Any,
    ) -> tuple[Answer, LedgerEntry]:
        """A refusal is executed and recorded too: a retry with its key replays the refusal."""
        entry = self._record(
            key,
            operation,
            reference,
            amount_minor,
            currency,
            None,
            outcome="rejected",
            http_status=status,
            error_code=code,
            message=message,
            **fields,
        )
        return error_answer(status, code, message), entry

    @staticmethod
    def _result(entry: LedgerEntry) -> Answer:
        body: dict[str, Any] = {
            "reference": entry.reference,
            "operation": entry.operation,
            "approved": entry.outcome == "approved",
            "status": entry.outcome,
            "response_code": entry.response_code,
            "decline_code": entry.decline_code,
            "message": entry.message,
            "authorization_id": entry.authorization_id,
            "bank_transaction_id": entry.bank_transaction_id,
            "refund_reference": entry.refund_reference,
            "amount_minor": entry.amount_minor,
            "currency": entry.currency,
        }
        if entry.card_last4 is not None:
            body["card"] = {"brand": entry.card_brand, "last4": entry.card_last4}
        return Answer(200, json_bytes(body))


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"
