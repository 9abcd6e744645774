"""Datadog: traces and DogStatsD metrics leave the service, and carry no card data.

A small capture server stands where the Datadog agent would (traces over HTTP, metrics over UDP);
the agent itself is not one of the parts we run here.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from tests.e2e.helpers import canary_card
from tests.fixtures.service import (
    Merchant,
    Service,
    eventually,
    payment_body,
)
from tests.fixtures.stack import free_ports

pytestmark = [pytest.mark.e2e, pytest.mark.fault]


class Agent:
    """Records every trace payload and statsd datagram it is sent."""

    def __init__(self) -> None:
        self.traces: list[bytes] = []
        self.metrics: list[bytes] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.traces.append(await request.read())
        return web.json_response({"rate_by_service": {}})


@pytest.fixture
async def agent() -> AsyncIterator[tuple[Agent, int, int]]:
    recorder = Agent()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    http_port, udp_port = free_ports(2)
    site = web.TCPSite(runner, "127.0.0.1", http_port)
    await site.start()
    loop = asyncio.get_running_loop()

    class Datagrams(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            recorder.metrics.append(data)

    transport, _ = await loop.create_datagram_endpoint(
        Datagrams, local_addr=("127.0.0.1", udp_port), family=socket.AF_INET
    )
    try:
        yield recorder, http_port, udp_port
    finally:
        transport.close()
        await runner.cleanup()


async def test_traces_and_metrics_flow_without_card_data(
    service: Service, merchant: Merchant, agent: tuple[Agent, int, int]
) -> None:
    recorder, http_port, udp_port = agent
    datadog = {
        "DD_TRACE_ENABLED": "true",
        "DD_TRACE_AGENT_URL": f"http://127.0.0.1:{http_port}",
        "DD_AGENT_HOST": "127.0.0.1",
        "DD_DOGSTATSD_PORT": str(udp_port),
        "DD_INSTRUMENTATION_TELEMETRY_ENABLED": "false",
        "DD_REMOTE_CONFIGURATION_ENABLED": "false",
        "DD_TRACE_FLUSH_INTERVAL": "0.2",
    }
    card = canary_card()
    # The traced pair replaces the processor (so it is the one consuming) and adds an API.
    processor = service.processes["processor"]
    processor.stop()
    try:
        async with (
            service.spawn("traced-processor", "processor", **datadog),
            service.spawn("traced-api", API_INSTANCE="2", **datadog) as (_, url),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client,
        ):
            body = payment_body(merchant.merchant_id, card)
            async with client.post(
                f"{url}/api/v1/payments/process", json=body, headers=merchant.headers
            ) as resp:
                answer = await resp.json()
                assert resp.status == 200, answer

            async def spans_arrived() -> bool:
                joined = b"".join(recorder.traces)
                return b"payment.command" in joined and b"aiohttp.request" in joined

            await eventually(spans_arrived, timeout=30, what="spans from API and processor")

            async def metrics_arrived() -> bool:
                joined = b"".join(recorder.metrics)
                return b"payment.processed" in joined and b"payment.api.requests" in joined

            await eventually(metrics_arrived, timeout=30, what="DogStatsD metrics")
    finally:
        processor.start()
    assert card.encode() not in b"".join(recorder.traces)
    assert card.encode() not in b"".join(recorder.metrics)
    assert answer["transaction_id"].encode() in b"".join(recorder.traces)
