"""Scale-out: two API processes share one port (SO_REUSEPORT), each with its own reply partition,
and every payment through either gets its final answer from the instance that took it."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from tests.e2e.helpers import topic_messages
from tests.fixtures.service import (
    CLI,
    Merchant,
    Service,
    ServiceProcess,
    eventually,
    payment_body,
    wait_healthy,
)
from tests.fixtures.stack import free_ports

pytestmark = pytest.mark.e2e

INSTANCES = (1, 2)  # the session's own API reads partition 0
PAYMENTS = 16


async def test_two_apis_on_one_port_each_get_the_replies_of_their_own_payments(
    service: Service, merchant: Merchant
) -> None:
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    log_dir = service.processes["api"].log_path.parent
    shared = {
        **service.env_for("api"),
        "API_PORT": str(port),
        "API_REUSE_PORT": "true",
        # Long enough that a 202 can only mean a reply that went to the wrong instance.
        "API_SYNC_TIMEOUT_SECONDS": "30",
    }
    apis = [
        ServiceProcess(
            f"shared-port-api-{i}",
            [CLI, "api"],
            {**shared, "API_INSTANCE": str(i)},
            log_dir / f"shared-port-api-{i}.log",
        )
        for i in INSTANCES
    ]
    # A new connection for every request: the kernel picks an instance per connection.
    connector = aiohttp.TCPConnector(force_close=True)
    timeout = aiohttp.ClientTimeout(total=60)
    try:
        for api in apis:
            api.start()
        await wait_healthy(url, apis)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
            answered: set[int] = set()

            async def both_answer() -> bool:
                async with client.get(f"{url}/health") as resp:
                    report: dict[str, Any] = await resp.json()
                answered.add(int(report["components"]["kafka"]["reply_partition"]))
                return answered == set(INSTANCES)

            await eventually(both_answer, timeout=60, what="both instances to answer on the port")
            transactions = []
            for _ in range(PAYMENTS):
                headers = {**merchant.headers, "Idempotency-Key": uuid.uuid4().hex}
                async with client.post(
                    f"{url}/api/v1/payments/process",
                    json=payment_body(merchant.merchant_id),
                    headers=headers,
                ) as resp:
                    answer = await resp.json()
                    assert resp.status == 200, answer  # the final answer, not 202
                assert answer["status"] == "captured"
                transactions.append(answer["transaction_id"])
    finally:
        for api in apis:
            api.stop()
    results = await topic_messages(service, service.topic("results"))
    ours = {m.key().decode(): m.partition() for m in results if m.key() is not None}
    partitions = {ours[t] for t in transactions}
    # Both instances took payments, and each payment's result went to its own instance's partition.
    assert partitions == set(INSTANCES)
