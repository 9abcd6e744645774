"""Has the processor's consumer group processed every command produced up to now?

`cards keys retire` asks this before it deletes a key: a command on `payments.requests` that is
not yet processed may carry a card number sealed under the key being retired. It reads the
topic's end offsets once, then waits until the group's committed offsets reach them (the group
commits every `PROCESSOR_COMMIT_INTERVAL_SECONDS`), or the deadline passes. It only reads
committed offsets: it never joins the group, so it takes no partition from the processor.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, TopicPartition

from payment_service.config.settings import KafkaSettings
from payment_service.kafka.security import client_config

CALL_TIMEOUT_SECONDS = 10.0


def unprocessed_commands(kafka: KafkaSettings, *, wait_seconds: float) -> int:
    """How many commands produced before this call the group has still not processed, after
    waiting up to `wait_seconds` for it to catch up (0: all of them are processed)."""
    consumer = Consumer(
        client_config(kafka, **{"group.id": kafka.consumer_group, "enable.auto.commit": False})
    )
    try:
        topic = kafka.topic_requests
        metadata = consumer.list_topics(topic, timeout=CALL_TIMEOUT_SECONDS)
        partitions = [TopicPartition(topic, p) for p in metadata.topics[topic].partitions]
        marks = {
            tp.partition: consumer.get_watermark_offsets(tp, timeout=CALL_TIMEOUT_SECONDS)
            for tp in partitions
        }
        deadline = time.monotonic() + wait_seconds
        while True:
            committed = consumer.committed(partitions, timeout=CALL_TIMEOUT_SECONDS)
            remaining = 0
            for tp in committed:
                low, high = marks[tp.partition]
                # No committed offset yet: everything still in the partition is unprocessed.
                done = tp.offset if tp.offset >= 0 else low
                remaining += max(0, high - done)
            if remaining == 0 or time.monotonic() >= deadline:
                return remaining
            time.sleep(0.5)
    finally:
        consumer.close()
