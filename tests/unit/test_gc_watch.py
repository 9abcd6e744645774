"""The garbage collector's pauses are timed, logged when slow, and sampled once per interval."""

from __future__ import annotations

import gc
import logging

import pytest

from payment_service.ops import metric_catalog as catalog
from payment_service.ops.gc_watch import GcWatch, freeze_startup


def test_a_collection_is_timed_logged_when_slow_and_sampled_once() -> None:
    with GcWatch(slow_ms=0.0) as watch:
        gc.collect()
        first = dict(watch.sample())
        again = dict(watch.sample())
    assert first[catalog.GC_PAUSE_MAX] > 0
    assert first[catalog.GC_TIME] >= first[catalog.GC_PAUSE_MAX]
    assert again == {catalog.GC_PAUSE_MAX: 0.0, catalog.GC_TIME: 0.0}  # reset by the sample


def test_slow_collections_are_logged_with_their_generation(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, "payment_service.ops.gc_watch"), GcWatch(slow_ms=0.0):
        gc.collect(2)
    logged = [r for r in caplog.records if r.name == "payment_service.ops.gc_watch"]
    assert logged
    assert logged[-1].__dict__["gc_generation"] == 2
    assert logged[-1].__dict__["pause_ms"] >= 0


def test_fast_collections_are_not_logged_and_the_watch_uninstalls(
    caplog: pytest.LogCaptureFixture,
) -> None:
    watch = GcWatch(slow_ms=60_000.0)
    with caplog.at_level(logging.INFO, "payment_service.ops.gc_watch"), watch:
        gc.collect()
    assert not [r for r in caplog.records if r.name == "payment_service.ops.gc_watch"]
    assert watch._on_collection not in gc.callbacks


def test_startup_objects_are_frozen_out_of_later_collections() -> None:
    survivor = [object() for _ in range(10)]
    try:
        freeze_startup()
        assert gc.get_freeze_count() >= len(survivor)
    finally:
        gc.unfreeze()
