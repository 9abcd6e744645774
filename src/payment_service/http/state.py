"""Typed keys for what the API keeps on the application and on each request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from payment_service.app.config import Settings
    from payment_service.app.telemetry import Metrics
    from payment_service.http.gateway import Gateway
    from payment_service.http.guards import ApiKeyAuth, RateLimiter
    from payment_service.http.health import HealthCheck

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
GATEWAY: web.AppKey[Gateway] = web.AppKey("gateway")
HEALTH: web.AppKey[HealthCheck] = web.AppKey("health")
AUTH: web.AppKey[ApiKeyAuth] = web.AppKey("auth")
LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")

CORRELATION_ID = "correlation_id"
MERCHANT_ID = "merchant_id"
