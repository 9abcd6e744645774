"""Every API route is in the OpenAPI document, with each of its methods."""

from __future__ import annotations

import pytest
from aiohttp import web

from payment_service.http.routes import add_routes, openapi_document

pytestmark = pytest.mark.unit
UNDOCUMENTED = {"/", "/docs", "/openapi.json"}  # the document itself and its page


def test_every_route_and_method_is_documented() -> None:
    app = web.Application()
    add_routes(app)
    spec = openapi_document()["paths"]
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if path in UNDOCUMENTED or route.method == "HEAD":
            continue
        assert path in spec, path
        assert route.method.lower() in spec[path], (route.method, path)


def test_the_lists_document_their_parameters() -> None:
    spec = openapi_document()["paths"]
    names = {p["name"] for p in spec["/api/v1/payments"]["get"]["parameters"]}
    assert names >= {"limit", "starting_after", "ending_before", "status", "created[gte]",
                     "created[lt]"}  # fmt: skip
    capture = spec["/api/v1/payments/{transaction_id}/capture"]["post"]
    assert capture["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CaptureBody"
    }
    assert "CaptureBody" in openapi_document()["components"]["schemas"]
