"""The OpenAPI schemas of webhook endpoints and events (their operations: `http/routes.py`).

The views are plain objects (core/webhooks.py builds them), so their schemas are written here
and added to the document's components by `routes.openapi_document`.
"""

from __future__ import annotations

from typing import Any, Final

from payment_service.core.webhooks import ALL_EVENTS, EVENT_TYPES
from payment_service.schemas.webhooks import WebhookEndpointRequest

_STR: Final = {"type": "string"}
_TIME: Final = {"type": "string", "format": "date-time"}
_NULL_STR: Final = {"type": ["string", "null"]}
_TYPES: Final = {"enum": sorted(EVENT_TYPES)}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _list(item: str) -> dict[str, Any]:
    return _object(
        ["object", "data", "has_more"],
        object={"const": "list"},
        url=_STR,
        data={"type": "array", "items": _ref(item)},
        has_more={"type": "boolean"},
    )


_ENDPOINT: Final = _object(
    ["id", "object", "url", "enabled_events", "status", "created_at"],
    id={"type": "string", "pattern": "^we_"},
    object={"const": "webhook_endpoint"},
    url=_STR,
    enabled_events={"type": "array", "items": {"enum": [ALL_EVENTS, *sorted(EVENT_TYPES)]}},
    description=_NULL_STR,
    status={"const": "enabled"},
    created_at=_TIME,
)
_CREATED: Final = {
    "allOf": [
        _ref("WebhookEndpoint"),
        _object(["secret"], secret={"type": "string", "pattern": "^whsec_"}),
    ],
    "description": "the endpoint, with its signing secret: shown this once",
}
_EVENT: Final = _object(
    ["id", "object", "type", "created_at", "data"],
    id={"type": "string", "pattern": "^evt_[0-9a-f]{32}$"},
    object={"const": "event"},
    type=_TYPES,
    created_at=_TIME,
    data=_object(
        ["object"], object={"description": "the payment or refund (PaymentView, RefundView)"}
    ),
)
_DELIVERY: Final = _object(
    ["object", "endpoint_id", "event_id", "status", "attempts"],
    object={"const": "webhook_delivery"},
    endpoint_id=_STR,
    event_id=_STR,
    status={"enum": ["pending", "succeeded", "failed"]},
    attempts={"type": "integer"},
    next_attempt_at={"type": ["string", "null"], "format": "date-time"},
    last_attempt_at={"type": ["string", "null"], "format": "date-time"},
    last_status_code={"type": ["integer", "null"]},
    last_error=_NULL_STR,
    created_at=_TIME,
)
_REDELIVERY: Final = _object(
    ["id", "object", "deliveries"],
    id=_STR,
    object={"const": "event"},
    deliveries={"type": "array", "items": _ref("WebhookDelivery")},
)


def schemas() -> dict[str, Any]:
    request = WebhookEndpointRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    return {
        "WebhookEndpointRequest": request,
        "WebhookEndpoint": _ENDPOINT,
        "WebhookEndpointCreated": _CREATED,
        "WebhookEndpointList": _list("WebhookEndpoint"),
        "Event": _EVENT,
        "EventList": _list("Event"),
        "WebhookDelivery": _DELIVERY,
        "WebhookDeliveryList": _list("WebhookDelivery"),
        "Redelivery": _REDELIVERY,
    }


def _query(name: str, schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": text}


_PAGE: Final = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 10}, "page size"),
    _query("starting_after", _STR, "an id of this list: the page after it (older)"),
    _query("ending_before", _STR, "an id of this list: the page before it (newer)"),
]


def ref(name: str) -> dict[str, str]:
    """A body documented by one of `schemas()`."""
    return _ref(name)


PAGE: Final = tuple(_PAGE)
DELETED: Final = _object(
    ["id", "object", "deleted"],
    id=_STR,
    object={"const": "webhook_endpoint"},
    deleted={"const": True},
)
EVENT_TYPE: Final = _query("type", _TYPES, "only events of this type")
