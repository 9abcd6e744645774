"""`ops dlq list | show`: what was dead-lettered and why, redacted; `originals` for `redrive`.

Each DLQ message keeps the command's bytes and headers without card data, plus the reason
(`dlq-reason`: `invalid_command` or `processing_failed`), a summary without input values
(`dlq-error`), the topic it came from (`dlq-source`) and where the original sits
(`dlq-origin`: `<topic>:<partition>:<offset>`, exact even where masking changed the key or ids).
Bodies are shown through the log redaction (card numbers masked), so a DLQ'd message can be
read without exposing card data.

A redrive (operators/replay) re-produces the originals, not the letters: a letter's bytes are
redacted (no card envelope, re-serialized), so they would no longer verify against the
producer's signature nor carry the card. A letter whose original is past the requests topic's
retention, or that has no `dlq-origin` (written before it existed), is left out and listed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from payment_service.config.settings import KafkaSettings
from payment_service.operators.messages import Bound, Message, scan, shown_header
from payment_service.operators.replay import Selector
from payment_service.schemas.messages import HEADER_DLQ_ERROR, HEADER_DLQ_ORIGIN, HEADER_DLQ_REASON


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


@dataclass
class Originals:
    """The commands behind some letters, and the letters (`<topic>:<partition>:<offset>`) whose
    original could not be read."""

    found: list[Message] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def originals(
    kafka: KafkaSettings, letters: Sequence[Message], on_letter: Callable[[], None] | None = None
) -> Originals:
    """The original command of each letter, read from where its `dlq-origin` says."""
    out = Originals()
    seen: set[str] = set()
    for letter in letters:
        origin = letter.header(HEADER_DLQ_ORIGIN)
        original = _read_at(kafka, origin) if origin and origin not in seen else None
        if original is not None:
            seen.add(origin or "")
            out.found.append(original)
        elif origin not in seen:  # a second letter of one original is no loss
            out.left_out.append(f"{letter.topic}:{letter.partition}:{letter.offset}")
        if on_letter is not None:
            on_letter()
    return out


def _read_at(kafka: KafkaSettings, origin: str) -> Message | None:
    topic, _, place = origin.partition(":")
    partition, _, offset = place.partition(":")
    if topic != kafka.topic_requests or not partition.isdigit() or not offset.isdigit():
        return None  # only commands are redriven, and only from where they are kept
    at = Bound(offset=int(offset))
    for message in scan(kafka, topic, start=at, end=at, partitions=[int(partition)]):
        return message
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
        "origin": m.header(HEADER_DLQ_ORIGIN),
        "error": shown_header(HEADER_DLQ_ERROR, error.encode()) if error else None,
    }
