"""The OpenAPI document: valid, generated from the route table, complete for every route served."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest
from openapi_spec_validator import validate

from payment_service.app.api import build_api
from payment_service.config.settings import Settings
from payment_service.core.states import PaymentStatus, RefundStatus
from payment_service.http import docs
from payment_service.http.routes import OPERATIONS, openapi_document

DOC = openapi_document()
PAYMENT = "/api/v1/payments/process"
REFUND = "/api/v1/payments/{transaction_id}/refund"


def _op(path: str, method: str) -> dict[str, Any]:
    operation: dict[str, Any] = DOC["paths"][path][method]
    return operation


def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = DOC["components"]["schemas"][name]
    return schema


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(DOC)  # raises on any error
    assert DOC["openapi"] == "3.1.0"


def test_every_route_the_api_serves_is_documented() -> None:
    settings = Settings(card_public_key="ck_a:" + base64.b64encode(os.urandom(32)).decode())
    app = build_api(settings)
    served = {
        (route.method.lower(), route.resource.canonical)
        for route in app.router.routes()
        if route.resource is not None
    }
    documented = {(method, path) for path, ops in DOC["paths"].items() for method in ops}
    assert served, "no routes?"
    assert served == documented
    assert len({op.operation_id for op in OPERATIONS}) == len(OPERATIONS)


@pytest.mark.parametrize("path", [PAYMENT, REFUND, "/api/v1/payment_methods"])
def test_creation_takes_an_idempotency_key(path: str) -> None:
    names = [p["name"] for p in _op(path, "post")["parameters"]]
    assert "Idempotency-Key" in names
    replies = _op(path, "post")["responses"]
    assert "Idempotent-Replayed" in replies["200"]["headers"]


@pytest.mark.parametrize("path", [PAYMENT, REFUND])
def test_202_has_a_body_and_a_location(path: str) -> None:
    accepted = _op(path, "post")["responses"]["202"]
    assert "Location" in accepted["headers"]
    refs = [s["$ref"] for s in accepted["content"]["application/json"]["schema"]["anyOf"]]
    assert "#/components/schemas/Processing" in refs
    assert _schema("Processing")["properties"]["status"]["const"] == "processing"


def test_refunds_can_be_read_one_by_one() -> None:
    get_refund = _op("/api/v1/payments/{transaction_id}/refunds/{refund_id}", "get")
    assert [p["name"] for p in get_refund["parameters"][:2]] == ["transaction_id", "refund_id"]
    ok = get_refund["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/RefundView"}


def test_every_answer_documents_request_id_and_correlation_id() -> None:
    for path, ops in DOC["paths"].items():
        for method, op in ops.items():
            for status, reply in op["responses"].items():
                where = f"{method} {path} {status}"
                assert reply["headers"]["Request-Id"]["required"] is True, where
                assert reply["headers"]["X-Correlation-ID"]["required"] is True, where


def test_errors_have_the_error_body_and_rate_limits_say_when_to_retry() -> None:
    for path, ops in DOC["paths"].items():
        for op in ops.values():
            for status, reply in op["responses"].items():
                if int(status) >= 400 and path != "/health":
                    body = reply["content"]["application/json"]["schema"]
                    assert body == {"$ref": "#/components/schemas/ErrorResponse"}, path
                if status in ("429", "503") and path != "/health":
                    assert "Retry-After" in reply["headers"]
    error_types = _schema("ErrorBody")["properties"]["type"]["enum"]
    assert "invalid_request_error" in error_types


def test_statuses_are_enums() -> None:
    assert set(_schema("PaymentStatus")["enum"]) == {s.value for s in PaymentStatus}
    assert set(_schema("RefundStatus")["enum"]) == {s.value for s in RefundStatus}
    assert _schema("PaymentView")["properties"]["status"]["$ref"].endswith("/PaymentStatus")


def test_bearer_security_and_public_service_pages() -> None:
    scheme = DOC["components"]["securitySchemes"]["bearer"]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}
    assert _op(PAYMENT, "post")["security"] == [{"bearer": []}]
    for path in ("/health", "/", "/openapi.json", "/docs"):
        assert _op(path, "get")["security"] == []


def test_the_payment_request_has_an_example_that_validates() -> None:
    from payment_service.schemas.payments import PaymentRequest

    example = _op(PAYMENT, "post")["requestBody"]["content"]["application/json"]["example"]
    assert PaymentRequest.model_validate(example).currency == "USD"


def test_links_let_a_stateful_run_follow_a_payment() -> None:
    links = _op(PAYMENT, "post")["responses"]["200"]["links"]
    operation_ids = {op["operationId"] for ops in DOC["paths"].values() for op in ops.values()}
    assert {link["operationId"] for link in links.values()} <= operation_ids
    assert links["getPayment"]["parameters"] == {"transaction_id": "$response.body#/transaction_id"}


def test_compatibility_fields_are_documented_as_such() -> None:
    payment = _schema("PaymentView")["properties"]
    for name in ("card_last_four", "authorization_id", "capture_id", "expires_at", "processed_at"):
        assert payment[name]["description"].startswith("Compatibility field"), name
    refund = _schema("RefundView")["properties"]
    for name in ("external_refund_id", "processed_at"):
        assert refund[name]["description"].startswith("Compatibility field"), name
    assert "services" in _schema("HealthReport")["required"]


def test_swagger_ui_assets_are_packaged_and_the_page_loads_nothing_from_elsewhere() -> None:
    for name in docs.ASSETS:
        assert (docs.asset_dir() / name).stat().st_size > 0, name
    page = docs.page(DOC)
    assert "http://" not in page
    assert "https://" not in page
    assert "/docs/static/swagger-ui-bundle.js" in page
    assert "default-src 'none'" in docs.CSP
    assert "connect-src 'self'" in docs.CSP
    assert 'url: "/openapi.json"' in docs._INIT
    assert "validatorUrl: null" in docs._INIT


def test_the_error_type_enum_covers_the_whole_error_tree() -> None:
    from payment_service.core.errors import PaymentServiceError

    def tree(cls: type[PaymentServiceError]) -> list[type[PaymentServiceError]]:
        return [cls, *(c for sub in cls.__subclasses__() for c in tree(sub))]

    documented = set(_schema("ErrorBody")["properties"]["type"]["enum"])
    assert {cls.type for cls in tree(PaymentServiceError)} <= documented
    assert {cls.status for cls in tree(PaymentServiceError)} - {500} <= set(map(int, ERRORS_DOC))


ERRORS_DOC = {
    str(status)
    for ops in DOC["paths"].values()
    for op in ops.values()
    for status in op["responses"]
    if int(status) >= 400
} | {"405"}  # 405 answers methods a route does not take: no operation to document it on
