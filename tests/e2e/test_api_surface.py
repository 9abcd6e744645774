"""The rest of the front door: service info, offline docs, health, rate limits, bank outages."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from openapi_spec_validator import validate

from tests.fixtures.service import (
    Merchant,
    Service,
    eventually,
    payment_body,
)

pytestmark = pytest.mark.e2e


async def test_info_openapi_and_offline_swagger_ui(http: aiohttp.ClientSession) -> None:
    async with http.get("/") as resp:
        info = await resp.json()
    assert info["docs"] == "/docs"
    async with http.get("/openapi.json") as resp:
        spec = await resp.json()
    validate(spec)
    assert "/api/v1/payments/process" in spec["paths"]
    assert "PaymentRequest" in spec["components"]["schemas"]
    async with http.get("/docs") as resp:
        page = await resp.text()
        assert resp.status == 200
        assert "default-src 'none'" in resp.headers["Content-Security-Policy"]
    assert "/api/v1/payments/{transaction_id}/refund" in page  # the list for readers sans script
    # Served offline: no script, style or font from anywhere else; every asset from here.
    assert "http://" not in page
    assert "https://" not in page
    assets = re.findall(r"(?:src|href)='(/docs/static/[^']+)'", page)
    assert len(assets) >= 3, page
    for asset in assets:
        async with http.get(asset) as resp:
            assert resp.status == 200, asset
            assert len(await resp.read()) > 0
    async with http.get("/docs/static/init.js") as resp:
        assert 'url: "/openapi.json"' in await resp.text()  # Try it out: this server
    async with http.get("/docs/static/..%2Fcore.py") as resp:
        assert resp.status == 404


async def test_health_reports_each_component(http: aiohttp.ClientSession) -> None:
    # The API answers 200 "degraded" until the processor's first heartbeat (it accepts payments
    # meanwhile); the whole stack is up once that heartbeat is in.
    health: dict[str, Any] = {}

    async def healthy() -> bool:
        async with http.get("/health") as resp:
            health.update(await resp.json())
            assert resp.status == 200
        return bool(health["status"] == "healthy")

    await eventually(healthy, timeout=60, what="the processor's heartbeat in /health")
    assert set(health["components"]) == {"postgres", "redis", "kafka", "bank", "processor"}
    assert all(c["status"] == "up" for c in health["components"].values())
    assert health["services"] == dict.fromkeys(health["components"], True)  # the seed's map


async def test_unknown_routes_and_methods_are_typed_errors(
    merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    async with http.get("/api/v1/nonexistent", headers=merchant.headers) as resp:
        body = await resp.json()
        assert resp.status == 404
        assert resp.headers["Request-Id"].startswith("req_")
    assert body["error"]["code"] == "resource_missing"
    assert body["error"]["type"] == "invalid_request_error"
    async with http.delete("/api/v1/payments/process", headers=merchant.headers) as resp:
        body = await resp.json()
        assert resp.status == 405
        # `process` also fits GET /api/v1/payments/{transaction_id}: both methods are named.
        assert {"GET", "POST"} <= set(resp.headers["Allow"].split(", "))
        assert resp.headers["X-Correlation-ID"] == body["correlation_id"]
    assert body["error"]["code"] == "method_not_allowed"


async def test_every_answer_has_its_own_request_id(
    merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    ids = set()
    for path in ("/health", "/", "/openapi.json", "/docs", "/api/v1/payments/nope"):
        async with http.get(path, headers=merchant.headers) as resp:
            request_id = resp.headers["Request-Id"]
            assert re.fullmatch(r"req_[0-9a-f]{24}", request_id), request_id
            ids.add(request_id)
    assert len(ids) == 5


async def test_correlation_id_is_echoed(merchant: Merchant, http: aiohttp.ClientSession) -> None:
    headers = {**merchant.headers, "X-Correlation-ID": "trace-me-123"}
    async with http.get("/api/v1/payments/nope", headers=headers) as resp:
        body = await resp.json()
        assert resp.headers["X-Correlation-ID"] == "trace-me-123"
    assert body["correlation_id"] == "trace-me-123"


@pytest.mark.fault
async def test_rate_limit_answers_429_with_retry_after(
    service: Service, merchant: Merchant
) -> None:
    statuses = []
    limits = {"API_INSTANCE": "3", "API_RATE_LIMIT_PER_MINUTE": "3"}
    async with (
        service.spawn("limited-api", **limits) as (_, url),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as client,
    ):
        for _ in range(8):  # limit 3: even if the minute rolls over once, a window sees 4
            async with client.get(f"{url}/api/v1/payments/none", headers=merchant.headers) as resp:
                statuses.append(resp.status)
                if resp.status == 429:
                    assert int(resp.headers["Retry-After"]) >= 1
                    assert (await resp.json())["error"]["code"] == "rate_limited"
    # Eight requests against a limit of three: at least one is refused.
    assert 429 in statuses


@pytest.mark.fault
async def test_bank_down_fails_fast_and_charges_nothing(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    bank = service.processes["banksim"]
    bank.stop()
    try:
        body = payment_body(merchant.merchant_id)
        async with http.post(
            "/api/v1/payments/process", json=body, headers=merchant.headers
        ) as resp:
            answer = await resp.json()
            assert resp.status == 200, answer
        assert answer["status"] == "failed"
        assert answer["failure_code"] == "bank_unavailable"
        async with http.get("/health") as resp:
            health = await resp.json()
            assert resp.status == 503
        assert health["components"]["bank"]["status"] == "down"
    finally:
        bank.start()
    await service.wait_healthy()

    async def captured_again() -> bool:
        async with http.post(
            "/api/v1/payments/process",
            json=payment_body(merchant.merchant_id),
            headers=merchant.headers,
        ) as resp:
            return bool((await resp.json()).get("status") == "captured")

    # The breaker (if it opened) lets a probe through after its reset time, then closes.
    await eventually(captured_again, timeout=60, what="payments to succeed once the bank is back")
