"""The lists end to end: Stripe's cursor semantics and their edges, filters, bad parameters,
and tenant isolation (another merchant's cursor is a 404, never a page of theirs)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.fixtures.service import Merchant, payment_body

pytestmark = pytest.mark.e2e


async def _pay(http: aiohttp.ClientSession, merchant: Merchant, **overrides: Any) -> str:
    body = payment_body(merchant.merchant_id, **overrides)
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        payment = await resp.json()
        assert resp.status == 200, payment
    return str(payment["transaction_id"])


async def _list(
    http: aiohttp.ClientSession, merchant: Merchant, path: str = "/api/v1/payments", **params: Any
) -> tuple[int, dict[str, Any]]:
    query = {k.replace("__", "[").replace("_END", "]"): str(v) for k, v in params.items()}
    async with http.get(path, params=query, headers=merchant.headers) as resp:
        return resp.status, await resp.json()


def _ids(page: dict[str, Any]) -> list[str]:
    return [item.get("refund_id") or item["transaction_id"] for item in page["data"]]


@pytest.fixture
async def five(http: aiohttp.ClientSession, merchant: Merchant) -> list[str]:
    """Five payments of one merchant, newest first; the second and fourth newest are manual."""
    ids = []
    for i in range(5):
        manual = {"capture_method": "manual"} if i in (1, 3) else {}
        ids.append(await _pay(http, merchant, **manual))
    return ids[::-1]


async def test_an_empty_list(http: aiohttp.ClientSession, merchant: Merchant) -> None:
    status, page = await _list(http, merchant)
    assert (status, page) == (
        200,
        {"object": "list", "data": [], "has_more": False, "url": "/api/v1/payments"},
    )


async def test_pages_newest_first_by_cursor_in_both_directions(
    http: aiohttp.ClientSession, merchant: Merchant, five: list[str]
) -> None:
    status, page = await _list(http, merchant)
    assert (status, _ids(page), page["has_more"]) == (200, five, False)  # default limit 10
    assert page["data"][0]["card"] == {
        "brand": "visa",
        "last4": "4242",
        "expiry_month": 12,
        "expiry_year": page["data"][0]["card"]["expiry_year"],
    }
    _, first = await _list(http, merchant, limit=2)
    assert (_ids(first), first["has_more"]) == (five[:2], True)
    _, second = await _list(http, merchant, limit=2, starting_after=five[1])
    assert (_ids(second), second["has_more"]) == (five[2:4], True)
    _, last = await _list(http, merchant, limit=2, starting_after=five[3])
    assert (_ids(last), last["has_more"]) == (five[4:], False)
    _, beyond = await _list(http, merchant, starting_after=five[4])
    assert (_ids(beyond), beyond["has_more"]) == ([], False)
    # The exact page boundary: five of five is not "more", four of five is.
    _, exact = await _list(http, merchant, limit=5)
    assert (_ids(exact), exact["has_more"]) == (five, False)
    _, short = await _list(http, merchant, limit=4)
    assert (_ids(short), short["has_more"]) == (five[:4], True)
    # Backwards: the page just before a cursor, still newest first; has_more looks newer.
    _, back = await _list(http, merchant, limit=2, ending_before=five[4])
    assert (_ids(back), back["has_more"]) == (five[2:4], True)
    _, top = await _list(http, merchant, limit=2, ending_before=five[1])
    assert (_ids(top), top["has_more"]) == (five[:1], False)


async def test_filters_by_status_and_creation_time(
    http: aiohttp.ClientSession, merchant: Merchant, five: list[str]
) -> None:
    _, held = await _list(http, merchant, status="requires_capture")
    assert _ids(held) == [five[1], five[3]]
    assert {p["status"] for p in held["data"]} == {"requires_capture"}
    future = int(time.time()) + 3600
    _, none = await _list(http, merchant, **{"created__gte_END": str(future)})
    assert _ids(none) == []
    _, every = await _list(
        http, merchant, **{"created__lt_END": str(future), "created__gte_END": "0"}
    )
    assert _ids(every) == five
    _, paged = await _list(http, merchant, limit=1, status="captured", starting_after=five[0])
    assert _ids(paged) == [five[2]]


@pytest.mark.parametrize(
    ("params", "code", "param"),
    [
        ({"limit": "0"}, "parameter_invalid", "limit"),
        ({"limit": "101"}, "parameter_invalid", "limit"),
        ({"limit": "-1"}, "parameter_invalid", "limit"),
        ({"limit": "ten"}, "parameter_invalid", "limit"),
        ({"limit": "1e1"}, "parameter_invalid", "limit"),
        ({"status": "paid"}, "parameter_invalid", "status"),
        ({"created[gte]": "yesterday"}, "parameter_invalid", "created[gte]"),
        ({"created[gt]": "1"}, "parameter_unknown", "created[gt]"),
        ({"page": "2"}, "parameter_unknown", "page"),
        ({"starting_after": "a", "ending_before": "b"}, "parameter_conflict", "ending_before"),
    ],
)
async def test_bad_parameters_are_400_naming_the_parameter(
    http: aiohttp.ClientSession,
    merchant: Merchant,
    params: dict[str, str],
    code: str,
    param: str,
) -> None:
    async with http.get("/api/v1/payments", params=params, headers=merchant.headers) as resp:
        body = await resp.json()
        assert resp.status == 400, body
    assert (body["error"]["code"], body["error"]["param"]) == (code, param)


async def test_a_repeated_parameter_is_refused(
    http: aiohttp.ClientSession, merchant: Merchant
) -> None:
    async with http.get("/api/v1/payments?limit=1&limit=2", headers=merchant.headers) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "limit"


async def test_other_merchants_cursors_and_refunds_are_404_and_lists_are_their_own(
    http: aiohttp.ClientSession,
    merchant: Merchant,
    merchant_factory: Callable[[], Merchant],
    five: list[str],
) -> None:
    other = merchant_factory()
    theirs = await _pay(http, other)
    for cursor in ("starting_after", "ending_before"):
        status, body = await _list(http, other, **{cursor: five[0]})
        assert (status, body["error"]["code"], body["error"]["param"]) == (
            404,
            "resource_missing",
            cursor,
        )
        status, body = await _list(http, merchant, **{cursor: "txn_does_not_exist"})
        assert (status, body["error"]["code"]) == (404, "resource_missing")
    _, mine = await _list(http, other)
    assert _ids(mine) == [theirs]
    status, body = await _list(http, other, f"/api/v1/payments/{five[0]}/refunds")
    assert (status, body["error"]["code"]) == (404, "resource_missing")
    async with http.get("/api/v1/payments") as resp:
        assert resp.status == 401


async def test_a_payments_refunds_page_by_cursor(
    http: aiohttp.ClientSession, merchant: Merchant
) -> None:
    txn = await _pay(http, merchant, amount="30.00")
    refunds = []
    for _ in range(3):
        async with http.post(
            f"/api/v1/payments/{txn}/refund", json={"amount": "5.00"}, headers=merchant.headers
        ) as resp:
            refund = await resp.json()
            assert resp.status == 200, refund
        refunds.append(refund["refund_id"])
    newest = refunds[::-1]
    path = f"/api/v1/payments/{txn}/refunds"
    status, page = await _list(http, merchant, path, limit=2)
    assert (status, _ids(page), page["has_more"], page["url"]) == (200, newest[:2], True, path)
    _, rest = await _list(http, merchant, path, limit=2, starting_after=newest[1])
    assert (_ids(rest), rest["has_more"]) == (newest[2:], False)
    _, back = await _list(http, merchant, path, ending_before=newest[2])
    assert (_ids(back), back["has_more"]) == (newest[:2], False)
    status, body = await _list(http, merchant, path, starting_after="rf_unknown")
    assert (status, body["error"]["code"]) == (404, "resource_missing")
    # The payment list shows each payment's refunds too.
    _, payments = await _list(http, merchant, limit=1)
    assert len(payments["data"][0]["refunds"]) == 3
