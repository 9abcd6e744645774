"""Direct producers as authenticated clients (issue 11): the example producer, run as another
team runs it, against the real processor, bank simulator, PostgreSQL and secured Kafka.

Allowed merchant: captured. Another merchant, a refund without the right, an unsigned command, a
revoked producer: refused, with no bank call and no row. The DLQ keeps no card number, results
reach only their producer, and junk on the results topic does not stop the API's reply consumer.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from payment_service.core.ids import new_id
from payment_service.kafka.signing import Signer, private_key_from_text, read_key_file
from payment_service.streams.dlq import redacted_key
from tests.e2e.custody import (
    command,
    public_key,
    sealed_card,
    sealed_number,
    settled_row,
    unique_txn,
)
from tests.e2e.helpers import (
    canary_card,
    db_audit,
    db_payment,
    dlq_findable_id,
    executed,
    ledger,
    topic_messages,
)
from tests.e2e.producers import card_key_file, outcome, register, run_example
from tests.fixtures.service import Merchant, Service, eventually, payment_body

# Each test runs the example producer as a process, and may wait for its result.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    return tmp_path


async def _nothing_happened(service: Service, transaction_id: str) -> None:
    assert await db_payment(service, transaction_id) is None
    assert await ledger(service, transaction_id) == []


async def _dead_letter(service: Service, transaction_id: str) -> Any:
    async def found() -> Any:
        for message in await topic_messages(service, service.topic("dlq")):
            # The letter's key is the command's, as masking left it (a producer's random id
            # may hold a Luhn-valid digit run).
            if message.key() == (redacted_key(transaction_id) or "").encode():
                return message
        return None

    return await eventually(found, timeout=60, what=f"a dead letter for {transaction_id}")


async def test_a_signed_payment_for_an_allowed_merchant_is_captured(
    service: Service, merchant: Merchant, keys: Path
) -> None:
    team = register(service, [merchant.merchant_id], "payment", keys)
    done = await run_example(
        service, team, merchant.merchant_id, "--wait", "90", card_key=card_key_file(service, keys)
    )
    transaction_id, result = outcome(done)
    assert result["error"] is None
    assert result["payment"]["status"] == "captured"
    row = await db_payment(service, transaction_id)
    assert row is not None
    assert (row["status"], row["requested_by"]) == ("captured", f"producer:{team.name}")
    entries = await ledger(service, transaction_id)
    assert len(executed(entries, "authorize")) + len(executed(entries, "sale")) == 1
    audit = await db_audit(service, transaction_id)
    assert audit
    assert {a["actor"] for a in audit} == {f"producer:{team.name}"}


async def test_a_payment_for_another_merchant_is_refused_without_a_bank_call(
    service: Service, merchant: Merchant, keys: Path
) -> None:
    team = register(service, [merchant.merchant_id], "payment", keys)
    other = f"m_{uuid.uuid4().hex[:12]}"
    done = await run_example(
        service, team, other, "--wait", "90", card_key=card_key_file(service, keys)
    )
    transaction_id, result = outcome(done)
    assert result["final"] is True
    assert result["error"]["code"] == "producer_not_authorized"
    await _nothing_happened(service, transaction_id)
    letter = await _dead_letter(service, transaction_id)
    assert dict(letter.headers())["dlq-reason"] == b"producer_not_authorized"


async def test_a_refund_by_a_producer_that_may_not_refund_is_refused(
    service: Service, merchant: Merchant, keys: Path
) -> None:
    team = register(service, [merchant.merchant_id], "payment", keys)
    card_key = card_key_file(service, keys)
    transaction_id, paid = outcome(
        await run_example(service, team, merchant.merchant_id, "--wait", "90", card_key=card_key)
    )
    assert paid["payment"]["status"] == "captured"
    _, refused = outcome(
        await run_example(
            service,
            team,
            merchant.merchant_id,
            "--refund-of",
            transaction_id,
            "--wait",
            "90",
            card_key=card_key,
        )
    )
    assert refused["error"]["code"] == "producer_not_authorized"
    row = await db_payment(service, transaction_id)
    assert row is not None
    assert (row["status"], row["refunded_minor"]) == ("captured", 0)
    assert executed(await ledger(service, transaction_id), "refund") == []


async def test_a_producer_allowed_to_refund_refunds(
    service: Service, merchant: Merchant, keys: Path
) -> None:
    team = register(service, [merchant.merchant_id], "payment,refund", keys)
    card_key = card_key_file(service, keys)
    transaction_id, _ = outcome(
        await run_example(service, team, merchant.merchant_id, "--wait", "90", card_key=card_key)
    )
    _, refunded = outcome(
        await run_example(
            service,
            team,
            merchant.merchant_id,
            "--refund-of",
            transaction_id,
            "--wait",
            "90",
            card_key=card_key,
        )
    )
    assert refunded["error"] is None
    assert refunded["refund"]["status"] == "completed"
    assert len(executed(await ledger(service, transaction_id), "refund")) == 1


async def test_an_unsigned_command_is_refused(
    service: Service, merchant: Merchant, keys: Path
) -> None:
    team = register(service, [merchant.merchant_id], "payment", keys)
    done = await run_example(
        service, team, merchant.merchant_id, "--unsigned", card_key=card_key_file(service, keys)
    )
    assert done.returncode == 0, done.stderr
    transaction_id = done.stdout.strip()
    letter = await _dead_letter(service, transaction_id)
    assert dict(letter.headers())["dlq-reason"] == b"signature_missing"
    await _nothing_happened(service, transaction_id)


async def test_a_revoked_producer_is_refused_within_seconds(
    service: Service, merchant: Merchant, keys: Path
) -> None:
    team = register(service, [merchant.merchant_id], "payment", keys)
    card_key = card_key_file(service, keys)
    _, first = outcome(
        await run_example(service, team, merchant.merchant_id, "--wait", "90", card_key=card_key)
    )
    assert first["payment"]["status"] == "captured"
    # The message layer alone (its Kafka login kept): the processor refuses what it signs.
    service.run_cli("producers", "revoke", team.name, "--keep-kafka-user")
    revoked_at = time.monotonic()

    async def refused() -> str | None:
        done = await run_example(
            service, team, merchant.merchant_id, "--wait", "60", card_key=card_key
        )
        transaction_id, result = outcome(done)
        if result["error"] is None:
            return None  # still within the registry cache's seconds
        assert result["error"]["code"] == "producer_revoked"
        await _nothing_happened(service, transaction_id)
        return transaction_id

    await eventually(refused, timeout=60, what="the revocation to take effect")
    print(f"revocation effective after {time.monotonic() - revoked_at:.1f} s")
    listed = service.cli("producers", "list")
    assert any(line.startswith(team.name) and "revoked" in line for line in listed.splitlines())


async def test_revoking_also_removes_the_kafka_login(
    service: Service, merchant: Merchant, keys: Path
) -> None:
    team = register(service, [merchant.merchant_id], "payment", keys)
    service.run_cli("producers", "revoke", team.name, extra_env=service.stack.kafka_env("admin"))
    done = await run_example(
        service, team, merchant.merchant_id, card_key=card_key_file(service, keys)
    )
    assert done.returncode != 0  # not even delivered: the broker refuses the login


async def test_the_dlq_keeps_no_card_number(
    service: Service, merchant: Merchant, keys: Path
) -> None:
    pan = canary_card()
    transaction_id = dlq_findable_id("txn_")
    junk = {
        "type": "payment.process/v1",
        "data": {"transaction_id": transaction_id, "merchant_id": merchant.merchant_id,
                 "card_number": pan, "note": f"card {pan[:4]} {pan[4:8]} {pan[8:12]} {pan[12:]}"},
    }  # fmt: skip
    value = json.dumps(junk).encode()
    producer = Producer(service.kafka_config("ops", acks="all"))
    signed = service.signed_headers(transaction_id.encode(), value)
    for headers in (signed, {"x-note": pan}):  # an invalid signed command; an unsigned one
        producer.produce(
            service.topic("requests"), value=value, key=transaction_id.encode(), headers=headers
        )
    assert producer.flush(10) == 0

    async def both() -> list[Any] | None:
        messages = await topic_messages(service, service.topic("dlq"))
        mine = [m for m in messages if m.key() == transaction_id.encode()]
        return mine if len(mine) >= 2 else None

    letters = await eventually(both, timeout=60, what="both dead letters")
    reasons = {dict(m.headers())["dlq-reason"] for m in letters}
    assert reasons == {b"invalid_command", b"signature_missing"}
    for letter in letters:
        everything = letter.value() + b"".join(v or b"" for _, v in letter.headers())
        digits = bytes(ch for ch in everything if chr(ch).isdigit())
        assert pan.encode() not in digits
    await _nothing_happened(service, transaction_id)


def _denied(error: KafkaError | None) -> bool:
    return error is not None and "AUTHORIZATION" in error.name()


async def test_a_producer_reads_only_its_own_results_and_writes_no_results(
    service: Service, merchant: Merchant, keys: Path
) -> None:
    one = register(service, [merchant.merchant_id], "payment", keys)
    other = register(service, [merchant.merchant_id], "payment", keys)
    config = service.kafka_config(one.name, password=one.password)

    def produce(topic: str) -> KafkaError | None:
        reports: list[KafkaError | None] = []
        producer = Producer({**config, "message.timeout.ms": 10_000})
        producer.produce(topic, b"forged", key=b"k", on_delivery=lambda e, _m: reports.append(e))
        producer.flush(20)
        return reports[0] if reports else None

    def read(topic: str) -> KafkaError | None:
        consumer = Consumer(
            {**config, "group.id": f"{one.name}.t", "auto.offset.reset": "earliest"}
        )
        consumer.subscribe([topic])
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                message = consumer.poll(0.5)
                if message is not None and message.error() is not None:
                    return message.error()
            return None
        finally:
            consumer.close()

    for topic in (service.topic("results"), other.results_topic, one.results_topic):
        assert _denied(await asyncio.to_thread(produce, topic)), topic
    assert _denied(await asyncio.to_thread(read, other.results_topic))
    assert _denied(await asyncio.to_thread(read, service.topic("results")))


async def test_junk_on_the_results_topic_does_not_stop_the_reply_consumer(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    producer = Producer(service.kafka_config("processor", acks="all"))
    topic = service.topic("results")
    for partition in range(int(service.env.get("KAFKA_RESULTS_PARTITIONS", "4"))):
        for value, headers in (
            (b"{}", [("reply-id", b"\xff\xfe\xfd")]),  # not UTF-8: stopped the thread for good
            (None, [("reply-id", b"r-1")]),  # a tombstone
            (b"\x00junk\xff", None),
            (b"{not json", [("reply-id", str(uuid.uuid4()).encode())]),
            (b'{"type": "payment.result/v1"}', [("reply-id", b"x"), ("signature", b"\xff")]),
        ):
            producer.produce(topic, value=value, key=b"k", headers=headers, partition=partition)
    assert producer.flush(10) == 0
    async with http.post(
        "/api/v1/payments/process",
        json=payment_body(merchant.merchant_id),
        headers=merchant.headers,
    ) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    assert body["status"] == "captured"
    async with http.get("/health") as resp:
        kafka = (await resp.json())["components"]["kafka"]
    assert kafka["status"] == "up"
    assert kafka["reply_consumer"] == "running"


async def test_an_unchanged_re_production_is_valid_and_charges_once(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    """A replay re-produces the same key, value and signature headers: it verifies again, and
    the claim and the bank's idempotency key make it harmless."""
    transaction_id = unique_txn()
    key = await public_key(http, merchant)
    message = command(
        merchant.merchant_id,
        transaction_id,
        card=sealed_card(sealed_number(key, transaction_id)),
    )
    value = json.dumps(message).encode()
    headers = service.signed_headers(transaction_id.encode(), value)
    producer = Producer(service.kafka_config("ops", acks="all"))
    for _ in range(2):
        producer.produce(
            service.topic("requests"), value=value, key=transaction_id.encode(), headers=headers
        )
    assert producer.flush(10) == 0
    row = await settled_row(service, transaction_id)
    assert row["status"] == "captured"

    async def both_answered() -> list[Any] | None:
        results = [
            m
            for m in await topic_messages(service, service.topic("results"))
            if m.key() == transaction_id.encode()
        ]
        return results if len(results) >= 2 else None

    results = await eventually(both_answered, timeout=60, what="a result for each delivery")
    assert all(json.loads(m.value())["data"]["error"] is None for m in results)
    entries = await ledger(service, transaction_id)
    assert len(executed(entries, "authorize")) + len(executed(entries, "sale")) == 1


