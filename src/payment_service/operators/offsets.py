"""`ops offsets show | reset`: the processor's consumer group, read and moved by the operators.

`show` reads the group's committed offsets and the topic's watermarks (it never joins the group)
and its members. `reset` moves the committed offsets `--to-offset N` or `--to-time T` (the first
offset at or after T), and refuses while the group has live members: a running processor would
overwrite the change with its next commit, or process twice what it already did. `--force`
skips this check only; the broker still refuses to move the offsets of a group with members.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from payment_service.config.settings import KafkaSettings
from payment_service.kafka.security import client_config
from payment_service.operators.messages import partitions_of

CALL_TIMEOUT_SECONDS: Final = 10.0


class GroupIsLive(Exception):
    """The group has members: moving its offsets now would be overwritten or double-process."""


@dataclass(frozen=True)
class PartitionOffsets:
    partition: int
    committed: int | None  # None: the group has committed nothing here
    low: int
    high: int
    target: int | None = None  # a reset's new offset

    @property
    def lag(self) -> int:
        done = self.committed if self.committed is not None else self.low
        return max(0, self.high - done)

    def to_json(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "committed": self.committed,
            "low": self.low,
            "high": self.high,
            "lag": self.lag,
            "target": self.target,
        }


@dataclass(frozen=True)
class GroupState:
    group: str
    topic: str
    state: str
    members: tuple[str, ...]
    partitions: tuple[PartitionOffsets, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "topic": self.topic,
            "state": self.state,
            "members": list(self.members),
            "partitions": [p.to_json() for p in self.partitions],
            "lag": sum(p.lag for p in self.partitions),
        }


def show(kafka: KafkaSettings, group: str | None = None) -> GroupState:
    """The group's state, members and offsets on the requests topic."""
    group = group or kafka.consumer_group
    topic = kafka.topic_requests
    state, members = _members(kafka, group)
    consumer = _reader(kafka, group)
    try:
        parts = partitions_of(consumer, topic)
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in parts], timeout=CALL_TIMEOUT_SECONDS
        )
        rows = []
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=CALL_TIMEOUT_SECONDS)
            offset = tp.offset if tp.offset >= 0 else None
            rows.append(PartitionOffsets(tp.partition, offset, low, high))
    finally:
        consumer.close()
    return GroupState(group, topic, state, members, tuple(rows))


def reset(
    kafka: KafkaSettings,
    *,
    to_offset: int | None = None,
    to_time: dt.datetime | None = None,
    partitions: list[int] | None = None,
    force: bool = False,
    dry_run: bool = False,
    group: str | None = None,
) -> GroupState:
    """Move the group's committed offsets; returns the state with each partition's target."""
    if (to_offset is None) == (to_time is None):
        raise ValueError("give exactly one of --to-offset and --to-time")
    current = show(kafka, group)
    if current.members and not force:
        raise GroupIsLive(
            f"group {current.group} has {len(current.members)} live member(s)"
            f" ({', '.join(current.members)}): stop the processor first, or --force"
        )
    chosen = [p for p in current.partitions if partitions is None or p.partition in partitions]
    consumer = _reader(kafka, current.group)
    try:
        targets = [_target(consumer, current.topic, p, to_offset, to_time) for p in chosen]
    finally:
        consumer.close()
    planned = tuple(
        PartitionOffsets(p.partition, p.committed, p.low, p.high, t)
        for p, t in zip(chosen, targets, strict=True)
    )
    if not dry_run:
        request = ConsumerGroupTopicPartitions(
            current.group, [TopicPartition(current.topic, p.partition, p.target) for p in planned]
        )
        admin = AdminClient(client_config(kafka))
        future = admin.alter_consumer_group_offsets([request])[current.group]
        future.result(timeout=CALL_TIMEOUT_SECONDS)
    return GroupState(current.group, current.topic, current.state, current.members, planned)


def _target(
    consumer: Consumer,
    topic: str,
    p: PartitionOffsets,
    to_offset: int | None,
    to_time: dt.datetime | None,
) -> int:
    if to_offset is not None:
        return min(max(to_offset, p.low), p.high)
    assert to_time is not None
    millis = int(to_time.timestamp() * 1000)
    (found,) = consumer.offsets_for_times(
        [TopicPartition(topic, p.partition, millis)], timeout=CALL_TIMEOUT_SECONDS
    )
    return found.offset if found.offset >= 0 else p.high


def _members(kafka: KafkaSettings, group: str) -> tuple[str, tuple[str, ...]]:
    admin = AdminClient(client_config(kafka))
    future = admin.describe_consumer_groups([group], request_timeout=CALL_TIMEOUT_SECONDS)[group]
    described = future.result(timeout=CALL_TIMEOUT_SECONDS)
    members = tuple(f"{m.client_id}@{m.host}" for m in described.members)
    state = getattr(described.state, "name", str(described.state)).lower()
    return state, members


def _reader(kafka: KafkaSettings, group: str) -> Consumer:
    """A consumer with the group's id that never subscribes: it reads committed offsets only."""
    return Consumer(client_config(kafka, **{"group.id": group, "enable.auto.commit": False}))
