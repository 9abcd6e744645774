"""Consumer lag from librdkafka's statistics (the JSON its `stats_cb` gets every interval).

For each partition assigned to the consumer, librdkafka reports `consumer_lag`: the partition's
high watermark minus the group's committed offset. Unassigned partitions report -1 and the
pseudo-partition "-1" holds topic totals; both are left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    lag: int


def partition_lags(stats_json: str) -> list[PartitionLag]:
    """The lag of every assigned partition in one statistics report (none if unreadable)."""
    try:
        stats: Any = json.loads(stats_json)
        topics = stats.get("topics") or {}
    except (ValueError, AttributeError):
        return []
    lags: list[PartitionLag] = []
    for topic, body in topics.items():
        for number, partition in (body.get("partitions") or {}).items():
            lag = partition.get("consumer_lag", -1)
            if number == "-1" or not isinstance(lag, int) or lag < 0:
                continue
            lags.append(PartitionLag(topic, int(number), lag))
    return lags
