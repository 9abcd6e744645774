"""`ops dlq list | show`: what was dead-lettered and why, redacted (`redrive`: operators/replay).

Each DLQ message keeps the command's original bytes and headers plus the reason
(`dlq-reason`: `invalid_command` or `processing_failed`), a summary without input values
(`dlq-error`) and the topic it came from (`dlq-source`). Bodies are shown through the log
redaction (card numbers masked), so a DLQ'd message can be read without exposing card data.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from payment_service.config.settings import KafkaSettings
from payment_service.operators.messages import Bound, Message, scan, shown_header
from payment_service.operators.replay import Selector
from payment_service.schemas.messages import HEADER_DLQ_ERROR, HEADER_DLQ_REASON


def listing(kafka: KafkaSettings, selector: Selector) -> dict[str, Any]:
    """The selected DLQ messages (one line each) and their counts by reason."""
    messages = list(
        scan(
            kafka,
            kafka.topic_dlq,
            start=selector.start,
            end=selector.end,
            partitions=selector.partitions,
            keep=selector.keeps,
        )
    )
    reasons = Counter(m.header(HEADER_DLQ_REASON) or "(none)" for m in messages)
    return {
        "topic": kafka.topic_dlq,
        "total": len(messages),
        "by_reason": dict(sorted(reasons.items())),
        "messages": [_line(m) for m in messages],
    }


def show(kafka: KafkaSettings, partition: int, offset: int) -> dict[str, Any] | None:
    """One DLQ message with its (redacted) body, or None when there is none at that offset."""
    at = Bound(offset=offset)
    for message in scan(kafka, kafka.topic_dlq, start=at, end=at, partitions=[partition]):
        return message.shown(with_body=True)
    return None


def _line(m: Message) -> dict[str, Any]:
    error = m.header(HEADER_DLQ_ERROR)
    return {
        "partition": m.partition,
        "offset": m.offset,
        "time": m.timestamp.isoformat() if m.timestamp else None,
        "key": m.key,
        "type": m.type,
        "producer": m.header("producer-id"),
        "reason": m.header(HEADER_DLQ_REASON),
        "error": shown_header(HEADER_DLQ_ERROR, error.encode()) if error else None,
    }
