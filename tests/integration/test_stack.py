"""The local stack is real: messages through the broker, SQL in PostgreSQL, commands in Redis."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from tests.fixtures.stack import StackInfo

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 30.0


def test_kafka_round_trip_keeps_per_key_order(stack: StackInfo) -> None:
    """Create a topic, produce keyed messages, read them all back from every partition."""
    # As the super user `admin`: this checks the broker, not the ACLs (test_kafka_security.py).
    admin = AdminClient(stack.kafka_config("admin"))
    topic = f"it.stack.{uuid.uuid4().hex[:12]}"
    partitions = 3
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[
        topic
    ].result(timeout=DEADLINE_SECONDS)
    try:
        options: dict[str, Any] = {"enable.idempotence": True, "acks": "all", "linger.ms": 1}
        producer = Producer(stack.kafka_config("admin", **options))
        sent: dict[str, list[str]] = defaultdict(list)
        delivered: list[tuple[str, int]] = []

        def on_delivery(err: KafkaError | None, msg: object) -> None:
            assert err is None, err
            delivered.append((msg.key().decode(), msg.partition()))  # type: ignore[attr-defined]

        n = 200
        for i in range(n):
            key, value = f"key-{i % 17}", f"value-{i}"
            sent[key].append(value)
            producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
        assert producer.flush(DEADLINE_SECONDS) == 0
        assert len(delivered) == n
        # The same key always lands on the same partition.
        partition_of: dict[str, set[int]] = defaultdict(set)
        for key, partition in delivered:
            partition_of[key].add(partition)
        assert all(len(p) == 1 for p in partition_of.values())

        reader: dict[str, Any] = {"group.id": f"it-{uuid.uuid4().hex}", "enable.auto.commit": False}
        consumer = Consumer(stack.kafka_config("admin", **reader))
        try:
            consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
            received: dict[str, list[str]] = defaultdict(list)
            count = 0
            deadline = time.monotonic() + DEADLINE_SECONDS
            while count < n and time.monotonic() < deadline:
                msg = consumer.poll(0.5)
                if msg is None:
                    continue
                assert msg.error() is None, msg.error()
                received[msg.key().decode()].append(msg.value().decode())
                count += 1
        finally:
            consumer.close()
        assert count == n, f"received {count} of {n} messages before the deadline"
        assert received == sent  # every message, in order per key
    finally:
        admin.delete_topics([topic])[topic].result(timeout=DEADLINE_SECONDS)


def test_kafka_broker_never_auto_creates_topics(stack: StackInfo) -> None:
    admin = AdminClient(stack.kafka_config("admin"))
    metadata = admin.list_topics(timeout=DEADLINE_SECONDS)
    broker_id = next(iter(metadata.brokers))
    resource = ConfigResource(ConfigResource.Type.BROKER, str(broker_id))
    configs = admin.describe_configs([resource])[resource].result(timeout=DEADLINE_SECONDS)
    assert configs["auto.create.topics.enable"].value == "false"


async def test_postgres_executes_sql(stack: StackInfo) -> None:
    conn = await asyncpg.connect(stack.database_url, timeout=10, command_timeout=10)
    try:
        await conn.execute(
            "CREATE TEMP TABLE it_stack (id bigint PRIMARY KEY, amount_minor bigint NOT NULL,"
            " currency char(3) NOT NULL)"
        )
        await conn.executemany(
            "INSERT INTO it_stack VALUES ($1, $2, $3)",
            [(1, 9999, "USD"), (2, 500, "JPY"), (3, 1234, "KWD")],
        )
        rows = await conn.fetch("SELECT id, amount_minor, currency FROM it_stack ORDER BY id")
        assert [tuple(r) for r in rows] == [(1, 9999, "USD"), (2, 500, "JPY"), (3, 1234, "KWD")]
        total = await conn.fetchval("SELECT sum(amount_minor) FROM it_stack WHERE id > 1")
        assert total == 1734
        with pytest.raises(asyncpg.UniqueViolationError):
            await conn.execute("INSERT INTO it_stack VALUES (1, 1, 'EUR')")
    finally:
        await conn.close(timeout=10)


async def test_redis_set_with_ttl(stack: StackInfo) -> None:
    client = aioredis.from_url(
        stack.redis_url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True
    )
    try:
        key = f"it:stack:{uuid.uuid4().hex}"
        assert await client.set(key, "hello", ex=60)
        assert await client.get(key) == "hello"
        ttl = await client.ttl(key)
        assert 0 < ttl <= 60
        assert await client.delete(key) == 1
        assert await client.get(key) is None
    finally:
        await client.aclose()
