"""`HttpBankClient`: the processor's adapter to the acquirer's HTTP API.

Rules, in order of importance:

1. Every operation carries one idempotency key, derived from our own ids (`core.ids`) and
   stored with the payment before the first attempt. Every retry reuses it, so the bank replays
   its first answer instead of charging again. A new key is a new charge: never mint one to retry.
2. A request that may have been sent and got no usable answer (read timeout, reset, 5xx) has an
   unknown outcome. It is retried with the same key; when the attempts run out, the status
   inquiry decides; if that cannot, `BankOutcomeUnknown` goes to the caller, who leaves the payment
   pending and asks again later (again with the same key).
3. We never fail a call for our own queueing: calls in flight are bounded by an adaptive limit
   (`limiter`), a call waits for a slot, and one that could not be sent (no slot, breaker open,
   bank unreachable) waits and retries for `not_sent_budget_seconds` before `BankNotSent`.
4. Nothing waits past its timeout: each attempt is bounded by the session's connect/read/total
   timeouts and by the breaker's deadline, no attempt starts after the not-sent budget, and the
   inquiry that settles an unknown outcome waits at most `total_timeout` for its slot: one
   operation takes at most `not_sent_budget + 3 * total_timeout`.

One client (one aiohttp session and connection pool) per event loop; construct it inside the loop.
The jobs are split: one attempt (`calls`), its slot and breaker (`gate`), the attempts and their
backoff (`retry`), settling an unknown outcome (`resolution`), one HTTP exchange (`transport`).
Each operation, retries and resolution included, is measured: `bank.requests` and
`bank.duration_ms` by operation and outcome.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TypeVar

from payment_service.bank.breaker import BankCircuitBreaker
from payment_service.bank.calls import inquire_once, post_operation
from payment_service.bank.gate import BankGate
from payment_service.bank.limiter import ConcurrencyLimiter, LimitHook
from payment_service.bank.resolution import resolve_unknown
from payment_service.bank.retry import retrying
from payment_service.bank.transport import BankTransport, RequestBody
from payment_service.config.settings import BankSettings
from payment_service.core.banking import BankInquiry, BankResult
from payment_service.core.errors import (
    BankError,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
)
from payment_service.core.masking import CardNumber, SecurityCode
from payment_service.ops import metric_catalog as catalog
from payment_service.ops.telemetry import Metrics

T = TypeVar("T")


class HttpBankClient:
    """Calls the acquirer over HTTP with retries, a circuit breaker, an adaptive concurrency
    limit and outcome resolution. `on_limit_change(limit)` is called with each new limit (for a
    gauge)."""

    def __init__(
        self,
        settings: BankSettings,
        *,
        breaker: BankCircuitBreaker | None = None,
        on_limit_change: LimitHook | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._settings = settings
        self._metrics = metrics
        limiter = ConcurrencyLimiter(
            min_limit=settings.min_concurrency,
            max_limit=settings.concurrency_ceiling,
            on_change=on_limit_change,
        )
        self._gate = BankGate(breaker or BankCircuitBreaker.from_settings(settings), limiter)
        self._transport = BankTransport(settings)

    @property
    def breaker(self) -> BankCircuitBreaker:
        return self._gate.breaker

    @property
    def limiter(self) -> ConcurrencyLimiter:
        return self._gate.limiter

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
        body = _card_body(
            reference, amount_minor, currency, card_number, security_code,
            expiry_month, expiry_year, holder_name,
        )  # fmt: skip
        return await self._operate("authorize", body, reference, idempotency_key)

    async def sale(
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
        """Authorize and capture `amount_minor` in one message (the acquirer's "sale")."""
        body = _card_body(
            reference, amount_minor, currency, card_number, security_code,
            expiry_month, expiry_year, holder_name,
        )  # fmt: skip
        return await self._operate("sale", body, reference, idempotency_key)

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

    async def void(
        self,
        *,
        reference: str,
        idempotency_key: str,
        authorization_id: str,
    ) -> BankResult:
        """Release an uncaptured authorization's hold (`already_captured` once captured)."""
        body = RequestBody({"reference": reference, "authorization_id": authorization_id})
        return await self._operate("void", body, reference, idempotency_key)

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
        return await self._measured(
            "inquire",
            lambda: retrying(
                self._gate,
                lambda: inquire_once(self._transport, reference),
                settings=self._settings,
                operation="inquire",
                reference=reference,
                success_resets=False,
            ),
        )

    async def _operate(
        self, operation: str, body: RequestBody, reference: str, key: str
    ) -> BankResult:
        return await self._measured(
            operation, lambda: self._operate_unmeasured(operation, body, reference, key)
        )

    async def _measured(self, operation: str, call: Callable[[], Awaitable[T]]) -> T:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await call()
            outcome = _outcome(result)
            return result
        except BankError as exc:
            outcome = next(
                (name for kind, name in _ERROR_OUTCOMES.items() if isinstance(exc, kind)),
                type(exc).__name__,
            )
            raise
        finally:
            if self._metrics is not None:
                tags = {"operation": operation, "outcome": outcome}
                self._metrics.increment(catalog.BANK_REQUESTS, tags)
                elapsed = (time.perf_counter() - started) * 1000
                self._metrics.timing(catalog.BANK_DURATION, elapsed, tags)

    async def _operate_unmeasured(
        self, operation: str, body: RequestBody, reference: str, key: str
    ) -> BankResult:
        try:
            return await retrying(
                self._gate,
                lambda: post_operation(self._transport, operation, body, reference, key),
                settings=self._settings,
                operation=operation,
                reference=reference,
            )
        except BankOutcomeUnknown as exc:
            return await resolve_unknown(
                self._gate,
                self._transport,
                operation=operation,
                reference=reference,
                key=key,
                cause=exc,
                slot_timeout=self._settings.total_timeout_seconds,
            )


def _card_body(
    reference: str,
    amount_minor: int,
    currency: str,
    card_number: CardNumber,
    security_code: SecurityCode | None,
    expiry_month: int,
    expiry_year: int,
    holder_name: str,
) -> RequestBody:
    """The body of authorize and sale; the card is revealed only into these bytes."""
    return RequestBody(
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


_ERROR_OUTCOMES: dict[type[BankError], str] = {
    BankNotSent: "not_sent",
    BankOutcomeUnknown: "outcome_unknown",
    BankRejected: "rejected",
}


def _outcome(result: object) -> str:
    if isinstance(result, BankResult):
        return "approved" if result.approved else "declined"
    return "answered"  # an inquiry
