"""One HTTP exchange with the bank, and the one table that maps its failures onto the error tree.

Sent or not is decided by where it failed: while connecting not a byte of the request went out,
so "not sent": `BankNotSent` when refused (nothing listens: the bank's failure), `BankBusy` when
the pooled connection or the TCP connect timed out (our own burst can cause that, so the breaker
must not count it); after that (read or total timeout, reset, disconnect, 5xx) the bank may have
executed it, so `BankOutcomeUnknown`; a 429 is `BankBusy`, another 4xx `BankRejected`.

`overloaded(exc)` says whether a failure means "too much load" (a timeout, 429 or 503): the
concurrency limiter halves its limit on those.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from pydantic import ValidationError

from payment_service.bank.wire import ErrorResponse
from payment_service.config.settings import BankSettings
from payment_service.core.errors import (
    BankBusy,
    BankError,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
)

# The bank's own "too much load" answers.
_OVERLOAD_STATUSES = frozenset({429, 503})


class OverloadAnswer(Exception):
    """The cause attached to a 429 or 503, so `overloaded()` can tell them apart."""


class RequestBody:
    """Request bytes whose repr hides them, for tracebacks that capture local variables."""

    __slots__ = ("data",)

    def __init__(self, payload: dict[str, Any]) -> None:
        self.data = json.dumps(payload, separators=(",", ":")).encode()

    def __repr__(self) -> str:
        return f"<bank request body, {len(self.data)} bytes>"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    data: bytes
    replayed: bool  # the bank's `Idempotent-Replayed: true`


class BankTransport:
    """The shared aiohttp session: explicit timeouts, a bounded pool, no redirects."""

    def __init__(self, settings: BankSettings) -> None:
        self._base_url = settings.url.rstrip("/")
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(
                total=settings.total_timeout_seconds,
                connect=settings.connect_timeout_seconds,
                sock_connect=settings.connect_timeout_seconds,
                sock_read=settings.read_timeout_seconds,
            ),
            # At least one connection per limiter slot: a call holding a slot never queues here.
            connector=aiohttp.TCPConnector(
                limit=max(settings.max_connections, settings.concurrency_ceiling)
            ),
        )

    async def close(self) -> None:
        await self._session.close()

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        operation: str,
        reference: str,
        body: RequestBody | None = None,
        idempotency_key: str | None = None,
    ) -> Reply:
        """Send one request and read the whole answer, whatever its status."""
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        try:
            async with self._session.request(
                method,
                self._base_url + path,
                data=body.data if body is not None else None,
                headers=headers,
                allow_redirects=False,
            ) as response:
                data = await response.read()
                replayed = response.headers.get("Idempotent-Replayed") == "true"
                return Reply(response.status, data, replayed)
        except aiohttp.ConnectionTimeoutError as exc:
            raise BankBusy(
                f"no connection to the bank in time: {_describe(exc)}",
                operation=operation,
                reference=reference,
            ) from exc
        except aiohttp.ClientConnectorError as exc:
            raise BankNotSent(
                f"could not connect to the bank: {_describe(exc)}",
                operation=operation,
                reference=reference,
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BankOutcomeUnknown(
                f"request sent, no answer: {_describe(exc)}",
                operation=operation,
                reference=reference,
            ) from exc


def error_for(reply: Reply, *, operation: str, reference: str) -> BankError:
    """The error a non-200 answer means."""
    status = reply.status
    try:
        detail = ErrorResponse.model_validate_json(reply.data).error
        code, message = detail.code, detail.message
    except ValidationError:
        code, message = f"http_{status}", f"bank answered HTTP {status}"
    where: dict[str, Any] = {"operation": operation, "reference": reference}
    error: BankError
    if status >= 500 or (status == 409 and code == "idempotency_key_in_use"):
        # The bank may have executed it before failing, or is still executing the first attempt.
        error = BankOutcomeUnknown(f"bank answered {status} {code}: {message}", **where)
    elif status == 429:
        error = BankBusy(f"bank is throttling: {message}", **where)
    elif 400 <= status < 500:
        error = BankRejected(message, code=code, status=status, **where)
    else:
        error = BankOutcomeUnknown(f"unexpected HTTP {status} from the bank", **where)
    if status in _OVERLOAD_STATUSES:
        error.__cause__ = OverloadAnswer(f"HTTP {status}")
    return error


def overloaded(exc: BaseException) -> bool:
    """Whether a bank failure signals overload: a timeout (connect, read, total) or 429/503."""
    cause = exc.__cause__
    return isinstance(cause, TimeoutError | OverloadAnswer)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
