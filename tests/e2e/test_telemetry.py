"""Datadog: traces, Data Streams, DogStatsD metrics leave the service, as the catalogue says, with
unified service tags, and carry no card data.

A traced processor and API (`DD_TRACE_ENABLED=true`, `DD_DATA_STREAMS_ENABLED=true`) send to a
recording stand-in for the agent (`datadog_agent.py`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from importlib.metadata import version

import aiohttp
import asyncpg
import pytest

from payment_service.ops.metric_catalog import BY_NAME, CONSTANT_TAGS, NAMESPACE
from tests.e2e.datadog_agent import FakeAgent, fake_agent
from tests.e2e.helpers import canary_card
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = [pytest.mark.e2e, pytest.mark.fault]

# What one approved payment, one declined payment and one refund must make each process send.
EXPECTED = {
    "payment.api.requests",
    "payment.api.duration_ms",
    "payment.api.replies",
    "payment.api.reply_wait_ms",
    "payment.processed",
    "payment.process.duration_ms",
    "payment.payments.settled",
    "payment.payments.amount",
    "payment.refunds.settled",
    "payment.refunds.amount",
    "payment.bank.requests",
    "payment.bank.duration_ms",
    "payment.consumer.lag",
    "payment.reconciler.runs",
    "payment.db.pool.size",
    "payment.db.pool.idle",
    "payment.db.pool.max",
    "payment.redis.pool.in_use",
    "payment.redis.pool.max",
}


@pytest.fixture
async def agent() -> AsyncIterator[FakeAgent]:
    async with fake_agent() as recorder:
        yield recorder


def _parsed(line: str) -> tuple[str, dict[str, str]]:
    """(name, tags) of one DogStatsD line `name:value|type|#k:v,...`."""
    head, *fields = line.split("|")
    tags: dict[str, str] = {}
    for extra in fields:
        if extra.startswith("#"):
            for tag in extra[1:].split(","):
                key, _, value = tag.partition(":")
                tags[key] = value
    return head.partition(":")[0], tags


async def test_traces_data_streams_and_metrics_flow_without_card_data(
    service: Service, merchant: Merchant, agent: FakeAgent
) -> None:
    datadog = {
        **agent.environment(),
        "DD_DATA_STREAMS_ENABLED": "true",
        "DD_METRICS_INTERVAL_SECONDS": "1",
    }
    card = canary_card()
    # The traced pair replaces the processor (so it is the one consuming) and adds an API.
    processor = service.processes["processor"]
    processor.stop()
    try:
        async with (
            service.spawn(
                "traced-processor", "processor", PROCESSOR_RECONCILE_INTERVAL_SECONDS="1", **datadog
            ),
            service.spawn("traced-api", API_INSTANCE="2", **datadog) as (_, url),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client,
        ):
            headers = merchant.headers
            async with client.post(
                f"{url}/api/v1/payments/process",
                json=payment_body(merchant.merchant_id, card),
                headers=headers,
            ) as resp:
                answer = await resp.json()
                assert resp.status == 200, answer
            declined_body = payment_body(merchant.merchant_id, "4000000000000002")
            async with client.post(
                f"{url}/api/v1/payments/process", json=declined_body, headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
            txn = answer["transaction_id"]
            async with client.post(
                f"{url}/api/v1/payments/{txn}/refund", json={"amount": "5.00"}, headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()

            async def spans_arrived() -> bool:
                joined = agent.http_bytes
                return b"payment.command" in joined and b"aiohttp.request" in joined

            await eventually(spans_arrived, timeout=30, what="spans from API and processor")

            async def metrics_arrived() -> set[str] | None:
                missing = EXPECTED - {_parsed(line)[0] for line in agent.metric_lines()}
                return None if missing else missing

            await eventually(metrics_arrived, timeout=30, what=f"DogStatsD metrics {EXPECTED}")

            async def pathways_arrived() -> bool:
                return bool(agent.posted("/v0.1/pipeline_stats"))

            # The DSM processor flushes every 10 s.
            await eventually(pathways_arrived, timeout=40, what="Data Streams pathway stats")
            names = await _application_names(service)
    finally:
        processor.start()

    lines = agent.metric_lines()
    ours = [_parsed(line) for line in lines if line.startswith(f"{NAMESPACE}.")]
    unknown = {name for name, _ in ours} - set(BY_NAME)
    assert not unknown, f"metrics missing from ops/metric_catalog.py: {unknown}"
    for name, tags in ours:
        assert set(CONSTANT_TAGS) <= set(tags), (name, tags)
        assert tags["service"] == "payment-service"
        assert set(tags) - set(CONSTANT_TAGS) <= set(BY_NAME[name].tags), (name, tags)
    settled = [tags for name, tags in ours if name == "payment.payments.settled"]
    assert any(t.get("status") == "captured" and t.get("currency") == "USD" for t in settled)
    assert any(t.get("decline_code") == "generic_decline" for t in settled), settled
    banked = {(t["operation"], t["outcome"]) for n, t in ours if n == "payment.bank.requests"}
    assert {("sale", "approved"), ("sale", "declined"), ("refund", "approved")} <= banked

    assert {"payment-service-api", "payment-service-processor"} <= names
    sent = agent.http_bytes + b"".join(agent.datagrams)
    assert card.encode() not in sent
    assert txn.encode() in agent.http_bytes  # spans name payments by id
    assert version("payment-service").encode() in agent.http_bytes  # DD_VERSION on the spans


async def _application_names(service: Service) -> set[str]:
    """The `application_name`s connected to PostgreSQL: how Database Monitoring names us."""
    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        rows = await conn.fetch("SELECT DISTINCT application_name FROM pg_stat_activity")
    finally:
        await conn.close()
    return {row[0] for row in rows}
