"""One error shape for every answer: `{"error": {type, code, message, param?}, "correlation_id"}`.

A 503 also names the transaction (`error.transaction_id`) when the request had got that far, so
the client can GET it or retry it with the same Idempotency-Key; every 503 has a Retry-After.

The middleware maps the service's error tree (core/errors.py) to statuses by class, once, and turns
anything unexpected into a 500 that reveals nothing. It also stamps the correlation id.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from aiohttp import web
from pydantic import ValidationError
from redis.exceptions import RedisError

from payment_service.core.errors import (
    BodyReadTimeout,
    BodyTooLarge,
    MethodNotAllowed,
    NotAccepted,
    NotFound,
    Overloaded,
    PaymentServiceError,
    RateLimited,
    StorageError,
    ValidationFailed,
    VaultUnavailable,
)
from payment_service.http.state import CORRELATION_ID
from payment_service.ops.logcontext import current
from payment_service.schemas.text import VALIDATION_CODES

log = logging.getLogger(__name__)

# Redis or PostgreSQL down or failing (any storage error, a socket error, a timed-out wait):
# a 503 that lets the client retry, never a 500. The outcome may be unknown (a command produced
# before the failure), so the answer says so and names the transaction when there is one.
DEPENDENCY_OUTAGES: tuple[type[Exception], ...] = (
    VaultUnavailable,
    StorageError,
    RedisError,
    OSError,
    TimeoutError,
)
OUTCOME_UNKNOWN = (
    "the outcome of this request is unknown (a service it needs did not answer in time); "
    "retry with the same Idempotency-Key to learn it: the retry never charges twice"
)

HEADER_CORRELATION = "X-Correlation-ID"
# A dependency outage (Kafka late to acknowledge, PostgreSQL or Redis failing): retry soon.
OUTAGE_RETRY_AFTER_SECONDS = 1


def error_response(exc: PaymentServiceError, correlation_id: str) -> web.Response:
    body: dict[str, Any] = {"type": exc.type, "code": exc.code, "message": exc.message}
    if exc.param is not None:
        body["param"] = exc.param
    if isinstance(exc, ValidationFailed):
        body["errors"] = exc.errors
    if isinstance(exc, NotAccepted):
        transaction_id = current().get("transaction_id")
        if transaction_id is not None:
            body["transaction_id"] = transaction_id
    headers = {HEADER_CORRELATION: correlation_id}
    if isinstance(exc, RateLimited | Overloaded):
        headers["Retry-After"] = str(exc.retry_after_seconds)
    elif exc.status == 503:  # every 503 says when to retry, as /openapi.json documents
        headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
    if isinstance(exc, MethodNotAllowed):
        headers["Allow"] = ", ".join(exc.allowed)
    response = web.json_response(
        {"error": body, "correlation_id": correlation_id}, status=exc.status, headers=headers
    )
    if isinstance(exc, BodyReadTimeout | BodyTooLarge):
        response.force_close()  # the rest of such a body is not worth reading
    return response


def validation_failed(exc: ValidationError, prefix: tuple[str, ...] = ()) -> ValidationFailed:
    """Field-by-field detail, without the offending values (they may be card data).

    The code is the first error's type when it is one of our specific ones (`control_characters`,
    `amount_too_large`...), else `validation_error`.
    """
    errors = [
        {
            "param": ".".join(str(p) for p in (*prefix, *e["loc"])) or None,
            "message": e["msg"].removeprefix("Value error, "),
            "type": e["type"],
        }
        for e in exc.errors(include_input=False, include_url=False, include_context=False)
    ]
    first = errors[0] if errors else {"param": None, "message": "invalid request"}
    message = str(first["message"])
    if first["param"]:
        message = f"{first['param']}: {message}"
    code = first.get("type")
    specific = code if code in VALIDATION_CODES else None
    return ValidationFailed(message, errors=errors, param=first["param"], code=specific)


@web.middleware
async def error_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    correlation_id = correlation_id_of(request)
    request[CORRELATION_ID] = correlation_id
    try:
        response: web.StreamResponse = await handler(request)
    except PaymentServiceError as exc:
        return error_response(exc, correlation_id)
    except DEPENDENCY_OUTAGES as exc:
        log.warning("dependency unavailable: %s", type(exc).__name__)
        return error_response(NotAccepted(OUTCOME_UNKNOWN), correlation_id)
    except web.HTTPRequestEntityTooLarge:
        return error_response(BodyTooLarge("request body exceeds 64 KiB"), correlation_id)
    except web.HTTPNotFound:
        # The router's own 404: no route matches. The path is not repeated (it may hold anything).
        unknown = NotFound("no such resource: see /openapi.json for the routes")
        return error_response(unknown, correlation_id)
    except web.HTTPMethodNotAllowed as exc:
        allowed = tuple(sorted(exc.allowed_methods))
        refused = MethodNotAllowed(
            f"{exc.method} is not allowed here; allowed: {', '.join(allowed)}", allowed=allowed
        )
        return error_response(refused, correlation_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        generic = PaymentServiceError(exc.reason or "request failed")
        response = error_response(generic, correlation_id)
        response.set_status(exc.status)
        return response
    except Exception:
        log.exception("unhandled error (correlation id %s)", correlation_id)
        internal = PaymentServiceError("internal error; quote the correlation id to support")
        return error_response(internal, correlation_id)
    response.headers[HEADER_CORRELATION] = correlation_id
    return response


def correlation_id_of(request: web.Request) -> str:
    """The id already chosen for this request (access middleware), the client's, or a new one."""
    known: str | None = request.get(CORRELATION_ID)
    if known:
        return known
    given = request.headers.get(HEADER_CORRELATION, "")
    if 0 < len(given) <= 128 and given.isprintable():
        return given
    return str(uuid.uuid4())
