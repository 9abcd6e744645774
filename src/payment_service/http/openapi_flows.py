"""The OpenAPI entries of the lists and of manual capture, merged into `openapi.openapi_spec`.

Kept apart so the document's generator can change without touching these: `MODELS` are the
bodies to publish under `components/schemas`, `paths(operation)` the path items, built with the
generator's own `operation(summary, ok, body)` helper.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from pydantic import BaseModel

from payment_service.core.states import PaymentStatus
from payment_service.http.lists import DEFAULT_LIMIT, MAX_LIMIT
from payment_service.schemas.captures import CancelBody, CaptureBody

MODELS: Final[tuple[type[BaseModel], ...]] = (CaptureBody, CancelBody)
Operation = Callable[..., Any]


def _list_of(item: str, url: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["object", "data", "has_more", "url"],
        "properties": {
            "object": {"const": "list"},
            "data": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
            "has_more": {"type": "boolean", "description": "more lie past this page"},
            "url": {"type": "string", "examples": [url]},
        },
    }


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


_PAGING: Final = [
    _query("limit", f"1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}",
           {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
    _query("starting_after", "the page after this id (newest first)", {"type": "string"}),
    _query("ending_before", "the page before this id; not with starting_after",
           {"type": "string"}),
]  # fmt: skip
_FILTERS: Final = [
    _query("status", "only payments in this status",
           {"enum": [s.value for s in PaymentStatus]}),
    _query("created[gte]", "created at or after (Unix seconds)", {"type": "integer"}),
    _query("created[lt]", "created before (Unix seconds)", {"type": "integer"}),
]  # fmt: skip
_PAYMENT_ID: Final = [
    {"name": "transaction_id", "in": "path", "required": True, "schema": {"type": "string"}}
]


def paths(operation: Operation, payment_view: type[BaseModel]) -> dict[str, Any]:
    """The path items: `operation(summary, ok, body=None)` is the generator's helper."""
    payments = _list_of("PaymentView", "/api/v1/payments")
    refunds = _list_of("RefundView", "/api/v1/payments/{transaction_id}/refunds")
    return {
        "/api/v1/payments": {
            "get": {
                **operation("List payments, newest first (cursor pagination)", payments),
                "parameters": [*_PAGING, *_FILTERS],
            }
        },
        "/api/v1/payments/{transaction_id}/refunds": {
            "get": {
                **operation("List a payment's refunds, newest first", refunds),
                "parameters": [*_PAYMENT_ID, *_PAGING],
            }
        },
        "/api/v1/payments/{transaction_id}/capture": {
            "post": _with_id(
                operation(
                    "Capture a manual-capture payment (requires_capture), all or part of it; "
                    "the rest of the hold is released",
                    payment_view,
                    CaptureBody,
                )
            )
        },
        "/api/v1/payments/{transaction_id}/cancel": {
            "post": _with_id(
                operation(
                    "Cancel a manual-capture payment: void its hold at the bank",
                    payment_view,
                    CancelBody,
                )
            )
        },
    }


def _with_id(op: dict[str, Any]) -> dict[str, Any]:
    return {**op, "parameters": [*_PAYMENT_ID, *op.get("parameters", [])]}
