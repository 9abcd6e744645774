"""The API's handlers: parse, authenticate, call the use case, map the answer (a dozen lines each).

http/routes.py declares them, with what /openapi.json says of each.
"""

from __future__ import annotations

import re
from typing import Any, Final, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from payment_service.core.errors import InvalidRequest, NotFound
from payment_service.http.answers import Answer
from payment_service.http.errors import validation_failed
from payment_service.http.protection import client_address
from payment_service.http.state import (
    AUTH,
    CAPTURES,
    CORRELATION_ID,
    HEALTH,
    LIMITER,
    LISTS,
    PAYMENT_METHODS,
    PAYMENTS,
    REFUNDS,
    SEALER,
)
from payment_service.ops.logcontext import bind
from payment_service.schemas import jsonbody
from payment_service.schemas.captures import CancelBody, CaptureBody
from payment_service.schemas.payment_methods import PaymentMethodRequest
from payment_service.schemas.payments import PaymentRequest, RefundRequest

Model = TypeVar("Model", bound=BaseModel)
MAX_IDEMPOTENCY_KEY = 255
# Our ids (transaction, refund) are this shape; anything else cannot name one of them.
_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


async def _merchant(request: web.Request, *, rate_limit: bool = True) -> str:
    merchant = await request.app[AUTH].merchant_for(
        request.headers.get("Authorization"), client_address(request)
    )
    bind(merchant_id=merchant)  # on this request's log lines from here on
    if rate_limit:
        await request.app[LIMITER].check(merchant)
    return merchant


def _path_id(request: web.Request, name: str) -> str:
    """A path id, or 404 for one that cannot exist (never passed on to storage or hashing)."""
    value = request.match_info[name]
    if _ID.fullmatch(value) is None:
        what = "refund" if name == "refund_id" else "payment"
        raise NotFound(f"no such {what}", param=name)
    return value


async def _body(request: web.Request, model: type[Model]) -> Model:
    raw = await request.read()  # read already, within its size and time limits (protection)
    # Decimal for every JSON number (never a float), every number and the nesting bounded.
    data: Any = jsonbody.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise InvalidRequest("request body must be a JSON object", code="malformed_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from None


def _actor(request: web.Request) -> str:
    """Who asks, for the audit: `api:<key id>` (a key id finds the key's row; it is not secret)."""
    _, _, key = request.headers.get("Authorization", "").partition(" ")
    prefix, _, rest = key.strip().partition("_")
    key_id = rest.partition("_")[0] if prefix == "psk" else ""
    return f"api:{key_id}" if key_id.isalnum() else "api"


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
    # Counted by the payment's admission script, in the same round trip as its lease and code.
    merchant = await _merchant(request, rate_limit=False)
    payment = await _body(request, PaymentRequest)
    answer = await request.app[PAYMENTS].process_payment(
        payment,
        merchant_id=merchant,
        idempotency_key=_idempotency_key(request),
        correlation_id=request[CORRELATION_ID],
        actor=_actor(request),
    )
    return _respond(answer)


async def get_payment(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    transaction_id = _path_id(request, "transaction_id")
    return _respond(await request.app[PAYMENTS].get_payment(transaction_id, merchant_id=merchant))


async def refund_payment(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    transaction_id = _path_id(request, "transaction_id")
    refund = await _body(request, RefundRequest)
    answer = await request.app[REFUNDS].refund(
        transaction_id,
        refund,
        merchant_id=merchant,
        idempotency_key=_idempotency_key(request),
        correlation_id=request[CORRELATION_ID],
        actor=_actor(request),
    )
    return _respond(answer)


async def list_refunds(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    transaction_id = _path_id(request, "transaction_id")
    lists = request.app[LISTS]
    return _respond(await lists.refunds(transaction_id, request.query, merchant_id=merchant))


async def list_payments(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    return _respond(await request.app[LISTS].payments(request.query, merchant_id=merchant))


async def capture_payment(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    transaction_id = _path_id(request, "transaction_id")
    body = await _body(request, CaptureBody)
    answer = await request.app[CAPTURES].capture(
        transaction_id, body, merchant_id=merchant, idempotency_key=_idempotency_key(request),
        correlation_id=request[CORRELATION_ID], actor=_actor(request),
    )  # fmt: skip
    return _respond(answer)


async def cancel_payment(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    transaction_id = _path_id(request, "transaction_id")
    body = await _body(request, CancelBody)
    answer = await request.app[CAPTURES].cancel(
        transaction_id, body, merchant_id=merchant, idempotency_key=_idempotency_key(request),
        correlation_id=request[CORRELATION_ID], actor=_actor(request),
    )  # fmt: skip
    return _respond(answer)


async def get_refund(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    answer = await request.app[REFUNDS].get_refund(
        _path_id(request, "transaction_id"), _path_id(request, "refund_id"), merchant_id=merchant
    )
    return _respond(answer)


async def create_payment_method(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    body = await _body(request, PaymentMethodRequest)
    answer = await request.app[PAYMENT_METHODS].create(
        body,
        merchant_id=merchant,
        idempotency_key=_idempotency_key(request),
        actor=_actor(request),
    )
    return _respond(answer)


async def get_payment_method(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    method_id = request.match_info["payment_method_id"]
    return _respond(await request.app[PAYMENT_METHODS].get(method_id, merchant_id=merchant))


async def detach_payment_method(request: web.Request) -> web.Response:
    merchant = await _merchant(request)
    answer = await request.app[PAYMENT_METHODS].detach(
        request.match_info["payment_method_id"], merchant_id=merchant, actor=_actor(request)
    )
    return _respond(answer)


async def card_key(request: web.Request) -> web.Response:
    """The public key to seal card data to: all a producer needs (no secret)."""
    await _merchant(request)
    return web.json_response(request.app[SEALER].public_key().to_dict())


async def health(request: web.Request) -> web.Response:
    report = await request.app[HEALTH].report()
    if report["status"] == "unhealthy":
        # Like every 503 (http/errors.py): when to look again.
        return web.json_response(report, status=503, headers={"Retry-After": "1"})
    return web.json_response(report)
