"""Typed keys for what the API keeps on the application and on each request."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from payment_service.cards.crypto import CardSealer
    from payment_service.config.settings import Settings
    from payment_service.http.captures import CaptureService
    from payment_service.http.guards import ApiKeyAuth, RateLimiter
    from payment_service.http.health import HealthCheck
    from payment_service.http.lists import ListService
    from payment_service.http.payment_methods import PaymentMethodService
    from payment_service.http.payments import PaymentService
    from payment_service.http.protection import Protection
    from payment_service.http.refunds import RefundService
    from payment_service.ops.telemetry import Metrics

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
PAYMENTS: web.AppKey[PaymentService] = web.AppKey("payments")
REFUNDS: web.AppKey[RefundService] = web.AppKey("refunds")
CAPTURES: web.AppKey[CaptureService] = web.AppKey("captures")
LISTS: web.AppKey[ListService] = web.AppKey("lists")
PAYMENT_METHODS: web.AppKey[PaymentMethodService] = web.AppKey("payment_methods")
SEALER: web.AppKey[CardSealer] = web.AppKey("sealer")
HEALTH: web.AppKey[HealthCheck] = web.AppKey("health")
AUTH: web.AppKey[ApiKeyAuth] = web.AppKey("auth")
LIMITER: web.AppKey[RateLimiter] = web.AppKey("limiter")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
PROTECTION: web.AppKey[Protection] = web.AppKey("protection")

CORRELATION_ID = "correlation_id"
REQUEST_ID = "request_id"
