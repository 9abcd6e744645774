"""The API protects itself: slow clients, floods before authentication, too much in flight."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import pytest

from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = pytest.mark.e2e

PAY = "/api/v1/payments/process"
SLOW_BODIES = 300
SLOW_HEADS = 100


async def _open(service: Service, head: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = service.api_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head)
    await writer.drain()
    return reader, writer


async def _answer_or_close(reader: asyncio.StreamReader) -> bytes:
    """What the server says before it closes the connection (b"" if it just closes)."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


async def test_slow_clients_cannot_exhaust_connections(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    body_head = (
        b"POST /api/v1/payments/process HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer "
        + merchant.api_key.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n"
        + b'{"merchant_id": "'
    )
    slow_head = b"POST /api/v1/payments/process HTTP/1.1\r\nHost: t\r\nX-Slow: "
    slow = await asyncio.gather(
        *(_open(service, body_head) for _ in range(SLOW_BODIES)),
        *(_open(service, slow_head) for _ in range(SLOW_HEADS)),
    )
    try:
        # With hundreds of bodies and headers stuck half-way, the service still works.
        async with http.post(
            PAY, json=payment_body(merchant.merchant_id), headers=merchant.headers
        ) as resp:
            payment = await resp.json()
            assert resp.status == 200, payment
        assert payment["status"] == "captured"
        async with http.get("/health") as resp:
            assert resp.status == 200
        # And it lets go of them: bodies get 408 at their deadline, heads are closed.
        answers = await asyncio.wait_for(
            asyncio.gather(*(_answer_or_close(reader) for reader, _ in slow)), timeout=90
        )
    finally:
        for _, writer in slow:
            writer.close()
    bodies, heads = answers[:SLOW_BODIES], answers[SLOW_BODIES:]
    assert all(b" 408 " in a.split(b"\r\n", 1)[0] for a in bodies), {a[:40] for a in bodies}
    assert all(b'"body_read_timeout"' in a for a in bodies)
    assert all(a == b"" for a in heads), {a[:40] for a in heads}


def _unanswered_topic(service: Service) -> str:
    """A requests topic no processor reads: a payment sent there stays in flight."""
    topic = f"test.unanswered.{uuid.uuid4().hex[:8]}.requests"
    # As the admin principal, with the principals' ACLs extended to this topic (the API writes it).
    admin = {**service.stack.kafka_env("admin"), "KAFKA_TOPIC_REQUESTS": topic}
    if service.stack.kafka_secured:
        credentials = str(service.stack.kafka_credentials)
        service.run_cli("kafka", "bootstrap", "--credentials", credentials, extra_env=admin)
    service.run_cli("topics", extra_env=admin)
    return topic


@pytest.mark.fault
async def test_past_the_in_flight_cap_requests_are_503_at_once(
    service: Service, merchant: Merchant
) -> None:
    env = {
        "API_INSTANCE": "2",
        "API_MAX_IN_FLIGHT": "1",
        "API_SYNC_TIMEOUT_SECONDS": "8",
        "KAFKA_TOPIC_REQUESTS": _unanswered_topic(service),
    }
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        service.spawn("capped-api", **env) as (_, url),
        aiohttp.ClientSession(base_url=url, timeout=timeout) as client,
    ):

        async def pay() -> int:
            body = payment_body(merchant.merchant_id)
            async with client.post(PAY, json=body, headers=merchant.headers) as resp:
                return resp.status

        holders: list[asyncio.Future[int]] = []

        async def refused() -> tuple[Any, dict[str, Any]] | None:
            # A payment holds the only slot until its answer (202: nothing reads its topic);
            # one that met a probe in the slot was refused itself, and is sent again.
            if not holders or (holders[-1].done() and holders[-1].result() == 503):
                holders.append(asyncio.ensure_future(pay()))
                return None  # probe on the next round, not in a race with it
            async with client.get("/api/v1/payments/none", headers=merchant.headers) as resp:
                if resp.status != 503:
                    return None
                return resp.headers, await resp.json()

        headers, answer = await eventually(refused, what="a request refused by the cap")
        assert answer["error"]["code"] == "overloaded"
        assert int(headers["Retry-After"]) >= 1
        async with client.get("/health") as resp:
            assert resp.status == 200  # health is not capped
        assert await holders[-1] == 202
        async with client.get("/api/v1/payments/none", headers=merchant.headers) as resp:
            assert resp.status == 404  # the slot is free again


