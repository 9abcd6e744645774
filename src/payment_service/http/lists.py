"""The lists (Stripe's semantics): a merchant's payments and a payment's refunds, by cursor.

`limit` 1-100 (default 10), newest first, `starting_after` (the page after an id) or
`ending_before` (the page before it), never both; payments also filter by `status` and by
`created[gte]` / `created[lt]` (Unix seconds). The answer is
`{"object": "list", "data": [...], "has_more": ..., "url": ...}`. Every query parameter is
checked before storage: an unknown, repeated or malformed one is a 400 that names it, and a
cursor that is not the merchant's own is a 404, exactly like one that does not exist.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final

from multidict import MultiMapping

from payment_service.core.capture_ports import ListQuery, PaymentLists
from payment_service.core.errors import InvalidRequest, NotFound
from payment_service.core.states import PaymentStatus
from payment_service.http.answers import Answer
from payment_service.schemas.views import payment_view, refund_view

DEFAULT_LIMIT: Final = 10
MAX_LIMIT: Final = 100
_ID: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
_PAGING: Final = frozenset({"limit", "starting_after", "ending_before"})
_PAYMENT_FILTERS: Final = frozenset({"status", "created[gte]", "created[lt]"})
# Unix seconds from 1970 to 9999: anything else cannot be a creation time.
_MAX_SECONDS: Final = 253_402_300_799


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}  # fmt: skip


# What /openapi.json says of the parameters parsed below (http/routes.py names them).
PAGING_PARAMETERS: Final = (
    _query("limit", f"1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}",
           {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
    _query("starting_after", "the page after this id (newest first)", {"type": "string"}),
    _query("ending_before", "the page before this id; not with starting_after",
           {"type": "string"}),
)  # fmt: skip
PAYMENT_FILTER_PARAMETERS: Final = (
    _query("status", "only payments in this status", {"enum": [s.value for s in PaymentStatus]}),
    _query("created[gte]", "created at or after (Unix seconds)",
           {"type": "integer", "minimum": 0, "maximum": _MAX_SECONDS}),
    _query("created[lt]", "created before (Unix seconds)",
           {"type": "integer", "minimum": 0, "maximum": _MAX_SECONDS}),
)  # fmt: skip


class ListService:
    """`GET /api/v1/payments` and `GET /api/v1/payments/{id}/refunds`."""

    def __init__(self, lists: PaymentLists) -> None:
        self._lists = lists

    async def payments(self, params: MultiMapping[str], *, merchant_id: str) -> Answer:
        query = parse_query(params, _PAGING | _PAYMENT_FILTERS)
        page = await self._lists.list_payments(merchant_id, query)
        data = [payment_view(p).model_dump(mode="json") for p in page.items]
        return _list(data, page.has_more, "/api/v1/payments")

    async def refunds(
        self, transaction_id: str, params: MultiMapping[str], *, merchant_id: str
    ) -> Answer:
        query = parse_query(params, _PAGING)
        page = await self._lists.list_refunds(merchant_id, transaction_id, query)
        data = [refund_view(r).model_dump(mode="json") for r in page.items]
        url = f"/api/v1/payments/{transaction_id}/refunds"
        return _list(data, page.has_more, url)


def _list(data: list[dict[str, Any]], has_more: bool, url: str) -> Answer:
    return Answer(200, {"object": "list", "data": data, "has_more": has_more, "url": url})


def parse_query(params: MultiMapping[str], allowed: frozenset[str]) -> ListQuery:
    """The page asked for, or `InvalidRequest` (400) naming the parameter at fault."""
    for name in params:
        if name not in allowed:
            raise InvalidRequest(
                f"unknown query parameter {name[:40]!r}; allowed: {', '.join(sorted(allowed))}",
                code="parameter_unknown",
                param=name[:40],
            )
        if len(params.getall(name)) > 1:
            raise InvalidRequest(f"{name} is given more than once", code="parameter_invalid",
                                 param=name)  # fmt: skip
    single: Mapping[str, str] = {name: params[name] for name in params}
    starting_after = _cursor(single, "starting_after")
    ending_before = _cursor(single, "ending_before")
    if starting_after is not None and ending_before is not None:
        raise InvalidRequest(
            "give starting_after or ending_before, not both",
            code="parameter_conflict",
            param="ending_before",
        )
    return ListQuery(
        limit=_limit(single.get("limit")),
        starting_after=starting_after,
        ending_before=ending_before,
        status=_status(single.get("status")),
        created_gte=_timestamp(single, "created[gte]"),
        created_lt=_timestamp(single, "created[lt]"),
    )


def _limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest(
            f"limit must be an integer from 1 to {MAX_LIMIT}", code="parameter_invalid",
            param="limit",
        )  # fmt: skip
    return int(raw)


def _cursor(params: Mapping[str, str], name: str) -> str | None:
    raw = params.get(name)
    if raw is None:
        return None
    if _ID.fullmatch(raw) is None:
        raise NotFound(f"no such object for {name}", param=name)  # cannot be one of ours
    return raw


def _status(raw: str | None) -> PaymentStatus | None:
    if raw is None:
        return None
    try:
        return PaymentStatus(raw)
    except ValueError:
        statuses = ", ".join(s.value for s in PaymentStatus)
        raise InvalidRequest(
            f"status must be one of: {statuses}", code="parameter_invalid", param="status"
        ) from None


def _timestamp(params: Mapping[str, str], name: str) -> dt.datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or int(raw) > _MAX_SECONDS:
        raise InvalidRequest(
            f"{name} must be a Unix timestamp in seconds", code="parameter_invalid", param=name
        )
    return dt.datetime.fromtimestamp(int(raw), dt.UTC)
