"""What the card-custody end-to-end tests share: raw Kafka commands, cards on file, outcomes."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import aiohttp
import asyncpg
from confluent_kafka import Producer

from payment_service.cards.crypto import CardSealer
from payment_service.cards.keys import PublicCardKey
from payment_service.cards.public_key import StaticPublicKey
from payment_service.core.masking import CardNumber
from tests.e2e.helpers import decoded, ledger, read_topic
from tests.fixtures.service import Merchant, Service, eventually

YEAR = dt.datetime.now(dt.UTC).year + 2


def card_data(card: str = "4242424242424242", **changes: Any) -> dict[str, Any]:
    return {
        "card_number": card,
        "expiry_month": 12,
        "expiry_year": YEAR,
        "cvv": "123",
        "cardholder_name": "Card On File",
        **changes,
    }


async def store_card(
    http: aiohttp.ClientSession, merchant: Merchant, card: str = "4242424242424242"
) -> dict[str, Any]:
    body = {"card_data": card_data(card), "metadata": {"customer": "c1"}}
    async with http.post("/api/v1/payment_methods", json=body, headers=merchant.headers) as resp:
        stored: dict[str, Any] = await resp.json()
        assert resp.status == 200, stored
    return stored


def by_card_on_file(merchant: Merchant, method_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "merchant_id": merchant.merchant_id,
        "amount": "12.34",
        "currency": "USD",
        "payment_method_id": method_id,
        **extra,
    }


async def public_key(http: aiohttp.ClientSession, merchant: Merchant) -> PublicCardKey:
    async with http.get("/api/v1/keys/card", headers=merchant.headers) as resp:
        assert resp.status == 200
        return PublicCardKey.parse(await resp.text())


def sealer_for(key: PublicCardKey) -> CardSealer:
    """What any producer holding the published key can do (encrypt-only)."""
    return CardSealer(StaticPublicKey(key))


def command(merchant_id: str, transaction_id: str, **data: Any) -> dict[str, Any]:
    return {
        "type": "payment.process/v1",
        "message_id": str(uuid.uuid4()),
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "data": {
            "transaction_id": transaction_id,
            "merchant_id": merchant_id,
            "amount_minor": 2500,
            "currency": "USD",
            **data,
        },
    }


def sealed_card(envelope: str, card: str = "4242424242424242") -> dict[str, Any]:
    return {
        "number_envelope": envelope,
        "brand": "visa",
        "last4": card[-4:],
        "expiry_month": 12,
        "expiry_year": YEAR,
        "holder_name": "Direct Producer",
    }


def sealed_number(key: PublicCardKey, transaction_id: str, card: str = "4242424242424242") -> str:
    return sealer_for(key).seal_card_number(CardNumber(card), transaction_id)


async def produce(service: Service, message: dict[str, Any]) -> str:
    """Produce a command as a direct producer would (no reply partition; signed with the
    API's key, which may act for any merchant); its transaction id."""
    transaction_id: str = message["data"]["transaction_id"]

    def send() -> None:
        producer = Producer(service.kafka_config())
        value = json.dumps(message).encode()
        producer.produce(
            service.topic("requests"),
            key=transaction_id.encode(),
            value=value,
            headers=service.signed_headers(transaction_id.encode(), value),
        )
        assert producer.flush(30) == 0

    await asyncio.to_thread(send)
    return transaction_id


async def settled_row(service: Service, transaction_id: str) -> asyncpg.Record:
    """The payment's row once it is final (captured or failed)."""

    async def final() -> asyncpg.Record | None:
        conn = await asyncpg.connect(service.database_url, timeout=10)
        try:
            row: asyncpg.Record | None = await conn.fetchrow(
                "SELECT * FROM transactions WHERE transaction_id = $1", transaction_id
            )
        finally:
            await conn.close()
        return row if row is not None and row["status"] in ("captured", "failed") else None

    return await eventually(final, timeout=60, what=f"payment {transaction_id} to settle")


async def refusal(service: Service, transaction_id: str) -> dict[str, Any]:
    """The error result the processor published for a refused command."""

    async def found() -> dict[str, Any] | None:
        messages = await asyncio.to_thread(read_topic, service, service.topic("results"))
        for result in decoded(messages):
            data: dict[str, Any] = result["data"]
            if data["transaction_id"] == transaction_id and data.get("error"):
                return data
        return None

    return await eventually(found, timeout=60, what=f"the refusal of {transaction_id}")


async def nothing_charged(service: Service, transaction_id: str) -> None:
    assert await ledger(service, transaction_id) == []


def unique_txn() -> str:
    return f"direct-{uuid.uuid4()}"
