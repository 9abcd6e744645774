"""The hold-out run's pure parts: vegeta's targets, and its results read back as the bench's."""

from __future__ import annotations

import base64
import json

import orjson
from bench.holdout import percentile, summarize, targets
from bench.holdout_report import spread


def test_every_target_is_a_payment_with_its_own_idempotency_key() -> None:
    lines = list(targets("http://127.0.0.1:8000/", "psk_test", "m_1", 5, "r1"))

    decoded = [orjson.loads(line) for line in lines]
    assert len(decoded) == 5
    assert {t["url"] for t in decoded} == {"http://127.0.0.1:8000/api/v1/payments/process"}
    keys = [t["header"]["Idempotency-Key"][0] for t in decoded]
    assert len(set(keys)) == 5
    assert all(t["header"]["Authorization"] == ["Bearer psk_test"] for t in decoded)
    body = json.loads(base64.b64decode(decoded[0]["body"]))
    assert body["merchant_id"] == "m_1"
    assert body["amount"] == "25.00"


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]

    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 99.9) == 100.0
    assert percentile([], 50) is None


def _result(
    code: int, latency_ms: float, second: int, body: dict[str, str] | None
) -> dict[str, object]:
    return {
        "code": code,
        "latency": int(latency_ms * 1e6),
        "timestamp": f"2026-12-03T10:00:{second:02d}.000000000Z",
        "body": base64.b64encode(json.dumps(body).encode()).decode() if body else "",
        "error": "" if code else "dial tcp: connection refused",
    }


def test_results_give_latency_status_errors_and_the_accepted_payments() -> None:
    results = [
        _result(200, 10.0, 0, {"transaction_id": "txn_a", "status": "captured"}),
        _result(202, 30.0, 1, {"transaction_id": "txn_b", "status": "processing"}),
        _result(503, 5.0, 2, None),
        _result(0, 30_000.0, 3, None),
    ]

    summary = summarize(results)

    assert summary["sent"] == 4
    assert summary["sent_rps"] == 1.0
    assert summary["payments"] == {"txn_a": "captured", "txn_b": "processing"}
    assert summary["status"] == {
        "payment_200": 1,
        "payment_202": 1,
        "payment_503": 1,
        "payment_0": 1,
    }
    assert summary["errors"] == {"http_503": 1, "dial tcp: connection refused": 1}
    assert summary["latency_ms"]["p50"] == 10.0
    assert summary["latency_ms"]["max"] == 30_000.0
    assert summary["slowest_by_second_ms"]["10:00:01"] == 30.0


def test_spread_names_the_median_and_the_furthest_runs() -> None:
    assert spread([100.0, 80.0, 130.0]) == "100.0 (-20 %/+30 %)"
    assert spread([]) == "-"
