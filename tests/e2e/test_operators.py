"""The operators' tools end to end (issue 12), through `payment-service ops ...` as `ops`.

The replay guarantee: a merchant's whole request history (payments sold in one call, declines,
manual-capture holds captured or voided, refunds, refunds the processor refused, junk that was
dead-lettered) replayed with `--execute` makes no money-moving bank call (the simulator's
counters: authorize, capture, sale, refund, void), changes no payment or refund (checksums), and
a second dry run shows only no-ops. The replayed commands keep their signatures (the `replay-of`
header is not signed), so the processor verifies and answers each one again. Then: `verify`
names exactly the payment whose audit row the owner edited; `inspect` finds a payment by id and
by its Idempotency-Key; `dlq list` counts the junk by reason; `offsets reset` refuses while the
processor is a live member.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest
from confluent_kafka import Producer

from payment_service.core.producers import REFUSAL_CODES
from payment_service.schemas.messages import RefundPayment, RefundPaymentV1
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = pytest.mark.e2e
PAYMENTS = 120
MANUAL = 6  # manual-capture holds: half captured (part of the hold), half voided
DECLINE = "4000000000000002"
MONEY_MOVING = ("authorize", "capture", "sale", "refund", "void")
_CHECKSUM = """SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.transaction_id), ''))
    FROM transactions t WHERE merchant_id = $1"""
_REFUND_CHECKSUM = """SELECT md5(coalesce(string_agg(r::text, '|' ORDER BY r.refund_id), ''))
    FROM refunds r WHERE merchant_id = $1"""


def ops(service: Service, *args: str) -> tuple[int, Any]:
    """`payment-service ops ARGS --json` as the operators' principal: exit code and JSON."""
    result = service.run_cli(
        "ops", *args, "--json", check=False, extra_env=service.stack.kafka_env("ops"), timeout=600
    )
    assert result.returncode in (0, 1), result.stderr
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


