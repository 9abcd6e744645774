"""Consumer lag read from librdkafka's statistics JSON."""

from __future__ import annotations

import json

import pytest

from payment_service.kafka.stats import PartitionLag, partition_lags

pytestmark = pytest.mark.unit


def stats(partitions: dict[str, dict[str, int]]) -> str:
    return json.dumps(
        {"name": "rdkafka#consumer-1", "topics": {"payments.requests": {"partitions": partitions}}}
    )


def test_lag_of_each_assigned_partition() -> None:
    report = stats(
        {
            "0": {"consumer_lag": 7, "committed_offset": 3, "hi_offset": 10},
            "1": {"consumer_lag": 0},
            "2": {"consumer_lag": -1},  # not assigned to this consumer
            "-1": {"consumer_lag": -1},  # librdkafka's topic-level pseudo partition
        }
    )
    assert partition_lags(report) == [
        PartitionLag("payments.requests", 0, 7),
        PartitionLag("payments.requests", 1, 0),
    ]


@pytest.mark.parametrize("text", ["", "not json", "[]", json.dumps({"topics": None})])
def test_an_unreadable_report_gives_nothing(text: str) -> None:
    assert partition_lags(text) == []
