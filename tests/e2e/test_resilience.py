"""Faults that must lose nothing and charge nothing twice: SIGKILLs, bad messages, load."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from confluent_kafka import Producer

from payment_service.core.states import PAYMENT_TRANSITIONS
from tests.e2e.helpers import (
    db_audit,
    db_payment,
    dlq_findable_id,
    executed,
    ledger,
    topic_messages,
)
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = pytest.mark.e2e

SETTLED = {"captured", "failed"}


async def _pay(
    http: aiohttp.ClientSession, merchant: Merchant, **overrides: Any
) -> tuple[int, dict[str, Any]]:
    body = payment_body(merchant.merchant_id, **overrides)
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        return resp.status, await resp.json()


async def _assert_charged_once(service: Service, txn: str) -> None:
    assert await _settled_as_bank_says(service, txn) == "captured"


async def _settled_as_bank_says(service: Service, txn: str) -> str:
    """Wait for the payment to settle; check PostgreSQL agrees with the bank's ledger."""

    async def settled() -> str | None:
        row = await db_payment(service, txn)
        return row["status"] if row is not None and row["status"] in SETTLED else None

    status = await eventually(settled, timeout=60, what=f"payment {txn} to settle")
    row = await db_payment(service, txn)
    assert row is not None
    entries = await ledger(service, txn)
    # Automatic capture is one sale (issue 14); no separate authorize or capture is ever sent.
    sold = executed(entries, "sale")
    await _assert_only_allowed_transitions(service, txn)
    assert executed(entries, "authorize") == executed(entries, "capture") == [], entries
    if status == "captured":
        assert len(sold) == 1, entries
        assert sold[0]["amount_minor"] == row["captured_minor"] == row["amount_minor"]
    else:
        assert sold == [], entries  # a failed payment moved no money
    return str(status)


async def _assert_only_allowed_transitions(service: Service, txn: str) -> None:
    """The audit trail is a path through the transition table, from `received` on."""
    allowed = {(src.value, dst.value) for (src, _), dst in PAYMENT_TRANSITIONS.items()}
    rows = [r for r in await db_audit(service, txn) if r["action"].startswith("payment.")]
    assert rows[0]["action"] == "payment.received", rows
    for previous, row in itertools.pairwise(rows):
        assert (row["from_status"], row["to_status"]) in allowed, row
        assert row["from_status"] == previous["to_status"], (previous, row)


async def _redis_value(redis: Any, key: bytes) -> bytes:
    """A key's value as plain bytes (DUMP would hide text in its LZF compression)."""
    kind = (await redis.type(key)).decode()
    if kind == "string":
        return bytes(await redis.get(key) or b"")
    if kind == "hash":
        return b"".join(k + v for k, v in (await redis.hgetall(key)).items())
    if kind in ("list", "set", "zset"):
        items: Callable[[], Awaitable[list[bytes]]] = {
            "list": lambda: redis.lrange(key, 0, -1),
            "set": lambda: redis.smembers(key),
            "zset": lambda: redis.zrange(key, 0, -1),
        }[kind]
        return b"".join(await items())
    return b""


def _card(number: str) -> dict[str, object]:
    return {**payment_body("x")["card_data"], "card_number": number}


def _produce_raw(service: Service, value: bytes, key: str) -> None:
    producer = Producer(service.kafka_config("ops", acks="all"))
    headers = service.signed_headers(key.encode(), value)
    producer.produce(service.topic("requests"), value=value, key=key.encode(), headers=headers)
    assert producer.flush(10) == 0