async def _pay(
    http: aiohttp.ClientSession, merchant: Merchant, card: str, key: str
) -> dict[str, Any]:
    headers = {**merchant.headers, "Idempotency-Key": key}
    body = payment_body(merchant.merchant_id, card=card, amount="40.00")
    async with http.post("/api/v1/payments/process", json=body, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        answer: dict[str, Any] = await resp.json()
        return answer


async def _refund(
    http: aiohttp.ClientSession, merchant: Merchant, txn: str, amount: str
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        f"/api/v1/payments/{txn}/refund", json={"amount": amount}, headers=merchant.headers
    ) as resp:
        return resp.status, await resp.json()


def _produce(service: Service, messages: list[tuple[str, bytes]]) -> None:
    """Commands straight onto the requests topic, signed as the API signs them (so the processor
    gets as far as parsing and deciding them)."""
    producer = Producer(service.kafka_config("ops"))
    for key, value in messages:
        headers = service.signed_headers(key.encode(), value)
        producer.produce(service.topic("requests"), value=value, key=key, headers=headers)
    assert producer.flush(30) == 0


async def _post(
    http: aiohttp.ClientSession, merchant: Merchant, path: str, body: dict[str, Any]
) -> dict[str, Any]:
    async with http.post(path, json=body, headers=merchant.headers) as resp:
        assert resp.status == 200, await resp.text()
        answer: dict[str, Any] = await resp.json()
        return answer


async def _manual(http: aiohttp.ClientSession, merchant: Merchant) -> None:
    """Manual-capture holds: captured in part, or voided."""
    for i in range(MANUAL):
        body = payment_body(merchant.merchant_id, amount="50.00", capture_method="manual")
        held = await _post(http, merchant, "/api/v1/payments/process", body)
        assert held["status"] == "requires_capture", held
        txn = held["transaction_id"]
        if i % 2 == 0:
            done = await _post(
                http, merchant, f"/api/v1/payments/{txn}/capture", {"amount": "30.00"}
            )
            assert done["status"] == "captured", done
        else:
            done = await _post(http, merchant, f"/api/v1/payments/{txn}/cancel", {})
            assert done["status"] == "canceled", done


async def _history(service: Service, http: aiohttp.ClientSession, merchant: Merchant) -> list[str]:
    """Payments (some declined), refunds, processor-refused refunds and junk; returns the
    captured transaction ids."""
    slots = asyncio.Semaphore(8)

    async def one(i: int) -> dict[str, Any]:
        async with slots:
            card = DECLINE if i % 6 == 0 else "4242424242424242"
            return await _pay(http, merchant, card, f"order-{i}")

    paid = await asyncio.gather(*(one(i) for i in range(PAYMENTS)))
    await _manual(http, merchant)
    captured = [p["transaction_id"] for p in paid if p["status"] == "captured"]
    assert len(captured) == PAYMENTS - len(range(0, PAYMENTS, 6))
    for txn in captured[:40]:
        assert (await _refund(http, merchant, txn, "15.00"))[0] == 200
    for txn in captured[:10]:
        assert (await _refund(http, merchant, txn, "25.00"))[0] == 200  # the rest
    # Refunds the API never pre-checked: the processor refuses them and records why.
    refused = [
        RefundPaymentV1(
            data=RefundPayment(
                refund_id=f"re_{uuid.uuid4().hex[:20]}",
                transaction_id=txn,
                merchant_id=merchant.merchant_id,
                amount_minor=1_000_000,
            )
        )
        for txn in captured[40:50]
    ]
    junk = [
        json.dumps(
            {"type": "payment.process/v1", "data": {"merchant_id": merchant.merchant_id}}
        ).encode()
        for _ in range(5)
    ]
    _produce(
        service,
        [(c.data.transaction_id, c.model_dump_json().encode()) for c in refused]
        + [(f"junk_{i}", j) for i, j in enumerate(junk)],
    )
    ids = [c.data.refund_id for c in refused]

    async def recorded() -> bool:
        conn = await asyncpg.connect(service.database_url, timeout=10)
        try:
            n = await conn.fetchval(
                "SELECT count(*) FROM refusals WHERE command_id = ANY($1::text[])", ids
            )
        finally:
            await conn.close()
        return bool(n == len(ids))

    await eventually(recorded, timeout=120, what="the refused refunds to be recorded")
    return captured


async def _snapshot(service: Service, merchant_id: str) -> tuple[str, str]:
    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        return (
            await conn.fetchval(_CHECKSUM, merchant_id),
            await conn.fetchval(_REFUND_CHECKSUM, merchant_id),
        )
    finally:
        await conn.close()


async def _bank_counters(service: Service) -> dict[str, int]:
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{service.bank_url}/sim/stats") as resp,
    ):
        stats = await resp.json()
    return {op: int(stats["received"].get(op, 0)) for op in MONEY_MOVING}


@pytest.mark.timeout(900)
async def test_replaying_a_whole_history_moves_no_money_and_changes_nothing(
    service: Service, http: aiohttp.ClientSession, merchant: Merchant
) -> None:
    await _history(service, http, merchant)
    code, report = ops(service, "verify", "--merchant", merchant.merchant_id)
    assert (code, report["violations"]) == (0, [])
    before, counters = await _snapshot(service, merchant.merchant_id), await _bank_counters(service)

    code, dry = ops(service, "replay", "--merchant", merchant.merchant_id)
    assert code == 0
    assert dry["selected"] == PAYMENTS + MANUAL * 2 + 40 + 10 + 10 + 5
    kinds = {c["kind"] for c in dry["commands"]}
    assert kinds == {"payment", "capture", "cancel", "refund", "invalid"}
    moving = ("charge", "refund", "capture", "void", "refused")
    assert dry["counts"] == {**dict.fromkeys(moving, 0), "noop": dry["selected"]}

    code, done = ops(service, "replay", "--merchant", merchant.merchant_id, "--execute")
    assert (code, done["executed"], done["unanswered"]) == (0, True, 0)
    refused = [c for c in done["commands"] if c["result"] == "error:refund_exceeds_remaining"]
    assert len(refused) == 10  # the same refusal, answered again
    # Every replayed command (original signature, plus `replay-of`) verified: none was refused
    # for its signature or producer, each got its result.
    results = [c["result"] for c in done["commands"] if c["kind"] != "invalid"]
    assert None not in results
    assert not [r for r in results if r.removeprefix("error:") in REFUSAL_CODES], results
    assert await _bank_counters(service) == counters  # no bank call that moves money
    assert await _snapshot(service, merchant.merchant_id) == before

    code, again = ops(service, "replay", "--merchant", merchant.merchant_id)
    # The history and its replayed copies: every one a no-op now.
    assert again["counts"]["noop"] == again["selected"] == 2 * dry["selected"]
    code, report = ops(service, "verify", "--merchant", merchant.merchant_id)
    assert (code, report["violations"]) == (0, [])


