"""The route table: what the router serves and what /openapi.json documents, declared once.

Each `Operation` (http/operations.py) names its handler (http/handlers.py, or below for the
service's own pages) and what the document says of it. A route is added here, nowhere else.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Final

from aiohttp import web

from payment_service.http import docs, events, webhooks
from payment_service.http import openapi_webhooks as hooks
from payment_service.http.handlers import (
    cancel_payment,
    capture_payment,
    card_key,
    create_payment_method,
    detach_payment_method,
    get_payment,
    get_payment_method,
    get_refund,
    health,
    list_payments,
    list_refunds,
    process_payment,
    refund_payment,
)
from payment_service.http.lists import PAGING_PARAMETERS, PAYMENT_FILTER_PARAMETERS
from payment_service.http.openapi import build_document
from payment_service.http.operations import Link, Operation, Reply, register
from payment_service.http.state import SETTINGS
from payment_service.schemas.answers import (
    HealthReport,
    PaymentList,
    PaymentView,
    Pending,
    Processing,
    RefundAnswer,
    RefundList,
    RefundView,
    Refused,
    ServiceInfo,
)
from payment_service.schemas.captures import CancelBody, CaptureBody
from payment_service.schemas.payment_methods import (
    CardKeyView,
    PaymentMethodRequest,
    PaymentMethodView,
)
from payment_service.schemas.payments import PaymentRequest, RefundRequest
from payment_service.schemas.webhooks import WebhookEndpointRequest


async def service_info(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return web.json_response(
        {
            "service": "payment-service",
            "version": openapi_document()["info"]["version"],
            "environment": settings.environment,
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": "/health",
        }
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document())


async def docs_page(request: web.Request) -> web.Response:
    return docs.page_response(openapi_document())


WRITE_ERRORS = (400, 401, 404, 408, 409, 413, 422, 429, 503)
READ_ERRORS = (401, 404, 429, 503)
PUBLIC_ERRORS = (429,)
REPLAYED = ("Idempotent-Replayed",)
ACCEPTED = ("Idempotent-Replayed", "Location")
_PAYMENT_LINKS = (
    Link("getPayment", "getPayment", {"transaction_id": "$response.body#/transaction_id"}),
    Link("refundPayment", "refundPayment", {"transaction_id": "$response.body#/transaction_id"}),
    Link("listRefunds", "listRefunds", {"transaction_id": "$response.body#/transaction_id"}),
    Link("capturePayment", "capturePayment", {"transaction_id": "$response.body#/transaction_id"}),
    Link("cancelPayment", "cancelPayment", {"transaction_id": "$response.body#/transaction_id"}),
)
_REFUND_LINKS = (
    Link(
        "getRefund",
        "getRefund",
        {
            "transaction_id": "$response.body#/transaction_id",
            "refund_id": "$response.body#/refund_id",
        },
    ),
)
_METHOD_LINKS = (
    Link("getPaymentMethod", "getPaymentMethod", {"payment_method_id": "$response.body#/id"}),
)
PAYMENTS_V1 = "/api/v1/payments"
ENDPOINTS_V1 = "/api/v1/webhook_endpoints"
EVENTS_V1 = "/api/v1/events"
OPERATIONS: Final = (
    Operation(
        "POST", f"{PAYMENTS_V1}/process", process_payment, "processPayment", "Take a card payment",
        description="Waits for the outcome up to the sync timeout: 200 with the final payment "
        "(`captured` or `failed`), else 202 and `Location` (the payment goes on; never read a "
        "202 as failed). Give `card_data`, or `payment_method_id` of a card on file.",
        request=PaymentRequest, idempotent=True,
        replies={
            200: Reply(PaymentView, "final: captured or failed", REPLAYED),
            202: Reply((Processing, PaymentView), "accepted, still processing", ACCEPTED),
        },
        errors=(402, *WRITE_ERRORS), links={200: _PAYMENT_LINKS, 202: _PAYMENT_LINKS},
    ),
    Operation(
        "GET", PAYMENTS_V1, list_payments, "listPayments",
        "List payments, newest first (cursor pagination)",
        query_parameters=(*PAGING_PARAMETERS, *PAYMENT_FILTER_PARAMETERS),
        replies={200: Reply(PaymentList)}, errors=(400, *READ_ERRORS),
    ),
    Operation(
        "POST", f"{PAYMENTS_V1}/{{transaction_id}}/capture", capture_payment, "capturePayment",
        "Capture a manual-capture payment (requires_capture), all or part of it",
        description="`amount` defaults to all that was authorized; the rest of the hold is "
        "released at the bank. 202 and `Location` when the bank's answer did not come within "
        "the sync timeout.",
        request=CaptureBody, idempotent=True,
        replies={
            200: Reply(PaymentView, "final: captured, or the payment as it stands", REPLAYED),
            202: Reply((Processing, PaymentView), "accepted, still processing", ACCEPTED),
        },
        errors=WRITE_ERRORS, links={200: _PAYMENT_LINKS, 202: _PAYMENT_LINKS},
    ),
    Operation(
        "POST", f"{PAYMENTS_V1}/{{transaction_id}}/cancel", cancel_payment, "cancelPayment",
        "Cancel a manual-capture payment: void its hold at the bank",
        request=CancelBody, idempotent=True,
        replies={
            200: Reply(PaymentView, "final: canceled, or the payment as it stands", REPLAYED),
            202: Reply((Processing, PaymentView), "accepted, still processing", ACCEPTED),
        },
        errors=WRITE_ERRORS, links={200: _PAYMENT_LINKS, 202: _PAYMENT_LINKS},
    ),
    Operation(
        "GET", f"{PAYMENTS_V1}/{{transaction_id}}", get_payment, "getPayment", "Get a payment",
        replies={
            200: Reply(
                (PaymentView, Pending, Refused),
                "the payment, `pending` while in Kafka, or `failed` with the `error` it was "
                "refused with before it was recorded",
            )
        },
        errors=READ_ERRORS,
    ),
    Operation(
        "POST", f"{PAYMENTS_V1}/{{transaction_id}}/refund", refund_payment, "refundPayment",
        "Refund a payment, partly or fully",
        description="`amount` defaults to all that remains refundable. 202 and `Location` "
        "when the bank's answer did not come within the sync timeout.",
        request=RefundRequest, idempotent=True,
        replies={
            200: Reply(RefundAnswer, "final: completed or failed, with the payment", REPLAYED),
            202: Reply((Processing, RefundAnswer), "accepted, still processing", ACCEPTED),
        },
        errors=WRITE_ERRORS, links={200: _REFUND_LINKS, 202: _REFUND_LINKS},
    ),
    Operation(
        "GET", f"{PAYMENTS_V1}/{{transaction_id}}/refunds", list_refunds, "listRefunds",
        "List a payment's refunds, newest first (cursor pagination)",
        query_parameters=PAGING_PARAMETERS, replies={200: Reply(RefundList)},
        errors=(400, *READ_ERRORS),
    ),
    Operation(
        "GET", f"{PAYMENTS_V1}/{{transaction_id}}/refunds/{{refund_id}}", get_refund, "getRefund",
        "Get a refund", replies={200: Reply(RefundView)}, errors=READ_ERRORS,
    ),
    Operation(
        "POST", "/api/v1/payment_methods", create_payment_method, "createPaymentMethod",
        "Store a card on file (its security code is never stored)", tag="cards",
        request=PaymentMethodRequest, idempotent=True,
        replies={200: Reply(PaymentMethodView, "stored (or replayed)", REPLAYED)},
        errors=WRITE_ERRORS, links={200: _METHOD_LINKS},
    ),
    Operation(
        "GET", "/api/v1/payment_methods/{payment_method_id}", get_payment_method,
        "getPaymentMethod", "Get a card on file", tag="cards",
        replies={200: Reply(PaymentMethodView)}, errors=READ_ERRORS,
    ),
    Operation(
        "DELETE", "/api/v1/payment_methods/{payment_method_id}", detach_payment_method,
        "detachPaymentMethod", "Detach a card on file (destroys its envelope)", tag="cards",
        replies={200: Reply(PaymentMethodView)}, errors=READ_ERRORS,
    ),
    Operation(
        "GET", "/api/v1/keys/card", card_key, "getCardKey",
        "The public key to seal card data to (HPKE; docs/security.md)", tag="cards",
        replies={200: Reply(CardKeyView)}, errors=(401, 429, 503),
    ),
    Operation(
        "GET", "/health", health, "getHealth", "Health of the service and its dependencies",
        tag="service", authenticated=False, errors=PUBLIC_ERRORS,
        replies={
            200: Reply(HealthReport, "healthy, or degraded: the processor is stopped or lagging"),
            503: Reply(HealthReport, "unhealthy"),
        },
    ),
    Operation(
        "GET", "/", service_info, "getServiceInfo", "Service name, version and links",
        tag="service", authenticated=False, replies={200: Reply(ServiceInfo)},
        errors=PUBLIC_ERRORS,
    ),
    Operation(
        "GET", "/openapi.json", openapi, "getOpenApi", "This document (OpenAPI 3.1)",
        tag="service", authenticated=False, errors=PUBLIC_ERRORS,
        replies={200: Reply({"type": "object", "required": ["openapi", "paths"]})},
    ),
    Operation(
        "GET", "/docs", docs_page, "getDocs", "Swagger UI (offline; Try it out calls this server)",
        tag="service", authenticated=False, errors=PUBLIC_ERRORS,
        replies={200: Reply({"type": "string"}, "the page", media=("text/html",))},
    ),
    Operation(
        "GET", "/docs/static/{asset}", docs.asset, "getDocsAsset", "An asset of the docs page",
        tag="service", authenticated=False, errors=(404, 429, 503),
        path_parameters={"asset": ("the asset's file name", {"enum": list(docs.ASSET_NAMES)})},
        replies={
            200: Reply(
                {"type": "string"}, "the asset",
                media=("text/css", "application/javascript", "image/png"),
            )
        },
    ),
    Operation(
        "POST", ENDPOINTS_V1, webhooks.create_endpoint, "createWebhookEndpoint",
        "Register a webhook endpoint (its signing secret is shown this once)", tag="webhooks",
        request=WebhookEndpointRequest,
        replies={201: Reply(hooks.ref("WebhookEndpointCreated"), "registered")},
        errors=(400, 401, 409, 413, 422, 429, 503),
    ),
    Operation(
        "GET", ENDPOINTS_V1, webhooks.list_endpoints, "listWebhookEndpoints",
        "List webhook endpoints", tag="webhooks", query_parameters=hooks.PAGE[:1],
        replies={200: Reply(hooks.ref("WebhookEndpointList"))}, errors=(400, *READ_ERRORS),
    ),
    Operation(
        "GET", f"{ENDPOINTS_V1}/{{endpoint_id}}", webhooks.get_endpoint, "getWebhookEndpoint",
        "Get a webhook endpoint (never its secret)", tag="webhooks",
        replies={200: Reply(hooks.ref("WebhookEndpoint"))}, errors=READ_ERRORS,
    ),
    Operation(
        "DELETE", f"{ENDPOINTS_V1}/{{endpoint_id}}", webhooks.delete_endpoint,
        "deleteWebhookEndpoint", "Delete a webhook endpoint (its pending deliveries stop)",
        tag="webhooks", replies={200: Reply(hooks.DELETED, "deleted")}, errors=READ_ERRORS,
    ),
    Operation(
        "GET", f"{ENDPOINTS_V1}/{{endpoint_id}}/deliveries", webhooks.list_deliveries,
        "listWebhookDeliveries", "An endpoint's delivery log, newest first", tag="webhooks",
        query_parameters=hooks.PAGE[:2],
        replies={200: Reply(hooks.ref("WebhookDeliveryList"))}, errors=(400, *READ_ERRORS),
    ),
    Operation(
        "GET", EVENTS_V1, events.list_events, "listEvents",
        "List events (kept 30 days), newest first", tag="webhooks",
        query_parameters=(*hooks.PAGE, hooks.EVENT_TYPE),
        replies={200: Reply(hooks.ref("EventList"))}, errors=(400, *READ_ERRORS),
    ),
    Operation(
        "GET", f"{EVENTS_V1}/{{event_id}}", events.get_event, "getEvent", "Get an event",
        tag="webhooks", replies={200: Reply(hooks.ref("Event"))}, errors=READ_ERRORS,
    ),
    Operation(
        "POST", f"{EVENTS_V1}/{{event_id}}/redeliver", events.redeliver_event, "redeliverEvent",
        "Deliver an event again to every endpoint that takes its type", tag="webhooks",
        replies={202: Reply(hooks.ref("Redelivery"), "queued")}, errors=(400, *READ_ERRORS),
    ),
)  # fmt: skip


# The operations that wait for the processor's result: the load shedder measures these.
PROCESSOR_OPERATIONS: Final = frozenset(
    {"processPayment", "capturePayment", "cancelPayment", "refundPayment"}
)


@cache
def openapi_document() -> dict[str, Any]:
    return build_document(OPERATIONS, hooks.schemas())


def add_routes(app: web.Application) -> None:
    register(app, OPERATIONS)
