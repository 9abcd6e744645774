"""What end-to-end tests read to check the invariants: the bank ledger, PostgreSQL, the topics."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any

import aiohttp
import asyncpg
from confluent_kafka import Consumer, TopicPartition

from payment_service.kafka.acls import OPS_GROUP_PREFIX
from payment_service.streams.dlq import redacted_text
from tests.fixtures.service import Service


async def ledger(service: Service, reference: str) -> list[dict[str, Any]]:
    """The bank simulator's ledger entries for one payment reference."""
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
        session.get(f"{service.bank_url}/sim/ledger", params={"reference": reference}) as resp,
    ):
        resp.raise_for_status()
        data = await resp.json()
    entries: list[dict[str, Any]] = data["entries"] if isinstance(data, dict) else data
    return entries


def executed(entries: list[dict[str, Any]], operation: str) -> list[dict[str, Any]]:
    """Ledger entries of one operation that the bank carried out (approved)."""
    return [e for e in entries if e["operation"] == operation and e["outcome"] == "approved"]


async def db_payment(service: Service, transaction_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT * FROM transactions WHERE transaction_id = $1", transaction_id
        )
        return row
    finally:
        await conn.close()


async def db_audit(service: Service, transaction_id: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT * FROM audit_log WHERE transaction_id = $1 ORDER BY id", transaction_id
        )
        return rows
    finally:
        await conn.close()


def read_topic(
    service: Service, topic: str, *, since_seconds: float = 600.0, timeout: float = 60.0
) -> list[Any]:
    """Every message now in `topic` (all partitions) written in the last `since_seconds`.

    The window keeps reads short against a long-lived stack (`make test-api`) and still covers
    everything a test wrote.
    """
    consumer = Consumer(
        service.kafka_config(
            "ops",
            **{
                "group.id": f"{OPS_GROUP_PREFIX}test-reader-{random.random()}",
                "enable.auto.commit": False,
            },
        )
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        ends = {}
        for p in partitions:
            _low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
        since_ms = int((time.time() - since_seconds) * 1000)
        starts = consumer.offsets_for_times(
            [TopicPartition(topic, p, since_ms) for p in partitions], timeout=10
        )
        begin = {tp.partition: tp.offset if tp.offset >= 0 else ends[tp.partition] for tp in starts}
        consumer.assign([TopicPartition(topic, p, begin[p]) for p in partitions])
        messages: list[Any] = []
        deadline = time.monotonic() + timeout
        positions = dict(begin)
        while any(positions[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out reading {topic}")
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            messages.append(message)
            positions[message.partition()] = message.offset() + 1
        return messages
    finally:
        consumer.close()


async def topic_messages(service: Service, topic: str) -> list[Any]:
    return await asyncio.to_thread(read_topic, service, topic)


def dlq_findable_id(prefix: str) -> str:
    """A random id that the dead letter keeps as it is, for a test to find its letter by.

    About one random hex id in 120 holds a Luhn-valid run of 13 or more digits; the DLQ masks such
    a run as a card number (streams/dlq.py), and a test looking for the id would never find it.
    """
    while True:
        candidate = f"{prefix}{uuid.uuid4().hex}"
        if redacted_text(candidate) == candidate:
            return candidate


def decoded(messages: list[Any]) -> list[dict[str, Any]]:
    out = []
    for m in messages:
        try:
            out.append(json.loads(m.value()))
        except ValueError:
            continue
    return out


def canary_card() -> str:
    """A random Luhn-valid Visa number that no fixture or default could contain."""
    digits = [4] + [random.randint(0, 9) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):
        v = d * 2 if i % 2 == 0 else d
        total += v - 9 if v > 9 else v
    return "".join(map(str, digits)) + str((10 - total % 10) % 10)
