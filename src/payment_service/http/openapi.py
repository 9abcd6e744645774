"""The OpenAPI document, generated from the pydantic models, and an offline docs page (no CDN)."""

from __future__ import annotations

import html
from functools import cache
from typing import Any

from pydantic import BaseModel

from payment_service import __version__
from payment_service.schemas.answers import ErrorResponse, PaymentView, RefundView
from payment_service.schemas.payment_methods import (
    CardKeyView,
    PaymentMethodRequest,
    PaymentMethodView,
)
from payment_service.schemas.payments import PaymentRequest, RefundRequest

_MODELS: tuple[type[BaseModel], ...] = (
    PaymentRequest,
    PaymentView,
    RefundRequest,
    RefundView,
    PaymentMethodRequest,
    PaymentMethodView,
    CardKeyView,
    ErrorResponse,
)

_ERRORS = {
    "400": "malformed JSON (malformed_json, json_too_deep, duplicate_key) or a refused "
    "operation (payment_not_refundable, payment_method_detached, ...)",
    "401": "missing or invalid API key",
    "402": "card_expired: the card on file is past its expiry",
    "404": "unknown payment or payment method, or another merchant's",
    "408": "the body did not arrive in time (body_read_timeout)",
    "409": "a request with the same Idempotency-Key is in progress",
    "413": "body larger than 64 KiB",
    "422": "validation failed (field by field; the code names the first rule: "
    "control_characters, amount_too_large...), or Idempotency-Key reused with another body",
    "429": "rate limited (see Retry-After)",
    "503": "not durably accepted (not_accepted), or too much in flight (overloaded, see "
    "Retry-After); retry with the same Idempotency-Key",
}
# The answers that are not a model: "still processing" (202), "accepted, not recorded yet"
# (GET 200), a payment's refunds, and the health report.
_PROCESSING = {
    "type": "object",
    "required": ["transaction_id", "status"],
    "properties": {
        "transaction_id": {"type": "string"},
        "refund_id": {"type": "string"},
        "status": {"type": "string"},
        # "failed" before any row existed (refused by the processor): its code and message.
        "error": {"type": "object"},
    },
}
_REFUND_LIST = {
    "type": "object",
    "required": ["transaction_id", "refunds"],
    "properties": {
        "transaction_id": {"type": "string"},
        "refunds": {"type": "array", "items": {"$ref": "#/components/schemas/RefundView"}},
    },
}
_HEALTH = {
    "type": "object",
    "required": ["status", "components"],
    "properties": {
        "status": {"enum": ["healthy", "degraded", "unhealthy"]},
        "components": {"type": "object", "additionalProperties": {"type": "object"}},
    },
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model: type[BaseModel] | dict[str, Any]) -> dict[str, Any]:
    schema = model if isinstance(model, dict) else _ref(model)
    return {"content": {"application/json": {"schema": schema}}}


def _operation(
    summary: str,
    ok: type[BaseModel] | dict[str, Any],
    body: type[BaseModel] | None = None,
    *,
    sync: bool = True,
) -> Any:
    responses: dict[str, Any] = {"200": {"description": "final answer", **_json(ok)}}
    if body is not None and sync:
        responses["202"] = {
            "description": "accepted, still processing; see Location",
            **_json(_PROCESSING),
        }
    for status, text in _ERRORS.items():
        responses[status] = {"description": text, **_json(ErrorResponse)}
    operation: dict[str, Any] = {
        "summary": summary,
        "security": [{"bearer": []}],
        "responses": responses,
    }
    if body is not None:
        operation["requestBody"] = {"required": True, **_json(body)}
        operation["parameters"] = [
            {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
        ]
    return operation


@cache
def openapi_spec() -> dict[str, Any]:
    schemas: dict[str, Any] = {}
    for model in _MODELS:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    payment_id = [
        {"name": "transaction_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    method_id = [
        {"name": "payment_method_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
    refund_id = [
        *payment_id,
        {"name": "refund_id", "in": "path", "required": True, "schema": {"type": "string"}},
    ]
    # GET shows a payment Kafka accepted but PostgreSQL does not show yet as "pending".
    payment_or_pending = {"anyOf": [_ref(PaymentView), _PROCESSING]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Payment Service", "version": __version__},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": {
            "/api/v1/payments/process": {
                "post": _operation("Take a card payment", PaymentView, PaymentRequest)
            },
            "/api/v1/payments/{transaction_id}": {
                "get": {**_operation("Get a payment", payment_or_pending), "parameters": payment_id}
            },
            "/api/v1/payments/{transaction_id}/refund": {
                "post": {
                    **_operation("Refund a payment, partly or fully", RefundView, RefundRequest),
                    "parameters": payment_id,
                }
            },
            "/api/v1/payments/{transaction_id}/refunds": {
                "get": {
                    **_operation("List a payment's refunds", _REFUND_LIST),
                    "parameters": payment_id,
                }
            },
            "/api/v1/payments/{transaction_id}/refunds/{refund_id}": {
                "get": {**_operation("Get a refund", RefundView), "parameters": refund_id}
            },
            "/health": {
                "get": {
                    "summary": "Health of the service and its dependencies",
                    "responses": {
                        "200": {
                            "description": "healthy, or degraded: the processor is stopped or "
                            "lagging, payments are still accepted (202 until it is back)",
                            **_json(_HEALTH),
                        },
                        "429": {"description": "rate limited", **_json(ErrorResponse)},
                        "503": {"description": "unhealthy", **_json(_HEALTH)},
                    },
                }
            },
            "/api/v1/payment_methods": {
                "post": _operation(
                    "Store a card on file (the security code is never stored)",
                    PaymentMethodView,
                    PaymentMethodRequest,
                    sync=False,
                )
            },
            "/api/v1/payment_methods/{payment_method_id}": {
                "get": {
                    **_operation("Get a card on file", PaymentMethodView),
                    "parameters": method_id,
                },
                "delete": {
                    **_operation(
                        "Detach a card on file (destroys its envelope)", PaymentMethodView
                    ),
                    "parameters": method_id,
                },
            },
            "/api/v1/keys/card": {
                "get": _operation(
                    "The public key to seal card data to (HPKE; see docs/security.md)", CardKeyView
                )
            },
        },
    }


@cache
def docs_page() -> str:
    """A self-contained HTML page describing the API (no external scripts or styles)."""
    spec = openapi_spec()
    rows = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = ", ".join(sorted(op.get("responses", {})))
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code>"
                f"</td><td>{html.escape(op['summary'])}</td><td>{codes}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Payment Service API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:4px 12px}</style></head><body>"
        f"<h1>Payment Service API {html.escape(spec['info']['version'])}</h1>"
        "<p>Authenticate with <code>Authorization: Bearer &lt;api key&gt;</code>. "
        "The machine-readable spec is at <a href='/openapi.json'>/openapi.json</a>.</p>"
        "<table><tr><th>Method</th><th>Path</th><th>What</th><th>Statuses</th></tr>"
        + "".join(rows)
        + "</table></body></html>"
    )
