"""The route table and its handlers: parse, authenticate, call the use case, map the answer."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from payment_service.core.errors import InvalidRequest
from payment_service.http.answers import Answer
from payment_service.http.errors import validation_failed
from payment_service.http.openapi import docs_page, openapi_spec
from payment_service.http.state import (
    AUTH,
    CORRELATION_ID,
    HEALTH,
    LIMITER,
    PAYMENTS,
    REFUNDS,
    SETTINGS,
)
from payment_service.ops.logcontext import bind
from payment_service.schemas.payments import PaymentRequest, RefundRequest

Model = TypeVar("Model", bound=BaseModel)
MAX_IDEMPOTENCY_KEY = 255


async def _merchant(request: web.Request) -> str:
    merchant = await request.app[AUTH].merchant_for(request.headers.get("Authorization"))
    bind(merchant_id=merchant)  # on this request's log lines from here on
    await request.app[LIMITER].check(merchant)
    return merchant


async def _body(request: web.Request, model: type[Model]) -> Model:
    raw = await request.read()
    try:
        # Decimal for every JSON number: an amount must never pass through a float.
        data: Any = json.loads(raw or b"{}", parse_float=Decimal) if raw.strip() else {}
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("request body is not valid JSON", code="malformed_json") from None
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", code="malformed_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def _idempotency_key(request: web.Request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_IDEMPOTENCY_KEY or not key.isprintable():
        raise InvalidRequest(
            f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable characters",
            code="invalid_idempotency_key",
            param="Idempotency-Key",
        )
    return key


def _respond(answer: Answer) -> web.Response:
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)


async def process_payment(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    payment = await _body(request, PaymentRequest)
    answer = await request.app[PAYMENTS].process_payment(
        payment,
        merchant_id=merchant,
        idempotency_key=_idempotency_key(request),
        correlation_id=request[CORRELATION_ID],
    )
    return _respond(answer)


async def get_payment(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    transaction_id = request.match_info["transaction_id"]
    return _respond(await request.app[PAYMENTS].get_payment(transaction_id, merchant_id=merchant))


async def refund_payment(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    refund = await _body(request, RefundRequest)
    answer = await request.app[REFUNDS].refund(
        request.match_info["transaction_id"],
        refund,
        merchant_id=merchant,
        idempotency_key=_idempotency_key(request),
        correlation_id=request[CORRELATION_ID],
    )
    return _respond(answer)


async def list_refunds(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    transaction_id = request.match_info["transaction_id"]
    return _respond(await request.app[REFUNDS].list_refunds(transaction_id, merchant_id=merchant))


async def get_refund(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    answer = await request.app[REFUNDS].get_refund(
        request.match_info["transaction_id"], request.match_info["refund_id"], merchant_id=merchant
    )
    return _respond(answer)


async def health(request: web.Request) -> web.Response:
    report = await request.app[HEALTH].report()
    return web.json_response(report, status=200 if report["status"] == "healthy" else 503)


async def service_info(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "service": "payment-service",
            "version": openapi_spec()["info"]["version"],
            "environment": settings.environment,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": "/health",
        }
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_spec())


async def docs(request: web.Request) -> web.Response:
    return web.Response(text=docs_page(), content_type="text/html")


def add_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.post("/api/v1/payments/process", process_payment),
            web.get("/api/v1/payments/{transaction_id}", get_payment),
            web.post("/api/v1/payments/{transaction_id}/refund", refund_payment),
            web.get("/api/v1/payments/{transaction_id}/refunds", list_refunds),
            web.get("/api/v1/payments/{transaction_id}/refunds/{refund_id}", get_refund),
            web.get("/health", health),
            web.get("/", service_info),
            web.get("/openapi.json", openapi),
            web.get("/docs", docs),
        ]
    )