@pytest.mark.fault
async def test_while_payments_queue_the_cap_drops_and_sheds_at_once(
    service: Service, merchant: Merchant
) -> None:
    """Payments that wait their whole sync timeout (nothing reads their topic) are a standing
    queue: the cap falls from 50 towards what was in flight, and the rest is refused at once."""
    env = {
        "API_INSTANCE": "3",
        "API_MAX_IN_FLIGHT": "50",
        "API_SHED_MIN_IN_FLIGHT": "2",
        "API_SHED_TARGET_SECONDS": "0.2",
        "API_SHED_INTERVAL_SECONDS": "0.5",
        "API_SYNC_TIMEOUT_SECONDS": "1",
        "KAFKA_TOPIC_REQUESTS": _unanswered_topic(service),
    }
    timeout = aiohttp.ClientTimeout(total=60)
    async with (
        service.spawn("shedding-api", **env) as (_, url),
        aiohttp.ClientSession(base_url=url, timeout=timeout) as client,
    ):

        async def pay() -> tuple[int, Any, dict[str, Any]]:
            body = payment_body(merchant.merchant_id)
            async with client.post(PAY, json=body, headers=merchant.headers) as resp:
                return resp.status, resp.headers, await resp.json()

        async def shed() -> list[tuple[int, Any, dict[str, Any]]] | None:
            answers = await asyncio.gather(*(pay() for _ in range(10)))
            return answers if any(status == 503 for status, _, _ in answers) else None

        # Ten at once are far below the cap of 50: only a lowered cap refuses any of them.
        answers = await eventually(shed, what="payments refused by the lowered cap")
        refused = [(h, a) for status, h, a in answers if status == 503]
        taken = [a for status, _, a in answers if status != 503]
        assert all(a["error"]["code"] == "overloaded" for _, a in refused)
        assert all(int(h["Retry-After"]) >= 1 for h, _ in refused)
        assert all("transaction_id" not in a["error"] for _, a in refused)  # nothing was done
        assert {a["status"] for a in taken} <= {"processing"}  # 202s: accepted, still waiting
        async with client.get("/health") as resp:
            assert resp.status == 200  # health is not capped


@pytest.mark.fault
async def test_a_flood_before_authentication_is_429(service: Service) -> None:
    env = {"API_INSTANCE": "2", "API_PREAUTH_RATE_PER_SECOND": "0.01", "API_PREAUTH_BURST": "5"}
    bogus = {"Authorization": f"Bearer psk_{uuid.uuid4().hex[:12]}_{'x' * 43}"}
    async with (
        service.spawn("admission-api", **env) as (_, url),
        aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=30)) as client,
    ):
        statuses = []
        for _ in range(8):
            async with client.get("/api/v1/payments/none", headers=bogus) as resp:
                statuses.append(resp.status)
                if resp.status == 429:
                    assert int(resp.headers["Retry-After"]) >= 1
                    assert (await resp.json())["error"]["code"] == "rate_limited"
    # /health (the spawn's readiness probe) spent part of the same address's burst.
    assert set(statuses) == {401, 429}
    assert statuses[-1] == 429


@pytest.mark.fault
async def test_distinct_bogus_keys_cost_a_bounded_number_of_lookups(
    service: Service, merchant: Merchant
) -> None:
    env = {
        "API_INSTANCE": "2",
        "API_AUTH_LOOKUP_RATE_PER_SECOND": "0.01",
        "API_AUTH_LOOKUP_BURST": "3",
    }
    async with (
        service.spawn("lookup-api", **env) as (_, url),
        aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=30)) as client,
    ):

        async def status(key: str) -> int:
            headers = {"Authorization": f"Bearer {key}"}
            async with client.get("/api/v1/payments/none", headers=headers) as resp:
                return resp.status

        assert await status(merchant.api_key) == 404  # one lookup, then cached
        repeated = f"psk_{uuid.uuid4().hex[:12]}_{'x' * 43}"
        # The same unknown key, over and over: one lookup, then the negative cache.
        assert {await status(repeated) for _ in range(20)} == {401}
        distinct = [await status(f"psk_{uuid.uuid4().hex[:12]}_{'y' * 43}") for _ in range(10)]
        assert distinct[:1] == [401]  # the third lookup of the budget
        assert set(distinct[1:]) == {429}
        assert await status(merchant.api_key) == 404  # a cached key is never refused
