"""The operators' pure parts: the replay predictions, the invariant checks, the audit chain."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import replace
from typing import Any

import pytest

from payment_service.config.settings import KafkaSettings
from payment_service.core.decisions import (
    CaptureStep,
    PaymentStep,
    RefundStep,
    capture_step,
    payment_step,
    predict_capture,
    predict_payment,
    predict_refund,
    refund_step,
)
from payment_service.core.ids import idempotency_key
from payment_service.core.records import RecordedRefusal, RefundRecord
from payment_service.core.states import PAYMENT_TRANSITIONS, PaymentStatus, RefundStatus
from payment_service.operators.chain import check_chain, row_hash
from payment_service.operators.checks import BankTotals, audit_paths, money_checks, unsettled
from payment_service.operators.dlq import originals
from payment_service.operators.messages import Message
from tests.unit.fakes import record_of
from tests.unit.test_payment_flow_decisions import _new

pytestmark = pytest.mark.unit
S = PaymentStatus
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _payment(status: PaymentStatus, **changes: Any) -> Any:
    new = _new()
    return replace(record_of(new), status=status, **changes)


@pytest.mark.parametrize(
    ("status", "step"),
    [
        (S.PROCESSING, PaymentStep.AUTHORIZE),
        (S.UNKNOWN, PaymentStep.RESOLVE),
        (S.AUTHORIZED, PaymentStep.CAPTURE),
        (S.UNKNOWN_CAPTURE, PaymentStep.CAPTURE),
        (S.CAPTURED, PaymentStep.DONE),
        (S.FAILED, PaymentStep.DONE),
        (S.REFUNDED, PaymentStep.DONE),
    ],
)
def test_the_flows_next_step_by_status(status: PaymentStatus, step: PaymentStep) -> None:
    assert payment_step(status) == step


def test_a_payment_prediction_moves_money_only_where_the_bank_has_not_executed_the_key() -> None:
    p = _payment(S.PROCESSING)
    txn, h = p.transaction_id, p.request_hash
    assert predict_payment(txn, h, None, None, set()).verdict == "charge"
    assert predict_payment(txn, h, p, None, set()).verdict == "charge"
    sold = {idempotency_key(txn, "sale")}
    assert predict_payment(txn, h, p, None, sold).verdict == "noop"  # automatic: one sale
    authorized = {idempotency_key(txn, "authorize")}
    assert predict_payment(txn, h, p, None, authorized).verdict == "charge"
    manual = replace(p, capture_method="manual")
    assert predict_payment(txn, h, manual, None, authorized).verdict == "noop"
    assert predict_payment(txn, h, manual, None, sold).verdict == "charge"
    held = replace(manual, status=S.REQUIRES_CAPTURE)
    assert predict_payment(txn, h, held, None, set()).verdict == "noop"  # waits for a capture
    waiting = replace(p, status=S.AUTHORIZED)
    assert predict_payment(txn, h, waiting, None, authorized).verdict == "charge"
    both = authorized | {idempotency_key(txn, "capture")}
    assert predict_payment(txn, h, waiting, None, both).verdict == "noop"
    for settled in (S.CAPTURED, S.FAILED, S.UNKNOWN):
        assert predict_payment(txn, h, replace(p, status=settled), None, set()).verdict == "noop"
    assert predict_payment(txn, "other", p, None, set()).verdict == "refused"
    recorded = RecordedRefusal("payment_method_not_found", "no card")
    assert predict_payment(txn, h, None, recorded, set()).verdict == "noop"


def test_a_capture_or_cancel_prediction_follows_the_capture_flow() -> None:
    held = _payment(S.REQUIRES_CAPTURE, capture_method="manual", amount_minor=5_000)
    capture_key = {idempotency_key(held.transaction_id, "capture")}
    void_key = {idempotency_key(held.transaction_id, "void")}
    assert (capture_step(S.CAPTURING), capture_step(S.CANCELING)) == (
        CaptureStep.CAPTURE,
        CaptureStep.VOID,
    )
    assert capture_step(S.REQUIRES_CAPTURE) == CaptureStep.DONE
    assert predict_capture("capture", None, held, set()).verdict == "capture"
    assert predict_capture("capture", 9_000, held, set()).verdict == "refused"
    assert predict_capture("cancel", None, held, set()).verdict == "void"
    capturing = replace(held, status=S.CAPTURING, capture_requested_minor=3_000)
    assert predict_capture("capture", 3_000, capturing, set()).verdict == "capture"
    assert predict_capture("capture", 3_000, capturing, capture_key).verdict == "noop"
    assert predict_capture("capture", 4_000, capturing, set()).verdict == "refused"
    canceling = replace(held, status=S.CANCELING)
    assert predict_capture("cancel", None, canceling, void_key).verdict == "noop"
    captured = replace(held, status=S.CAPTURED, captured_minor=3_000)
    assert predict_capture("capture", 3_000, captured, capture_key).verdict == "noop"
    assert predict_capture("cancel", None, captured, set()).verdict == "refused"
    canceled = replace(held, status=S.CANCELED)
    assert predict_capture("cancel", None, canceled, void_key).verdict == "noop"
    automatic = _payment(S.CAPTURED)
    assert predict_capture("capture", None, automatic, set()).verdict == "refused"
    assert predict_capture("cancel", None, None, set()).verdict == "refused"


def _refund(p: Any, status: RefundStatus, amount: int) -> RefundRecord:
    return RefundRecord(
        refund_id=f"re_{uuid.uuid4().hex[:12]}", transaction_id=p.transaction_id,
        merchant_id=p.merchant_id, status=status, amount_minor=amount, currency="USD",
        reason=None, metadata={}, idempotency_key=None, request_hash=None, bank_refund_id=None,
        failure_code=None, failure_message=None, correlation_id=None, created_at=NOW,
        updated_at=NOW,
    )  # fmt: skip


def test_a_refund_prediction_follows_the_flow_and_the_rule() -> None:
    p = _payment(S.CAPTURED, captured_minor=10_000)
    assert refund_step(None) == RefundStep.RESERVE
    assert predict_refund("re_new", 4_000, p, None, set(), 0).verdict == "refund"
    assert predict_refund("re_new", 4_000, p, None, set(), 8_000).verdict == "refused"
    refusal = RecordedRefusal("refund_exceeds_remaining", "exceeds")
    # Recorded: answered the same way, even though it would now fit.
    assert predict_refund("re_new", 4_000, p, refusal, set(), 0).verdict == "noop"
    pending = _refund(p, RefundStatus.PROCESSING, 4_000)
    with_pending = replace(p, refunds=(pending,))
    key = {idempotency_key(pending.refund_id, "refund")}
    assert refund_step(pending) == RefundStep.REFUND
    assert predict_refund(pending.refund_id, 4_000, with_pending, None, set(), 0).verdict == (
        "refund"
    )
    assert predict_refund(pending.refund_id, 4_000, with_pending, None, key, 0).verdict == "noop"
    assert predict_refund("re_x", None, None, None, set(), 0).verdict == "refused"


def _row(txn: str, status: str = "captured", **extra: Any) -> dict[str, Any]:
    return {
        "transaction_id": txn, "status": status, "amount_minor": 1000, "captured_minor": 1000,
        "refunded_minor": 0, "updated_at": NOW, **extra,
    }  # fmt: skip


def _op(operation: str, amount: int, outcome: str = "approved") -> dict[str, Any]:
    return {"operation": operation, "amount_minor": amount, "outcome": outcome}


def test_money_checks_name_double_charges_and_disagreements() -> None:
    payments = [_row("t_ok"), _row("t_twice"), _row("t_failed", "failed", captured_minor=0)]
    bank = {
        "t_ok": BankTotals.of([_op("authorize", 1000), _op("capture", 1000)]),
        "t_twice": BankTotals.of([_op("capture", 1000), _op("capture", 1000)]),
        "t_failed": BankTotals.of([_op("sale", 1000)]),
        "t_orphan": BankTotals.of([_op("capture", 500)]),
    }
    found = {(v.check, v.transaction_id) for v in money_checks(payments, [], bank)}
    assert found == {
        ("double_charge", "t_twice"),
        ("bank_vs_db", "t_twice"),  # and the totals disagree: 2000 at the bank
        ("bank_vs_db", "t_failed"),
        ("bank_vs_db", "t_orphan"),
    }


def test_a_voided_hold_is_no_charge_and_a_reversed_late_sale_nets_to_nothing() -> None:
    payments = [
        _row("t_voided", "canceled", captured_minor=0),
        _row("t_reversed", "failed", captured_minor=0),
        _row("t_sold"),
    ]
    reversal = {**_op("refund", 1000), "idempotency_key": "t_reversed:reversal"}
    bank = {
        "t_voided": BankTotals.of([_op("authorize", 1000), _op("void", 0)]),
        "t_reversed": BankTotals.of([_op("sale", 1000), reversal]),
        "t_sold": BankTotals.of([_op("sale", 1000)]),
    }
    assert money_checks(payments, [], bank) == []


def test_refund_totals_and_unsettled() -> None:
    payment = _row("t1", "partially_refunded", refunded_minor=600)
    refunds = [
        {"refund_id": "r1", "transaction_id": "t1", "status": "completed", "amount_minor": 600,
         "updated_at": NOW},
        {"refund_id": "r2", "transaction_id": "t1", "status": "processing", "amount_minor": 500,
         "updated_at": NOW - dt.timedelta(hours=1)},
    ]  # fmt: skip
    bank = {"t1": BankTotals.of([_op("capture", 1000), _op("refund", 600)])}
    found = {v.check for v in money_checks([payment], refunds, bank)}
    assert found == {"refunds_exceed_captured"}  # 600 + 500 in flight > 1000
    stale = unsettled([payment], refunds, NOW, dt.timedelta(minutes=15))
    assert [(v.check, v.refund_id) for v in stale] == [("unsettled", "r2")]


def _audit(i: int, txn: str, frm: str | None, to: str, refund_id: str | None = None) -> Any:
    action = f"refund.{to}" if refund_id else f"payment.{to}"
    return {"id": i, "transaction_id": txn, "refund_id": refund_id, "action": action,
            "from_status": frm, "to_status": to}  # fmt: skip


def test_audit_paths_follow_the_transition_table() -> None:
    good = [_audit(1, "t", None, "processing"), _audit(2, "t", "processing", "authorized"),
            _audit(3, "t", "authorized", "captured")]  # fmt: skip
    assert audit_paths(good, [_row("t")], []) == []
    skipped = [good[0], _audit(2, "t", "processing", "refunded")]
    assert all(
        dst != S.REFUNDED for (src, _), dst in PAYMENT_TRANSITIONS.items() if src == S.PROCESSING
    )
    (found,) = audit_paths(skipped, [_row("t", "refunded")], [])
    assert "not in the transition table" in found.detail
    (ends,) = audit_paths(good[:2], [_row("t")], [])
    assert "ends at authorized" in ends.detail


def test_audit_paths_through_the_sale_and_manual_capture() -> None:
    sale = [_audit(1, "t", None, "processing"), _audit(2, "t", "processing", "captured")]
    assert audit_paths(sale, [_row("t")], []) == []
    manual = [
        _audit(1, "m", None, "processing"), _audit(2, "m", "processing", "requires_capture"),
        _audit(3, "m", "requires_capture", "capturing"),
        _audit(4, "m", "capturing", "requires_capture"),  # the bank refused; the hold stands
        _audit(5, "m", "requires_capture", "canceling"), _audit(6, "m", "canceling", "canceled"),
    ]  # fmt: skip
    assert audit_paths(manual, [_row("m", "canceled")], []) == []
    failed = [_audit(1, "f", None, "processing"), _audit(2, "f", "processing", "failed")]
    note = {**_audit(3, "f", "failed", "failed"), "action": "payment.hold_released"}
    assert audit_paths([*failed, note], [_row("f", "failed")], []) == []
    bogus = {**_audit(3, "f", "failed", "failed"), "action": "payment.failed"}
    (found,) = audit_paths([*failed, bogus], [_row("f", "failed")], [])
    assert "not in the transition table" in found.detail


def _chained(txn: str, n: int) -> list[dict[str, Any]]:
    rows, prev = [], b""
    for i in range(n):
        row: dict[str, Any] = {
            "id": i + 1, "event_id": str(uuid.uuid4()), "transaction_id": txn, "refund_id": None,
            "merchant_id": "m", "action": "payment.x", "from_status": None, "to_status": "x",
            "amount_minor": 100, "currency": "USD", "correlation_id": None, "details_text": "{}",
            "created_us": 1_700_000_000_000_000 + i, "actor": "api",
        }  # fmt: skip
        row["prev_hash"], row["row_hash"] = prev, row_hash(prev, row)
        prev = row["row_hash"]
        rows.append(row)
    return rows


def test_the_chain_names_the_edited_and_the_removed() -> None:
    a, b = _chained("a", 3), _chained("b", 3)
    assert check_chain(a + b) == []
    a[1]["amount_minor"] = 1
    del b[1]
    found = [(x.transaction_id, x.audit_id, x.reason.split(" (")[0]) for x in check_chain(a + b)]
    assert found == [
        ("a", 2, "row hash does not match its columns"),
        ("b", 3, "previous-row link broken"),
    ]


def test_the_chain_covers_the_actor() -> None:
    rows = _chained("a", 2)
    rows[0]["actor"] = "someone-else"
    assert [x.audit_id for x in check_chain(rows)] == [1]


def _letter(offset: int, origin: str | None) -> Message:
    headers: tuple[tuple[str, bytes], ...] = (("dlq-reason", b"invalid_command"),)
    if origin is not None:
        headers += (("dlq-origin", origin.encode()),)
    return Message("t.dlq", 0, offset, None, "k", b"{}", headers)


def test_a_letter_without_a_readable_origin_is_left_out_of_a_redrive() -> None:
    """No Kafka read happens for these: no origin, an origin on another topic, or a malformed
    one; each letter is named so the operator sees what the redrive could not re-produce."""
    kafka = KafkaSettings(topic_requests="t.requests")
    letters = [
        _letter(1, None),
        _letter(2, "t.results:0:5"),
        _letter(3, "t.requests:zero:5"),
        _letter(4, "t.requests:0:"),
    ]
    found = originals(kafka, letters)
    assert found.found == []
    assert found.left_out == ["t.dlq:0:1", "t.dlq:0:2", "t.dlq:0:3", "t.dlq:0:4"]
