"""Reading our topics as the operators' principal: a bounded scan, never a group member.

`scan` assigns the partitions itself (no consumer group join, no commit, so it takes nothing
from the processor) and reads from a start to the end offsets seen when it began, so it
always finishes. Starts and ends are offsets or times (`offsets_for_times`). What it shows of
a message is redacted: card numbers masked, the signature shortened, secrets' values hidden.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from confluent_kafka import Consumer, KafkaException, TopicPartition

from payment_service.cards.redact import redact_text, redact_value
from payment_service.config.settings import KafkaSettings
from payment_service.kafka.acls import OPS_GROUP_PREFIX
from payment_service.kafka.security import client_config

CALL_TIMEOUT_SECONDS: Final = 10.0
POLL_SECONDS: Final = 1.0
# A scan that receives nothing for this long while offsets remain stops (a deleted segment).
IDLE_LIMIT_SECONDS: Final = 30.0
_SECRET_HEADERS: Final = ("authorization", "password", "secret", "token", "api-key")


@dataclass(frozen=True)
class Bound:
    """Where a scan starts or ends: an offset (every partition, or the one selected) or a time."""

    offset: int | None = None
    time: dt.datetime | None = None


@dataclass(frozen=True)
class Message:
    topic: str
    partition: int
    offset: int
    timestamp: dt.datetime | None
    key: str | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode(errors="replace")
        return None

    def envelope(self) -> dict[str, Any] | None:
        try:
            parsed = json.loads(self.value)
        except (ValueError, RecursionError):
            return None
        return parsed if isinstance(parsed, dict) else None

    @property
    def type(self) -> str:
        env = self.envelope()
        kind = env.get("type") if env else None
        return str(kind) if isinstance(kind, str) else "(not json)"

    def shown(self, *, with_body: bool = False) -> dict[str, Any]:
        """What an operator sees: no secret, no card number."""
        view: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "time": self.timestamp.isoformat() if self.timestamp else None,
            "key": self.key,
            "type": self.type,
            "producer": self.header("producer-id"),
            "headers": {k: shown_header(k, v) for k, v in self.headers},
        }
        if with_body:
            env = self.envelope()
            view["body"] = redact_value(env) if env is not None else _shown_bytes(self.value)
        return view


def shown_header(name: str, value: bytes) -> str:
    lowered = name.lower()
    if any(word in lowered for word in _SECRET_HEADERS):
        return "[REDACTED]"
    text = value.decode(errors="replace")
    if lowered == "signature" and len(text) > 16:
        return text[:12] + "..."
    return redact_text(text)


def _shown_bytes(value: bytes) -> str:
    return redact_text(value[:2000].decode(errors="replace"))


def scan(
    kafka: KafkaSettings,
    topic: str,
    *,
    start: Bound | None = None,
    end: Bound | None = None,
    partitions: Sequence[int] | None = None,
    keep: Callable[[Message], bool] | None = None,
    on_message: Callable[[], None] | None = None,
) -> Iterator[Message]:
    """The messages of `topic` from `start` to `end` (inclusive offsets; default: all of it)."""
    consumer = Consumer(
        client_config(
            kafka,
            **{
                "group.id": f"{OPS_GROUP_PREFIX}{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "auto.offset.reset": "earliest",
                "socket.timeout.ms": int(CALL_TIMEOUT_SECONDS * 1000),
            },
        )
    )
    try:
        plan = _plan(consumer, topic, start, end, partitions)
        if not plan:
            return
        consumer.assign([TopicPartition(topic, p, first) for p, (first, _) in plan.items()])
        yield from _read(consumer, plan, keep, on_message)
    finally:
        consumer.close()


def partitions_of(consumer: Consumer, topic: str) -> list[int]:
    metadata = consumer.list_topics(topic, timeout=CALL_TIMEOUT_SECONDS)
    described = metadata.topics.get(topic)
    if described is None or described.error is not None:
        raise KafkaException(f"topic {topic} cannot be described: {described and described.error}")
    return sorted(described.partitions)


def _plan(
    consumer: Consumer,
    topic: str,
    start: Bound | None,
    end: Bound | None,
    partitions: Sequence[int] | None,
) -> dict[int, tuple[int, int]]:
    """partition -> (first offset, last offset + 1); empty ranges left out."""
    plan: dict[int, tuple[int, int]] = {}
    for p in partitions if partitions is not None else partitions_of(consumer, topic):
        low, high = consumer.get_watermark_offsets(
            TopicPartition(topic, p), timeout=CALL_TIMEOUT_SECONDS
        )
        first, stop = low, high
        if start is not None and start.offset is not None:
            first = max(low, start.offset)
        elif start is not None and start.time is not None:
            first = _offset_at(consumer, topic, p, start.time, high)
        if end is not None and end.offset is not None:
            stop = min(high, end.offset + 1)
        elif end is not None and end.time is not None:
            # Inclusive: everything before the first message stamped after `end.time`.
            later = end.time + dt.timedelta(milliseconds=1)
            stop = _offset_at(consumer, topic, p, later, high)
        if first < stop:
            plan[p] = (first, stop)
    return plan


def _offset_at(consumer: Consumer, topic: str, partition: int, when: dt.datetime, high: int) -> int:
    """The first offset stamped at or after `when` (`high`: none is)."""
    millis = int(when.timestamp() * 1000)
    (found,) = consumer.offsets_for_times(
        [TopicPartition(topic, partition, millis)], timeout=CALL_TIMEOUT_SECONDS
    )
    offset: int = found.offset
    return offset if offset >= 0 else high


def _read(
    consumer: Consumer,
    plan: dict[int, tuple[int, int]],
    keep: Callable[[Message], bool] | None,
    on_message: Callable[[], None] | None,
) -> Iterator[Message]:
    topic = consumer.assignment()[0].topic
    remaining = {p: stop for p, (_, stop) in plan.items()}
    idle = 0.0
    while remaining and idle < IDLE_LIMIT_SECONDS:
        batch = consumer.consume(num_messages=500, timeout=POLL_SECONDS)
        idle = idle + POLL_SECONDS if not batch else 0.0
        for raw in batch:
            if raw.error() is not None:
                raise KafkaException(raw.error())
            p, offset = raw.partition(), raw.offset()
            if p not in remaining or offset >= remaining[p]:
                continue
            message = _message(raw)
            if on_message is not None:
                on_message()
            if keep is None or keep(message):
                yield message
        # By position, not by the last message seen: offsets may have gaps (control records).
        positions = consumer.position([TopicPartition(topic, p) for p in remaining])
        for tp in positions:
            if tp.offset >= remaining[tp.partition]:
                del remaining[tp.partition]


def _message(raw: Any) -> Message:
    kind, millis = raw.timestamp()
    stamp = dt.datetime.fromtimestamp(millis / 1000, dt.UTC) if kind and millis >= 0 else None
    key = raw.key()
    return Message(
        topic=raw.topic(),
        partition=raw.partition(),
        offset=raw.offset(),
        timestamp=stamp,
        key=key.decode(errors="replace") if key is not None else None,
        value=raw.value() or b"",
        headers=tuple((k, v or b"") for k, v in (raw.headers() or [])),
    )
