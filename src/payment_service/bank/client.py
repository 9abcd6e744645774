"""`HttpBankClient`: the processor's adapter to the acquirer's HTTP API.

Rules, in order of importance:

1. Every operation carries one idempotency key, derived from our own ids (`idempotency_key()`) and
   stored with the payment before the first attempt. Every retry reuses it, so the bank replays
   its first answer instead of charging again. A new key is a new charge: never mint one to retry.
2. A request that may have been sent and got no usable answer (read timeout, reset, 5xx) has an
   unknown outcome. It is retried with the same key; when the attempts run out, the status
   inquiry decides; if that cannot, `BankOutcomeUnknown` goes to the caller, who leaves the payment
   pending and asks again later (again with the same key).
3. Nothing waits past its timeout: each attempt is bounded by the session's connect/read/total
   timeouts and by the breaker's deadline, so one operation takes at most
   `(max_attempts + 1) * total_timeout` plus the backoff waits.

One client (one aiohttp session and connection pool) per event loop; construct it inside the loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar
from urllib.parse import quote

from pydantic import ValidationError

from payment_service.app.config import BankSettings
from payment_service.bank.breaker import BankCircuitBreaker
from payment_service.bank.errors import (
    BankCircuitOpen,
    BankError,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
)
from payment_service.bank.models import BankInquiry, BankResult
from payment_service.bank.retry import backoff_delay
from payment_service.bank.transport import BankTransport, RequestBody, error_for
from payment_service.bank.wire import OperationResponse
from payment_service.cards.masking import CardNumber, SecurityCode

logger = logging.getLogger(__name__)

T = TypeVar("T")


def idempotency_key(entity_id: str, operation: str) -> str:
    """The bank idempotency key for `operation` on our entity: `f"{entity_id}:{operation}"`.

    Use the payment's transaction id for authorize and capture (`"txn_123:authorize"`), the
    refund's id for a refund (`"rfd_456:refund"`). Deterministic, so a replayed Kafka message or a
    restarted processor derives the same key and the bank sees a retry, not a new charge.
    """
    if not entity_id or not operation:
        raise ValueError("entity_id and operation must be non-empty")
    return f"{entity_id}:{operation}"


class HttpBankClient:
    """Calls the acquirer over HTTP with retries, a circuit breaker and outcome resolution."""

    def __init__(
        self,
        settings: BankSettings,
        *,
        breaker: BankCircuitBreaker | None = None,
    ) -> None:
        self._settings = settings
        self._breaker = breaker or BankCircuitBreaker.from_settings(settings)
        self._transport = BankTransport(settings)

    @property
    def breaker(self) -> BankCircuitBreaker:
        return self._breaker

    async def __aenter__(self) -> HttpBankClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._transport.close()

    async def authorize(
        self,
        *,
        reference: str,
        idempotency_key: str,
        amount_minor: int,
        currency: str,
        card_number: CardNumber,
        security_code: SecurityCode | None,
        expiry_month: int,
        expiry_year: int,
        holder_name: str,
    ) -> BankResult:
        """Reserve `amount_minor` on the card. Approved results carry `authorization_id`."""
        body = RequestBody(
            {
                "reference": reference,
                "amount_minor": amount_minor,
                "currency": currency,
                "card": {
                    "number": card_number.reveal(),
                    "expiry_month": expiry_month,
                    "expiry_year": expiry_year,
                    "cvc": security_code.reveal() if security_code is not None else None,
                    "holder_name": holder_name,
                },
            }
        )
        return await self._operate("authorize", body, reference, idempotency_key)

    async def capture(
        self,
        *,
        reference: str,
        idempotency_key: str,
        authorization_id: str,
        amount_minor: int,
        currency: str,
    ) -> BankResult:
        """Capture up to the authorized amount, once per authorization."""
        body = RequestBody(
            {
                "reference": reference,
                "authorization_id": authorization_id,
                "amount_minor": amount_minor,
                "currency": currency,
            }
        )
        return await self._operate("capture", body, reference, idempotency_key)

    async def refund(
        self,
        *,
        reference: str,
        refund_reference: str,
        idempotency_key: str,
        amount_minor: int,
        currency: str,
    ) -> BankResult:
        """Refund part or all of what was captured for the payment `reference`."""
        body = RequestBody(
            {
                "reference": reference,
                "refund_reference": refund_reference,
                "amount_minor": amount_minor,
                "currency": currency,
            }
        )
        return await self._operate("refund", body, reference, idempotency_key)

    async def inquire(self, reference: str) -> BankInquiry:
        """What the bank executed for `reference` (retried like any call; it changes nothing)."""
        return await self._retrying(
            lambda: self._inquire_once(reference),
            operation="inquire",
            reference=reference,
            success_resets=False,
        )

    async def _operate(
        self, operation: str, body: RequestBody, reference: str, key: str
    ) -> BankResult:
        try:
            return await self._retrying(
                lambda: self._post(operation, body, reference, key),
                operation=operation,
                reference=reference,
            )
        except BankOutcomeUnknown as exc:
            return await self._resolve(operation, reference, key, exc)

    async def _retrying(
        self,
        attempt: Callable[[], Awaitable[T]],
        *,
        operation: str,
        reference: str,
        success_resets: bool = True,
    ) -> T:
        """Run `attempt` through the breaker up to max_attempts times, with backoff.

        Raises `BankRejected` at once; after the last attempt raises `BankOutcomeUnknown` if any
        attempt may have been sent (a later "not sent" does not undo an earlier maybe-sent),
        else the last `BankNotSent`. An open breaker ends the attempts: it will not admit us soon.
        """
        unknown: BankOutcomeUnknown | None = None
        last: BankError | None = None
        for number in range(self._settings.max_attempts):
            if number:
                await asyncio.sleep(self._backoff(number - 1))
            try:
                return await self._breaker.call(
                    attempt,
                    operation=operation,
                    reference=reference,
                    success_resets=success_resets,
                )
            except BankCircuitOpen as exc:
                last = exc
                break
            except BankOutcomeUnknown as exc:
                unknown = last = exc
            except BankNotSent as exc:
                last = exc
            logger.info(
                "bank %s for %s: attempt %d failed: %s", operation, reference, number + 1, last
            )
        assert last is not None
        raise unknown or last

    def _backoff(self, retry: int) -> float:
        return backoff_delay(
            retry,
            base=self._settings.backoff_base_seconds,
            cap=self._settings.backoff_cap_seconds,
        )

    async def _resolve(
        self, operation: str, reference: str, key: str, cause: BankOutcomeUnknown
    ) -> BankResult:
        """Settle an unknown outcome from the bank's own record of what it executed."""
        try:
            inquiry = await self._breaker.call(
                lambda: self._inquire_once(reference),
                operation="inquire",
                reference=reference,
                success_resets=False,
            )
        except BankError as exc:
            logger.warning(
                "bank %s for %s: outcome unknown, inquiry failed: %s", operation, reference, exc
            )
            raise BankOutcomeUnknown(
                f"{operation} outcome unknown ({cause.message}); status inquiry failed: "
                f"{exc.message}",
                operation=operation,
                reference=reference,
            ) from cause
        found = inquiry.find(key)
        if found is None:
            logger.warning(
                "bank %s for %s: outcome unknown, bank has no record yet", operation, reference
            )
            raise BankOutcomeUnknown(
                f"{operation} outcome unknown ({cause.message}); the bank reports no record of "
                "it yet (a request in flight may still commit)",
                operation=operation,
                reference=reference,
            ) from cause
        logger.info(
            "bank %s for %s: outcome resolved by inquiry: %s", operation, reference, found.outcome
        )
        if found.outcome == "rejected":
            raise BankRejected(
                found.message,
                code=found.error_code or "rejected",
                status=found.http_status,
                operation=operation,
                reference=reference,
            )
        return BankResult(
            approved=found.outcome == "approved",
            response_code=found.response_code or "",
            decline_code=found.decline_code,
            message=found.message,
            authorization_id=found.authorization_id,
            bank_transaction_id=found.bank_transaction_id,
            via="inquiry",
        )

    async def _post(
        self, operation: str, body: RequestBody, reference: str, key: str
    ) -> BankResult:
        reply = await self._transport.exchange(
            "POST",
            f"/api/v1/{operation}",
            operation=operation,
            reference=reference,
            body=body,
            idempotency_key=key,
        )
        if reply.status != 200:
            raise error_for(reply, operation=operation, reference=reference)
        try:
            answer = OperationResponse.model_validate_json(reply.data)
        except ValidationError as exc:
            raise BankOutcomeUnknown(
                "unreadable answer from the bank", operation=operation, reference=reference
            ) from exc
        return BankResult(
            approved=answer.approved,
            response_code=answer.response_code,
            decline_code=answer.decline_code,
            message=answer.message,
            authorization_id=answer.authorization_id,
            bank_transaction_id=answer.bank_transaction_id,
            via="replay" if reply.replayed else "response",
        )

    async def _inquire_once(self, reference: str) -> BankInquiry:
        path = f"/api/v1/transactions/{quote(reference, safe='')}"
        reply = await self._transport.exchange(
            "GET", path, operation="inquire", reference=reference
        )
        if reply.status == 404:
            return BankInquiry(reference=reference)
        if reply.status != 200:
            raise error_for(reply, operation="inquire", reference=reference)
        try:
            return BankInquiry.model_validate_json(reply.data)
        except ValidationError as exc:
            raise BankOutcomeUnknown(
                "unreadable inquiry answer", operation="inquire", reference=reference
            ) from exc
