"""The lists' query parameters: defaults, bounds, and a 400 naming each bad one."""

from __future__ import annotations

import datetime as dt

import pytest
from multidict import MultiDict

from payment_service.core.errors import InvalidRequest, NotFound
from payment_service.core.states import PaymentStatus
from payment_service.http.lists import parse_query

pytestmark = pytest.mark.unit
ALLOWED = frozenset(
    {"limit", "starting_after", "ending_before", "status", "created[gte]", "created[lt]"}
)


def _parse(*pairs: tuple[str, str]) -> object:
    return parse_query(MultiDict(pairs), ALLOWED)


def test_defaults_and_every_parameter() -> None:
    query = parse_query(MultiDict(), ALLOWED)
    assert (query.limit, query.starting_after, query.ending_before, query.status) == (
        10, None, None, None,
    )  # fmt: skip
    query = parse_query(
        MultiDict(
            [("limit", "100"), ("starting_after", "txn_1"), ("status", "requires_capture"),
             ("created[gte]", "0"), ("created[lt]", "1700000000")]
        ),
        ALLOWED,
    )  # fmt: skip
    assert (query.limit, query.starting_after, query.status) == (
        100, "txn_1", PaymentStatus.REQUIRES_CAPTURE,
    )  # fmt: skip
    assert query.created_gte == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    assert query.created_lt == dt.datetime.fromtimestamp(1_700_000_000, dt.UTC)


@pytest.mark.parametrize(
    ("pairs", "code", "param"),
    [
        ([("limit", "0")], "parameter_invalid", "limit"),
        ([("limit", "101")], "parameter_invalid", "limit"),
        ([("limit", "0100")], "parameter_invalid", "limit"),
        ([("limit", "٣")], "parameter_invalid", "limit"),  # a digit, but not an ASCII one
        ([("limit", "")], "parameter_invalid", "limit"),
        ([("limit", "5"), ("limit", "6")], "parameter_invalid", "limit"),
        ([("status", "CAPTURED")], "parameter_invalid", "status"),
        ([("created[lt]", "-5")], "parameter_invalid", "created[lt]"),
        ([("created[lt]", "99999999999999")], "parameter_invalid", "created[lt]"),
        ([("created[lte]", "5")], "parameter_unknown", "created[lte]"),
        ([("starting_after", "a"), ("ending_before", "b")], "parameter_conflict",
         "ending_before"),
    ],
)  # fmt: skip
def test_bad_parameters_name_themselves(
    pairs: list[tuple[str, str]], code: str, param: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        _parse(*pairs)
    assert (caught.value.code, caught.value.param) == (code, param)


def test_a_cursor_that_cannot_be_one_of_our_ids_is_not_found() -> None:
    with pytest.raises(NotFound):
        _parse(("starting_after", "../../etc"))
    with pytest.raises(NotFound):
        _parse(("ending_before", "x" * 65))