async def test_malformed_message_goes_to_dlq_and_next_is_processed(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    marker = dlq_findable_id("")
    await asyncio.to_thread(
        _produce_raw,
        service,
        b'{"type": "payment.process/v1", "x": "' + marker.encode() + b'"',
        marker,
    )

    async def in_dlq() -> bool:
        messages = await topic_messages(service, service.topic("dlq"))
        return any(marker.encode() in (m.value() or b"") for m in messages)

    await eventually(in_dlq, what="the malformed message in the DLQ")
    dlq = [
        m
        for m in await topic_messages(service, service.topic("dlq"))
        if marker.encode() in m.value()
    ]
    headers = dict(dlq[0].headers())
    assert headers["dlq-reason"] == b"invalid_command"
    status, body = await _pay(http, merchant)
    assert status == 200
    assert body["status"] == "captured"


@pytest.mark.fault
@pytest.mark.parametrize("point", ["after_authorize", "after_capture_recorded"])
async def test_processor_sigkill_loses_nothing_and_charges_once(
    point: str, service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    processor = service.processes["processor"]
    processor.stop()
    processor.start(PROCESSOR_CRASH_AT=point)
    # Twenty payments in flight, approvals and declines, when the processor dies at the point.
    cards = ["4242424242424242", "4000000000000002"] * 10
    sent = asyncio.gather(*(_pay(http, merchant, card_data=_card(c)) for c in cards))
    # The crash point fires only when a payment reaches it, so the kill interrupted one.
    assert await asyncio.to_thread(processor.wait_exit, 60) == -signal.SIGKILL
    processor.start()
    answers = await sent
    # 200 or 202, whichever the restart's speed gives: the sync timeout decides, not the test.
    assert all(status in (200, 202) for status, _ in answers), answers
    expected = {"4242424242424242": "captured", "4000000000000002": "failed"}
    for card, (_, body) in zip(cards, answers, strict=True):
        txn = body["transaction_id"]
        assert await _settled_as_bank_says(service, txn) == expected[card]
        async with http.get(f"/api/v1/payments/{txn}", headers=merchant.headers) as resp:
            assert (await resp.json())["status"] == expected[card]


@pytest.mark.parametrize("count", [200])
async def test_concurrent_payments_all_answered_and_agree_with_bank(
    count: int, service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    answers = await asyncio.gather(*(_pay(http, merchant) for _ in range(count)))
    assert all(status in (200, 202) for status, _ in answers), [
        a for a in answers if a[0] not in (200, 202)
    ][:3]
    ids = [body["transaction_id"] for _, body in answers]
    assert len(set(ids)) == count
    for txn in ids:
        await _assert_charged_once(service, txn)


async def test_card_data_never_rests_in_clear(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    from tests.e2e.helpers import canary_card

    card = canary_card()
    cvv = f"{uuid.uuid4().int % 900 + 100}"
    body = payment_body(merchant.merchant_id, card)
    body["card_data"]["cvv"] = cvv
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        answer = await resp.json()
        assert (resp.status, answer["status"]) == (200, "captured"), answer
    txn = answer["transaction_id"]
    needle = card.encode()

    # Logs (DEBUG) of every process.
    if service.owns_processes:
        assert needle not in service.logs()
    # Raw bytes of every topic.
    for name in ("REQUESTS", "RESULTS", "AUDIT", "DLQ"):
        for message in await topic_messages(service, service.topic(name)):
            raw = (message.value() or b"") + b"".join(v or b"" for _, v in message.headers() or [])
            assert needle not in raw, name
    # A dump of every table.
    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        for table in tables:
            rows = await conn.fetch(f'SELECT * FROM "{table["tablename"]}"')  # noqa: S608
            dump = json.dumps([dict(r) for r in rows], default=str)
            assert card not in dump, table["tablename"]
    finally:
        await conn.close()
    # Redis: no value holds the number or (after the payment is final) the security code.
    from redis.asyncio import Redis

    redis = Redis.from_url(service.redis_url, socket_timeout=5)
    try:
        assert not await redis.exists(f"cvv:{txn}")
        async for key in redis.scan_iter(count=1000):
            assert needle not in await _redis_value(redis, key), key
    finally:
        await redis.aclose()


@pytest.mark.fault
async def test_two_apis_and_two_processors_share_the_load(
    service: Service, merchant: Merchant
) -> None:
    async with (
        service.spawn("processor2", "processor") as (processor2, _),
        service.spawn("api2", API_INSTANCE="1") as (_, second_url),
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client,
    ):

        async def pay(base: str) -> tuple[int, dict[str, Any]]:
            body = payment_body(merchant.merchant_id)
            async with client.post(
                f"{base}/api/v1/payments/process", json=body, headers=merchant.headers
            ) as resp:
                return resp.status, await resp.json()

        answers = await asyncio.gather(*(pay(b) for b in [service.api_url, second_url] * 100))
        assert all(status in (200, 202) for status, _ in answers)
        ids = [body["transaction_id"] for _, body in answers]
        assert len(set(ids)) == 200
        for txn in ids:
            await _assert_charged_once(service, txn)
        # The second processor took part: the group gave it partitions of the requests topic.
        assert b"Assigning topic partition" in processor2.log_path.read_bytes()


@pytest.mark.fault
async def test_broker_unavailable_answers_503_and_retry_charges_once(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    pid_file = Path(service.env.get("PAYMENT_STACK_DIR", "")) / "pids" / "kafka.pid"
    if not service.owns_processes or not pid_file.is_file():
        pytest.fail("this test needs the test session's own stack (run it through `make test`)")
    kafka_pid = int(pid_file.read_text().split()[0])
    body = payment_body(merchant.merchant_id)
    headers = {**merchant.headers, "Idempotency-Key": f"broker-down-{uuid.uuid4().hex}"}
    os.kill(kafka_pid, signal.SIGSTOP)  # the broker stops answering, connections stay open
    try:
        async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
            refused = await resp.json()
            status = resp.status
    finally:
        os.kill(kafka_pid, signal.SIGCONT)
    assert status == 503, refused
    assert refused["error"]["code"] == "not_accepted"

    async def accepted() -> dict[str, Any] | None:
        async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
            answer = await resp.json()
            return answer if resp.status == 200 else None

    # The 503 says the outcome is unknown and names the transaction: the frozen broker may write
    # the command after all (its security code stays in the vault for it).
    assert "unknown" in refused["error"]["message"]
    assert refused["error"]["transaction_id"]
    # The merchant retries with the same key until the broker is back: one payment, at most one
    # charge, whichever of the two commands the processor gets first.
    answer = await eventually(accepted, timeout=90, what="the retried payment to be accepted")
    settled = await _settled_as_bank_says(service, answer["transaction_id"])
    assert settled == answer["status"]
    if settled == "failed":
        assert answer["failure_code"] == "security_code_expired", answer
        assert await ledger(service, answer["transaction_id"]) == []


async def test_command_from_another_producer_with_unreadable_card_fails_cleanly(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    from payment_service.schemas.messages import EncryptedCard, ProcessPayment, ProcessPaymentV1

    txn = f"direct-{uuid.uuid4().hex}"
    command = ProcessPaymentV1(
        data=ProcessPayment(
            transaction_id=txn,
            merchant_id=merchant.merchant_id,
            amount_minor=1234,
            currency="EUR",
            card=EncryptedCard(
                number_envelope='{"v": 1, "kid": "other-team", "nonce": "AA", "ct": "AA"}',
                fingerprint="unknown",
                brand="visa",
                last4="0000",
                expiry_month=1,
                expiry_year=2099,
                holder_name="Direct Producer",
            ),
        )
    )
    await asyncio.to_thread(_produce_raw, service, command.model_dump_json().encode(), txn)

    async def failed() -> bool:
        row = await db_payment(service, txn)
        return row is not None and row["status"] == "failed"

    await eventually(failed, what="the undecryptable payment to be failed")
    row = await db_payment(service, txn)
    assert row is not None
    assert row["failure_code"] == "card_data_unreadable"
    assert await ledger(service, txn) == []
    status, body = await _pay(http, merchant)
    assert (status, body["status"]) == (200, "captured")


def _redis(service: Service) -> Any:
    from redis.asyncio import Redis

    return Redis.from_url(service.redis_url, socket_timeout=5)


async def _get(
    http: aiohttp.ClientSession, merchant: Merchant, txn: str
) -> tuple[int, dict[str, Any]]:
    async with http.get(f"/api/v1/payments/{txn}", headers=merchant.headers) as resp:
        return resp.status, await resp.json()


async def test_a_command_refused_before_it_had_a_row_is_final_for_get_and_replays(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    """Another producer's command the processor cannot take (a NUL in its description): GET
    answers its final error, never "pending" for a day."""
    from payment_service.schemas.messages import ProcessPayment, ProcessPaymentV1

    txn = f"refused-{uuid.uuid4().hex}"
    command = ProcessPaymentV1(
        data=ProcessPayment(
            transaction_id=txn,
            merchant_id=merchant.merchant_id,
            amount_minor=1234,
            currency="EUR",
            payment_method_id=f"pm_{uuid.uuid4().hex}",
        )
    )
    raw = command.model_dump_json().replace('"currency":"EUR"', '"currency":"EUR\\u0000"')
    await asyncio.to_thread(_produce_raw, service, raw.encode(), txn)

    async def final() -> dict[str, Any] | None:
        status, body = await _get(http, merchant, txn)
        return body if status == 200 and body.get("status") == "failed" else None

    body = await eventually(final, what="the refused command's final error")
    assert body["error"]["code"] == "invalid_command", body
    assert await db_payment(service, txn) is None
    assert await ledger(service, txn) == []


@pytest.mark.fault
@pytest.mark.timeout(300)  # a processor restart, or a 15 s fault, on a busy machine
async def test_a_killed_api_holds_its_key_for_seconds_and_its_payment_ends(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    """An API killed while it waits for the result: its lock lease runs out within seconds (not
    a minute), and the payment it accepted is processed and answered to the retry."""
    from payment_service.core.ids import new_id

    key = f"killed-api-{uuid.uuid4().hex}"
    txn = new_id(merchant.merchant_id, key, "payment")
    headers = {**merchant.headers, "Idempotency-Key": key}
    body = payment_body(merchant.merchant_id)
    processor = service.processes["processor"]
    processor.stop()  # the doomed API waits for a result that cannot come yet
    redis = _redis(service)
    try:
        async with (
            service.spawn("api-doomed", API_INSTANCE="1") as (doomed, url),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as client,
        ):
            waiting = asyncio.create_task(
                client.post(f"{url}/api/v1/payments/process", json=body, headers=headers)
            )

            async def accepted() -> bool:
                return bool(await redis.exists(f"accepted:{txn}"))

            await eventually(accepted, what="the doomed API's command to be acknowledged")
            await asyncio.to_thread(doomed.kill)
            with contextlib.suppress(aiohttp.ClientError):
                await waiting
        assert await redis.exists(f"idempotency-lock:{merchant.merchant_id}:{key}")

        async def unlocked() -> tuple[int, dict[str, Any]] | None:
            async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
                answer = resp.status, await resp.json()
            return None if answer[0] == 409 else answer

        # The old lock lived 60 s; the lease is 5 s (this deadline leaves room for a slow box).
        status, answer = await eventually(unlocked, timeout=30, what="the dead API's lease to end")
        assert (status, answer["status"]) == (202, "processing"), answer
    finally:
        await redis.aclose()
        processor.start()
    assert await _settled_as_bank_says(service, txn) == "captured"
    assert (await _get(http, merchant, txn))[1]["status"] == "captured"


@pytest.mark.fault
@pytest.mark.timeout(300)  # a processor restart, or a 15 s fault, on a busy machine
async def test_an_unknown_capture_is_settled_within_seconds_of_the_bank_answering(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    """The bank captures but its answers are lost (5xx after commit, inquiries too): the payment
    is `unknown_capture`. Once the bank answers again, the fast lane settles it within seconds,
    not after the reconciler's sweep (which looks only at payments unsettled for 120 s)."""
    from payment_service.core.ids import new_id

    key = f"lost-capture-{uuid.uuid4().hex}"
    txn = new_id(merchant.merchant_id, key, "payment")
    fault = {
        "mode": "error_after_commit",
        "operations": ["sale", "inquiry"],  # automatic capture is one sale (main's flows)
        "references": [txn],
    }
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as bank:
        async with bank.post(f"{service.bank_url}/sim/faults", json=fault) as resp:
            assert resp.status == 201
            fault_id = (await resp.json())["faults"][0]["id"]
        headers = {**merchant.headers, "Idempotency-Key": key}
        body = payment_body(merchant.merchant_id)
        async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
            assert resp.status in (200, 202)

        async def status_is(wanted: str) -> Callable[[], Awaitable[bool]]:
            async def probe() -> bool:
                row = await db_payment(service, txn)
                return row is not None and row["status"] == wanted

            return probe

        await eventually(await status_is("unknown"), what="the sale to be unknown")
        async with bank.delete(f"{service.bank_url}/sim/faults/{fault_id}") as resp:
            assert resp.status in (200, 204)
    # The bank answers again: the breaker's cool-down, then the next fast-lane attempt.
    await eventually(await status_is("captured"), timeout=45, what="the lost capture settled")
    assert await _settled_as_bank_says(service, txn) == "captured"


@pytest.mark.fault
@pytest.mark.timeout(300)  # a processor restart, or a 15 s fault, on a busy machine
async def test_the_processor_survives_a_sigstop_past_its_session_and_health_degrades(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    """SIGSTOP past the group's session timeout (10 s): the broker drops the member, /health
    degrades; after SIGCONT the processor rejoins (a new consumer) instead of exiting."""
    processor = service.processes["processor"]
    assert processor.proc is not None
    pid = processor.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:

        async def degraded() -> dict[str, Any] | None:
            async with http.get("/health") as resp:
                report = await resp.json()
                assert resp.status == 200, report  # the API still accepts payments
            return report if report["status"] == "degraded" else None

        report = await eventually(degraded, timeout=60, what="/health to degrade")
        assert report["components"]["processor"]["status"] == "down", report
        stopped_payment = asyncio.create_task(_pay(http, merchant))
        await asyncio.sleep(15)  # the fault itself: stopped past the session timeout
    finally:
        os.kill(pid, signal.SIGCONT)
    status, body = await stopped_payment
    assert status in (200, 202), body
    assert await _settled_as_bank_says(service, body["transaction_id"]) == "captured"
    status, body = await _pay(http, merchant)
    assert (status, body["status"]) == (200, "captured"), body
    assert processor.running, "the processor exited after its membership was lost"

    async def healthy() -> bool:
        async with http.get("/health") as resp:
            report: dict[str, Any] = await resp.json()
        return bool(report["status"] == "healthy")

    await eventually(healthy, timeout=60, what="/health to be healthy again")
