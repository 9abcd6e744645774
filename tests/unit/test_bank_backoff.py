"""Retry timing (capped exponential backoff, full jitter) and idempotency-key derivation."""

from __future__ import annotations

import random

import pytest

from payment_service.bank.retry import backoff_ceiling, backoff_delay
from payment_service.core.ids import idempotency_key

pytestmark = pytest.mark.unit


def test_ceiling_doubles_from_base_until_the_cap() -> None:
    ceilings = [backoff_ceiling(n, base=0.05, cap=1.0) for n in range(7)]
    assert ceilings == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_ceiling_of_a_huge_retry_number_is_the_cap() -> None:
    assert backoff_ceiling(10_000, base=0.05, cap=2.0) == 2.0


def test_negative_retry_number_is_refused() -> None:
    with pytest.raises(ValueError, match="retry"):
        backoff_ceiling(-1, base=0.05, cap=2.0)


@pytest.mark.parametrize("retry", [0, 1, 3, 10])
def test_full_jitter_spans_zero_to_the_ceiling(retry: int) -> None:
    ceiling = backoff_ceiling(retry, base=0.05, cap=2.0)
    assert backoff_delay(retry, base=0.05, cap=2.0, rand=lambda: 0.0) == 0.0
    assert backoff_delay(retry, base=0.05, cap=2.0, rand=lambda: 0.5) == pytest.approx(ceiling / 2)
    highest = backoff_delay(retry, base=0.05, cap=2.0, rand=lambda: 0.999999)
    assert highest == pytest.approx(ceiling, rel=1e-5)
    assert highest < ceiling


def test_default_jitter_stays_within_bounds_and_varies() -> None:
    delays = [backoff_delay(4, base=0.05, cap=2.0) for _ in range(200)]
    assert all(0.0 <= d <= 0.8 for d in delays)
    assert len(set(delays)) > 1


def test_seeded_jitter_is_reproducible() -> None:
    first = [backoff_delay(2, base=0.1, cap=5.0, rand=random.Random(7).random) for _ in range(3)]
    again = [backoff_delay(2, base=0.1, cap=5.0, rand=random.Random(7).random) for _ in range(3)]
    assert first == again


def test_idempotency_key_is_derived_from_our_id_and_the_operation() -> None:
    assert idempotency_key("txn_123", "authorize") == "txn_123:authorize"
    assert idempotency_key("txn_123", "authorize") == idempotency_key("txn_123", "authorize")
    assert idempotency_key("txn_123", "capture") != idempotency_key("txn_123", "authorize")


@pytest.mark.parametrize(("entity", "operation"), [("", "authorize"), ("txn_1", "")])
def test_idempotency_key_needs_both_parts(entity: str, operation: str) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        idempotency_key(entity, operation)
