"""The access log, and the log context of each request: the outermost of our middlewares.

Every line logged while a request is handled carries its `correlation_id` (the client's
`X-Correlation-ID`, or a fresh one), the `transaction_id` once known (from the path, or bound by
the use case that derives it) and the `merchant_id` once authenticated. When the answer is
ready, one access line says what was asked and answered, in the same JSON as every other line
(logger `payment_service.access`), under Datadog's standard attribute names: `http.method`,
`http.url` (the path: never the query string), `http.route` (the template), `http.status_code`,
`duration` (nanoseconds), `network.bytes_written`, `network.client.ip`, `http.useragent`.
The card-data filter applies to it like to every line.

Every answer carries `Request-Id` (`req_` and 24 hex digits, new for each request, also the
access line's `request_id`) and `X-Correlation-ID`, stamped as the response is prepared, so
answers made outside our handlers (the router's 404 and 405, static assets) have them too. Only
the 400s aiohttp writes itself for a malformed request line or headers, before any application
code runs, lack them.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from aiohttp import web

from payment_service.http.errors import HEADER_CORRELATION, correlation_id_of
from payment_service.http.state import CORRELATION_ID, REQUEST_ID
from payment_service.ops.logcontext import current, log_context

access_log = logging.getLogger("payment_service.access")
HEADER_REQUEST_ID = "Request-Id"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(12)}"


async def stamp_ids(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: the request's ids on every answer, whoever made it."""
    if REQUEST_ID not in request:
        request[REQUEST_ID] = new_request_id()
    response.headers[HEADER_REQUEST_ID] = request[REQUEST_ID]
    response.headers.setdefault(HEADER_CORRELATION, correlation_id_of(request))


@web.middleware
async def access_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.perf_counter()
    correlation_id = correlation_id_of(request)
    request[CORRELATION_ID] = correlation_id
    request[REQUEST_ID] = new_request_id()
    with log_context(
        correlation_id=correlation_id,
        request_id=request[REQUEST_ID],
        transaction_id=request.match_info.get("transaction_id"),
        refund_id=request.match_info.get("refund_id"),
    ):
        status = 500
        response: web.StreamResponse | None = None
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # redirects and the like, raised past our errors
            status = exc.status
            raise
        finally:
            _log_access(request, response, status, started)


def _log_access(
    request: web.Request, response: web.StreamResponse | None, status: int, started: float
) -> None:
    resource = request.match_info.route.resource
    fields = {
        "http.method": request.method,
        "http.url": request.path,
        "http.route": resource.canonical if resource is not None else None,
        "http.status_code": status,
        "duration": int((time.perf_counter() - started) * 1e9),
        "network.bytes_written": _length(response),
        "network.client.ip": request.remote,
        "http.useragent": request.headers.get("User-Agent"),
        # Bound while the handler ran (authentication, the use case); the context ends below.
        **{k: v for k, v in current().items() if k in ("merchant_id", "transaction_id")},
    }
    access_log.info("%s %s %s", request.method, request.path, status, extra=fields)


def _length(response: web.StreamResponse | None) -> int | None:
    if response is None:
        return None
    if isinstance(response, web.Response) and response.body is not None:
        body = response.body
        return len(body) if isinstance(body, bytes | bytearray) else response.content_length
    return response.content_length