@pytest.mark.timeout(300)
async def test_verify_names_the_payment_whose_audit_row_was_edited(
    service: Service, http: aiohttp.ClientSession, merchant: Merchant
) -> None:
    paid = [await _pay(http, merchant, "4242424242424242", f"k-{i}") for i in range(3)]
    target = paid[1]["transaction_id"]
    code, report = ops(service, "verify", "--merchant", merchant.merchant_id)
    assert (code, report["violations"]) == (0, [])
    conn = await asyncpg.connect(service.stack.owner_url, timeout=10)
    try:
        async with conn.transaction():
            await conn.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_delete")
            await conn.execute(
                "UPDATE audit_log SET to_status = 'captured', details = '{}'"
                " WHERE id = (SELECT min(id) FROM audit_log WHERE transaction_id = $1)",
                target,
            )
            await conn.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_delete")
    finally:
        await conn.close()
    code, report = ops(service, "verify", "--merchant", merchant.merchant_id)
    assert code == 1
    assert {(v["check"], v["transaction_id"]) for v in report["violations"]} >= {
        ("audit_chain", target)
    }
    assert {v["transaction_id"] for v in report["violations"]} == {target}


@pytest.mark.timeout(400)
async def test_inspect_dlq_and_offsets(
    service: Service, http: aiohttp.ClientSession, merchant: Merchant
) -> None:
    paid = await _pay(http, merchant, "4242424242424242", "inspect-me")
    txn = paid["transaction_id"]
    wanted = {service.topic("requests"), service.topic("results"), service.topic("audit")}

    async def relayed() -> dict[str, Any] | None:
        # The audit events follow the rows' commit (the relay), so they may trail the answer.
        _, found = ops(service, "inspect", txn)
        return found if wanted <= {m["topic"] for m in found["messages"]} else None

    await eventually(relayed, timeout=60, what="the payment's audit events")
    code, timeline = ops(service, "inspect", txn)
    assert (code, timeline["verdict"]) == (0, "consistent"), timeline["disagreements"]
    assert wanted <= {m["topic"] for m in timeline["messages"]}
    assert [a["to_status"] for a in timeline["audit"]] == ["processing", "captured"]  # one sale
    assert timeline["bank"]["captured_minor"] == 4000
    code, by_key = ops(
        service, "inspect", "--merchant", merchant.merchant_id, "--key", "inspect-me"
    )
    assert by_key["transaction_id"] == txn
    assert "4242424242424242" not in json.dumps(timeline)

    junk = json.dumps({"type": "payment.process/v1", "data": {"merchant_id": merchant.merchant_id}})
    _produce(service, [("junk_dlq", junk.encode())])

    async def dead_lettered() -> dict[str, Any] | None:
        _, found = ops(service, "dlq", "list", "--merchant", merchant.merchant_id)
        return found if found["total"] == 1 else None

    found = await eventually(dead_lettered, timeout=120, what="the junk on the DLQ")
    assert found["by_reason"] == {"invalid_command": 1}
    (line,) = found["messages"]
    shown = service.run_cli(
        "ops", "dlq", "show", str(line["partition"]), str(line["offset"]),
        extra_env=service.stack.kafka_env("ops"),
    )  # fmt: skip
    assert json.loads(shown.stdout)["headers"]["dlq-reason"] == "invalid_command"
    # The letter names where its original sits, and a redrive evaluates that original (the
    # letter's redacted bytes would not verify), not the letter.
    requests = service.topic("requests")
    assert line["origin"].startswith(f"{requests}:"), line
    code, redrive = ops(service, "dlq", "redrive", "--merchant", merchant.merchant_id)
    assert (code, redrive["executed"], redrive["counts"]["noop"]) == (0, False, 1)
    assert [c["source"] for c in redrive["commands"]] == [line["origin"]]
    assert redrive["left_out"] == []

    code, group = ops(service, "offsets", "show")
    assert group["members"], group  # the session's processor is running
    result = service.run_cli(
        "ops", "offsets", "reset", "--to-offset", "0", check=False,
        extra_env=service.stack.kafka_env("ops"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "live member" in result.stderr
