"""Request metrics: count and duration of every request, by route and status (DogStatsD)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from payment_service.http.state import METRICS
from payment_service.ops import metric_catalog as catalog


@web.middleware
async def metrics_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    started = time.perf_counter()
    response: web.StreamResponse = await handler(request)
    resource = request.match_info.route.resource
    tags = {
        "route": resource.canonical if resource is not None else "unmatched",
        "method": request.method,
        "status": str(response.status),
    }
    metrics = request.app.get(METRICS)
    if metrics is not None:
        metrics.increment(catalog.API_REQUESTS, tags)
        metrics.timing(catalog.API_DURATION, (time.perf_counter() - started) * 1000, tags)
    return response
