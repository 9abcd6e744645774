"""Logs worth reading: every line of the API and the processor is JSON (librdkafka's included), a
payment can be followed from the API to the processor by its correlation id, transaction id and
trace id, there is one access line per request without card data or query strings, and a
missing DogStatsD agent is one warning, not a line per packet.

A fresh processor and API run with tracing on (to a recording stand-in for the trace agent),
librdkafka's `broker` debug context, and DogStatsD pointed at a port where nothing listens.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.datadog_agent import FakeAgent, fake_agent
from tests.e2e.helpers import canary_card
from tests.fixtures.service import Merchant, Service, eventually, payment_body
from tests.fixtures.stack import free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.fault]

# librdkafka's own lines, as confluent-kafka hands them to a logger: "FAC [client#kind-n] text".
LIBRDKAFKA_LINE = re.compile(r"^[A-Z0-9_]+ \[[^\]]*#(consumer|producer)-\d+\]")
UNREACHABLE = "DogStatsD agent at"


@pytest.fixture
async def agent() -> AsyncIterator[FakeAgent]:
    async with fake_agent() as recorder:
        yield recorder


def entries(path: Path) -> list[dict[str, Any]]:
    """Every line of a log file, parsed; fails on the first line that is not a JSON object."""
    parsed = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise AssertionError(f"{path.name}:{number} is not JSON: {line[:300]}") from None
        assert isinstance(entry, dict), f"{path.name}:{number}: {line[:300]}"
        assert {"time", "level", "logger", "message", "process"} <= set(entry), line[:300]
        parsed.append(entry)
    return parsed


def with_field(lines: list[dict[str, Any]], key: str, value: str) -> list[dict[str, Any]]:
    return [e for e in lines if e.get(key) == value]


async def test_every_line_is_json_and_one_payment_can_be_followed(
    service: Service, merchant: Merchant, agent: FakeAgent
) -> None:
    (no_agent_port,) = free_ports(1)  # nothing listens there: DogStatsD is refused
    env = {
        **agent.environment(),
        "DD_DOGSTATSD_PORT": str(no_agent_port),
        "DD_METRICS_INTERVAL_SECONDS": "1",
        "KAFKA_DEBUG": "broker",
        "LOG_LEVEL": "DEBUG",
    }
    card, card_as_id = canary_card(), canary_card()
    run = uuid.uuid4().hex[:8]
    ids = {name: f"logs-{run}-{name}" for name in ("pay", "get", "refund", "query", "card")}
    ids["card"] = card_as_id  # a client could send anything as its correlation id
    processor = service.processes["processor"]
    processor.stop()
    try:
        async with (
            service.spawn(f"logs-{run}-processor", "processor", **env) as (proc, _),
            service.spawn(f"logs-{run}-api", API_INSTANCE="3", **env) as (api, url),
            aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=60)) as http,
        ):

            def headers(name: str) -> dict[str, str]:
                return {**merchant.headers, "X-Correlation-ID": ids[name]}

            body = payment_body(merchant.merchant_id, card)
            async with http.post(
                "/api/v1/payments/process", json=body, headers=headers("pay")
            ) as r:
                answer = await r.json()
                assert r.status == 200, answer
            txn = answer["transaction_id"]
            async with http.get(f"/api/v1/payments/{txn}", headers=headers("get")) as r:
                assert r.status == 200
            refund = {"amount": "1.00"}
            path = f"/api/v1/payments/{txn}/refund"
            async with http.post(path, json=refund, headers=headers("refund")) as r:
                assert r.status == 200, await r.text()
            secret = f"s3cret{run}"
            query = f"/api/v1/payments/{txn}?token={secret}"
            async with http.get(query, headers=headers("query")) as r:
                assert r.status == 200
            async with http.get("/api/v1/payments/nope", headers=headers("card")) as r:
                assert r.status == 404

            def seen(log: Path, needle: str) -> bool:
                return log.exists() and needle in log.read_text()

            async def both_processed() -> bool:
                return seen(proc.log_path, "payment.refund/v1 processed")

            await eventually(both_processed, timeout=30, what="the processor's command lines")

            async def both_warned() -> bool:
                return seen(proc.log_path, UNREACHABLE) and seen(api.log_path, UNREACHABLE)

            await eventually(both_warned, timeout=30, what="the DogStatsD warning")
    finally:
        processor.start()

    api_lines, proc_lines = entries(api.log_path), entries(proc.log_path)

    # librdkafka's own lines (debug context "broker") reach the JSON logs of both processes.
    for lines in (api_lines, proc_lines):
        assert any(LIBRDKAFKA_LINE.match(e["message"]) for e in lines), "no librdkafka line"

    # One payment, followed from the API to the processor.
    api_pay = with_field(api_lines, "correlation_id", ids["pay"])
    proc_pay = with_field(proc_lines, "correlation_id", ids["pay"])
    access = [e for e in api_pay if e["logger"] == "payment_service.access"]
    assert len(access) == 1, access
    assert access[0]["transaction_id"] == txn
    assert access[0]["merchant_id"] == merchant.merchant_id
    assert access[0]["http.status_code"] == 200
    done = [e for e in proc_pay if e["message"] == "payment.process/v1 processed: captured"]
    assert len(done) == 1, proc_pay
    assert done[0]["transaction_id"] == txn
    assert done[0]["merchant_id"] == merchant.merchant_id
    # The same trace: ddtrace's log injection on both sides of Kafka.
    assert done[0]["dd.trace_id"] == access[0]["dd.trace_id"]
    assert "dd.span_id" in done[0]
    assert "dd.span_id" in access[0]
    assert all(e["transaction_id"] == txn for e in proc_pay), proc_pay
    refund_lines = with_field(proc_lines, "correlation_id", ids["refund"])
    assert any(e.get("command") == "payment.refund/v1" for e in refund_lines)
    for line in (*api_lines, *proc_lines):
        assert line["dd.service"] == "payment-service"
        assert {"dd.env", "dd.version"} <= set(line)

    # One access line per request, with the path but never the query string.
    for name in ("get", "refund", "query"):
        lines = [e for e in with_field(api_lines, "correlation_id", ids[name])]
        accessed = [e for e in lines if e["logger"] == "payment_service.access"]
        assert len(accessed) == 1, (name, accessed)
        assert accessed[0]["http.method"] in ("GET", "POST")
        assert {"duration", "network.bytes_written", "network.client.ip"} <= set(accessed[0])
    everything = api.log_path.read_text() + proc.log_path.read_text()
    assert secret not in everything
    notfound = [e for e in api_lines if e.get("http.url") == "/api/v1/payments/nope"]
    assert len(notfound) == 1
    assert notfound[0]["http.status_code"] == 404

    # No card data, even where a client put a card number in its correlation id.
    assert card not in everything
    assert card_as_id not in everything

    # No agent: one warning per process, not one line per packet.
    for lines in (api_lines, proc_lines):
        refused = [e for e in lines if "Connection refused" in e["message"]]
        assert len(refused) <= 1, refused
        assert len([e for e in lines if e["message"].startswith(UNREACHABLE)]) == 1
