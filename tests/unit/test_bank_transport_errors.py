"""The table from a bank answer's status to the error tree, and which failures mean overload."""

from __future__ import annotations

import pytest

from payment_service.bank.transport import Reply, error_for, overloaded
from payment_service.core.errors import (
    BankBusy,
    BankError,
    BankNotSent,
    BankOutcomeUnknown,
    BankRejected,
)

pytestmark = pytest.mark.unit


def reply(status: int, code: str = "x") -> Reply:
    body = b'{"error": {"code": "%s", "message": "m"}}' % code.encode()
    return Reply(status, body, replayed=False)


@pytest.mark.parametrize(
    ("status", "code", "kind", "overload"),
    [
        (429, "throttled", BankBusy, True),
        (503, "bank_unavailable", BankOutcomeUnknown, True),
        (500, "bank_unavailable", BankOutcomeUnknown, False),
        (409, "idempotency_key_in_use", BankOutcomeUnknown, False),
        (409, "already_captured", BankRejected, False),
        (422, "amount_exceeds_captured", BankRejected, False),
    ],
)
def test_each_status_maps_to_one_error(
    status: int, code: str, kind: type[BankError], overload: bool
) -> None:
    error = error_for(reply(status, code), operation="capture", reference="r")
    assert type(error) is kind
    assert overloaded(error) is overload


def test_a_429_is_not_sent_and_a_timeout_is_overload() -> None:
    assert isinstance(error_for(reply(429), operation="sale", reference="r"), BankNotSent)
    timed_out = BankOutcomeUnknown("no answer", operation="sale")
    timed_out.__cause__ = TimeoutError()
    assert overloaded(timed_out)
    assert not overloaded(BankNotSent("refused", operation="sale"))
