"""The access log, and the log context of each request: the outermost of our middlewares.

Every line logged while a request is handled carries its `correlation_id` (the client's
`X-Correlation-ID`, or a fresh one), the `transaction_id` once known (from the path, or bound by
the use case that derives it) and the `merchant_id` once authenticated. When the answer is
ready, one access line says what was asked and answered, in the same JSON as every other line
(logger `payment_service.access`), under Datadog's standard attribute names: `http.method`,
`http.url` (the path: never the query string), `http.route` (the template), `http.status_code`,
`duration` (nanoseconds), `network.bytes_written`, `network.client.ip`, `http.useragent`.
The card-data filter applies to it like to every line.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from aiohttp import web

from payment_service.http.errors import correlation_id_of
from payment_service.http.state import CORRELATION_ID
from payment_service.ops.logcontext import current, log_context

access_log = logging.getLogger("payment_service.access")


@web.middleware
async def access_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.perf_counter()
    correlation_id = correlation_id_of(request)
    request[CORRELATION_ID] = correlation_id
    with log_context(
        correlation_id=correlation_id,
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
