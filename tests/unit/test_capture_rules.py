"""`repeats_capture`: which capture or cancel requests continue (or answer) the one bank call."""

from __future__ import annotations

import pytest

from payment_service.core.records import NewPayment
from payment_service.core.rules import repeats_capture
from payment_service.core.states import PaymentStatus
from tests.unit.fakes import record_of
from tests.unit.test_payment_flow_decisions import _new

pytestmark = pytest.mark.unit
S = PaymentStatus


def _manual() -> NewPayment:
    return _new(capture_method="manual")


def test_a_waiting_hold_is_not_a_repeat() -> None:
    payment = record_of(_manual(), status=S.REQUIRES_CAPTURE)
    assert not repeats_capture(payment, "capture", None)
    assert not repeats_capture(payment, "cancel", None)


def test_the_same_capture_in_flight_or_done_is_a_repeat_another_amount_is_not() -> None:
    capturing = record_of(_manual(), status=S.CAPTURING, capture_requested_minor=4_000)
    assert repeats_capture(capturing, "capture", 4_000)
    assert not repeats_capture(capturing, "capture", None)  # all of it: another capture
    assert not repeats_capture(capturing, "cancel", None)
    done = record_of(_manual(), status=S.CAPTURED, captured_minor=10_000)
    assert repeats_capture(done, "capture", None)
    assert repeats_capture(done, "capture", 10_000)
    assert not repeats_capture(done, "capture", 5_000)
    refunded = record_of(_manual(), status=S.PARTIALLY_REFUNDED, captured_minor=10_000)
    assert repeats_capture(refunded, "capture", None)


def test_a_cancel_in_flight_or_done_is_a_repeat() -> None:
    for status in (S.CANCELING, S.CANCELED):
        assert repeats_capture(record_of(_manual(), status=status), "cancel", None)
        assert not repeats_capture(record_of(_manual(), status=status), "capture", None)


def test_an_automatic_payment_never_repeats_a_capture() -> None:
    automatic = record_of(_new(), status=S.CAPTURED, captured_minor=10_000)
    assert not repeats_capture(automatic, "capture", None)
    assert not repeats_capture(automatic, "cancel", None)
