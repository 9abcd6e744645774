"""The API protects itself, before any expensive work, in this order (one middleware):

1. **Admission before authentication**: a token bucket per client address and one per API-key
   prefix (the key's first characters, which name it), in memory, so a flood costs neither a
   PostgreSQL query nor a Redis round trip; past it, 429 with Retry-After.
2. **The body within a deadline**: the whole body must arrive within `body_read_timeout` (and
   within `max_body_bytes`); a slow sender gets 408 `body_read_timeout` and its connection closed.
   Request lines and headers are bounded by aiohttp's own keep-alive timer (`server_limits`).
3. **A global in-flight cap** on requests being handled (a body still arriving holds no slot, so
   slow clients cannot starve the others), lowered while payments queue (`http/shedding.py`);
   past it, 503 `overloaded` at once, with Retry-After.

`/health`, `/`, `/docs` and `/openapi.json` pass step 3 (health must answer under overload).
The API-key lookups themselves have their own budget and a negative cache (`guards.ApiKeyAuth`).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import OrderedDict
from typing import Any, Final

from aiohttp import web

from payment_service.config.settings import ApiSettings
from payment_service.core.errors import BodyReadTimeout, BodyTooLarge, RateLimited
from payment_service.http.shedding import LoadShedder, SheddingPolicy
from payment_service.http.state import PROTECTION

KEY_PREFIX_CHARS: Final = 16  # "psk_" and the 12-character key id
MAX_TRACKED: Final = 100_000
UNCAPPED_PATHS: Final = frozenset({"/health", "/", "/docs", "/openapi.json"})


class TokenBuckets:
    """A token bucket per name (`rate` per second, up to `burst`); the least recent are dropped."""

    def __init__(self, rate: float, burst: int, max_tracked: int = MAX_TRACKED) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._max = max_tracked
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, name: str, now: float | None = None) -> float:
        """Take a token: 0.0 when one was there, else the seconds until one will be."""
        now = time.monotonic() if now is None else now
        tokens, last = self._buckets.pop(name, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self._rate
        self._buckets[name] = (tokens, now)
        if len(self._buckets) > self._max:
            self._buckets.popitem(last=False)  # a forgotten name starts with a full bucket
        return wait


def client_address(request: web.Request) -> str:
    """The peer's address (proxies' X-Forwarded-For is not trusted: anyone can send it)."""
    return request.remote or "unknown"


def key_prefix(authorization: str | None) -> str | None:
    """The first characters of a bearer key: they name the key without proving anything."""
    scheme, _, key = (authorization or "").partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not key:
        return None
    return key[:KEY_PREFIX_CHARS]


def refuse_rate(wait: float, what: str) -> RateLimited:
    return RateLimited(
        f"too many requests {what}; retry later", retry_after_seconds=max(1, math.ceil(wait))
    )


class Protection:
    """Steps 1-3 of the module docstring, for one API process."""

    def __init__(self, settings: ApiSettings, measured_routes: frozenset[str]) -> None:
        """`measured_routes`: the names of the routes that wait for the processor."""
        self._admission = TokenBuckets(settings.preauth_rate_per_second, settings.preauth_burst)
        self._body_timeout = settings.body_read_timeout_seconds
        self._max_body = settings.max_body_bytes
        self.measured_routes = measured_routes
        self.in_flight = LoadShedder(
            SheddingPolicy(
                ceiling=settings.max_in_flight,
                floor=settings.shed_min_in_flight,
                target_seconds=settings.shed_target_seconds,
                interval_seconds=settings.shed_interval_seconds,
            )
        )

    def admit(self, request: web.Request) -> None:
        """Step 1: 429 for a client address or a key prefix over its rate."""
        now = time.monotonic()
        wait = self._admission.take("a:" + client_address(request), now)
        if wait:
            raise refuse_rate(wait, "from this address")
        prefix = key_prefix(request.headers.get("Authorization"))
        if prefix is not None:
            wait = self._admission.take("k:" + prefix, now)
            if wait:
                raise refuse_rate(wait, "with this API key")

    async def read_body(self, request: web.Request) -> None:
        """Step 2: read (and keep) the body, or 408; 413 past the size limit, at once if the
        Content-Length says so (aiohttp itself only notices once that much has arrived)."""
        length = request.content_length
        if length is not None and length > self._max_body:
            raise BodyTooLarge(f"request body exceeds {self._max_body // 1024} KiB")
        try:
            async with asyncio.timeout(self._body_timeout):
                await request.read()  # aiohttp keeps it: the handler's read() returns it again
        except TimeoutError:
            raise BodyReadTimeout(
                f"the request body did not arrive within {self._body_timeout:g} s"
            ) from None


@web.middleware
async def protection_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    protection = request.app[PROTECTION]
    protection.admit(request)
    if request.body_exists:
        await protection.read_body(request)
    if request.path in UNCAPPED_PATHS:
        response: web.StreamResponse = await handler(request)
        return response
    measured = request.match_info.route.name in protection.measured_routes
    with protection.in_flight.slot(measured=measured):
        response = await handler(request)
        return response


def server_limits(settings: ApiSettings) -> dict[str, Any]:
    """aiohttp's connection-level limits, set explicitly (its keep-alive default is an hour)."""
    return {
        "keepalive_timeout": settings.keepalive_timeout_seconds,
        "lingering_time": settings.lingering_seconds,
        "max_line_size": settings.max_request_line_bytes,
        "max_field_size": settings.max_header_bytes,
        "max_headers": settings.max_headers,
    }