@pytest.mark.fault
async def test_a_forged_result_is_never_shown_to_the_client(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    """While the API waits (the processor is stopped), results naming its reply id arrive on its
    partition: unsigned, signed with another key, and genuinely signed but for another merchant.
    None may answer the client: it gets 202, and the payment goes on once the processor is back."""
    processor = service.processes["processor"]
    processor.stop()
    try:
        # An API of its own that waits 45 s, so the forgeries surely arrive while it waits.
        spawned = service.spawn(
            "api-forged-results", "api", API_SYNC_TIMEOUT_SECONDS="45", API_INSTANCE="1"
        )
        async with spawned as (_, url):
            idempotency_key = uuid.uuid4().hex
            transaction_id = new_id(merchant.merchant_id, idempotency_key, "payment")
            headers = {**merchant.headers, "Idempotency-Key": idempotency_key}
            body = payment_body(merchant.merchant_id)
            request = asyncio.create_task(_post(f"{url}/api/v1/payments/process", body, headers))

            async def sent() -> dict[str, bytes] | None:
                for message in await topic_messages(service, service.topic("requests")):
                    if message.key() == transaction_id.encode():
                        return {k: v for k, v in message.headers() or [] if v is not None}
                return None

            command_headers = await eventually(sent, timeout=30, what="the API's command")
            await asyncio.to_thread(_forge, service, transaction_id, merchant, command_headers)
            assert not request.done()  # the forgeries were on the partition while it waited
            status, answer = await request
            assert status == 202, answer  # never the forged "failed"
    finally:
        processor.start()
    await service.wait_healthy()
    row = await settled_row(service, transaction_id)
    assert row["status"] == "captured"


async def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, Any]:
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(url, json=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json()


def _forge(
    service: Service, transaction_id: str, merchant: Merchant, command: dict[str, bytes]
) -> None:
    reply_id = command["reply-id"].decode()
    forged = {
        "transaction_id": transaction_id, "merchant_id": merchant.merchant_id, "kind": "payment",
        "final": True, "payment": {"transaction_id": transaction_id, "status": "failed"},
    }  # fmt: skip
    value = json.dumps({"type": "payment.result/v1", "data": forged}).encode()
    other = json.dumps({"type": "payment.result/v1", "data": {**forged, "merchant_id": "m_x"}})
    processor_key = private_key_from_text(
        read_key_file(Path(service.processor_extra["RESULT_SIGNING_KEY_FILE"]))
    )
    key = transaction_id.encode()
    stranger = Signer("processor", Ed25519PrivateKey.generate())
    genuine = Signer("processor", processor_key)
    attempts = [
        (value, {}),
        (value, stranger.result_headers(reply_id, key, value)),
        (other.encode(), genuine.result_headers(reply_id, key, other.encode())),
    ]
    producer = Producer(service.kafka_config("processor", acks="all"))
    for body, signature in attempts:
        producer.produce(
            service.topic("results"),
            value=body,
            key=key,
            headers={"reply-id": reply_id, **signature},
            partition=int(command["reply-partition"]),
        )
    assert producer.flush(10) == 0


async def test_a_signature_that_does_not_verify_is_never_answered_to_the_producer_it_names(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession, keys: Path
) -> None:
    """Anyone with a Kafka login can name another producer. Were the refusal answered on the named
    producer's topic, it would be a genuine processor-signed "refused, final" for one of its
    transaction ids: a forged result that may make it pay again under a new id."""
    victim = register(service, [merchant.merchant_id], "payment", keys)
    attacker = register(service, [merchant.merchant_id], "payment", keys)
    transaction_id = unique_txn()
    key = transaction_id.encode()
    value = json.dumps(
        command(
            merchant.merchant_id,
            transaction_id,
            card=sealed_card(sealed_number(await public_key(http, merchant), transaction_id)),
        )
    ).encode()
    own = Signer(attacker.name, private_key_from_text(read_key_file(attacker.key_file)))
    forged = {**own.command_headers(key, value), "producer-id": victim.name}
    genuine = Signer(victim.name, private_key_from_text(read_key_file(victim.key_file)))
    # The forgery first, then the victim's own command: same key, same partition, in this order.
    for headers, login in ((forged, attacker), (genuine.command_headers(key, value), victim)):
        producer = Producer(service.kafka_config(login.name, password=login.password, acks="all"))
        producer.produce(service.topic("requests"), value=value, key=key, headers=headers)
        assert producer.flush(10) == 0
    letter = await _dead_letter(service, transaction_id)
    assert dict(letter.headers())["dlq-reason"] == b"signature_invalid"

    async def answered() -> list[Any] | None:
        results = [
            json.loads(m.value())["data"]
            for m in await topic_messages(service, victim.results_topic)
            if m.key() == key
        ]
        return results if any(r["error"] is None for r in results) else None

    results = await eventually(answered, timeout=90, what="the victim's own result")
    assert [r["error"] for r in results] == [None]
    assert results[0]["payment"]["status"] == "captured"


async def test_the_dlq_keeps_no_card_number_however_it_is_spread(service: Service) -> None:
    """Seen on `make up`'s stack: digits split by dots, slashes, tabs or bytes that are not UTF-8,
    a card number as a header name or as the message key, all reached the DLQ in the clear."""
    pan = canary_card()
    groups = [pan[i : i + 4] for i in range(0, 16, 4)]
    marker = dlq_findable_id("")
    cases: list[tuple[bytes, bytes, dict[str, bytes]]] = [
        (f"{marker}-dots".encode(), json.dumps({"note": ".".join(groups)}).encode(), {}),
        (f"{marker}-slashes".encode(), json.dumps({"n": "/".join(groups)}).encode(), {}),
        (f"{marker}-tabs".encode(), "\t".join(groups).encode(), {}),
        (f"{marker}-bytes".encode(), b"\xff".join(g.encode() for g in groups), {}),
        (f"{marker}-header".encode(), b"{}", {pan: b"x", "n": ".".join(groups).encode()}),
        (pan.encode(), b"{}", {}),
        (".".join(groups).encode(), b"{}", {}),
    ]
    producer = Producer(service.kafka_config("ops", acks="all"))
    for key, value, headers in cases:
        producer.produce(
            service.topic("requests"),
            value=value,
            key=key,
            headers={**headers, "x-case": marker.encode()},
        )
    assert producer.flush(10) == 0

    async def all_letters() -> list[Any] | None:
        messages = await topic_messages(service, service.topic("dlq"))
        mine = [m for m in messages if dict(m.headers() or []).get("x-case") == marker.encode()]
        return mine if len(mine) >= len(cases) else None

    letters = await eventually(all_letters, timeout=60, what="every dead letter")
    for letter in letters:
        everything = (letter.key() or b"") + (letter.value() or b"")
        everything += b"".join(k.encode() + (v or b"") for k, v in letter.headers())
        digits = bytes(ch for ch in everything if chr(ch).isdigit())
        assert pan.encode() not in digits, everything
    # Nor the processor's log, which names an unverified command by its key.
    log = service.processes["processor"].log_path.read_text()
    assert ".".join(groups) not in log
    assert pan not in log
