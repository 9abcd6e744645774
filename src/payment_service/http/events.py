"""The events API: list (newest first, Stripe cursors, optional `type`), show, and redeliver.

Events are kept 30 days; an older or another merchant's id is a 404, as a cursor too.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from aiohttp import web

from payment_service.core.errors import InvalidRequest, NotFound
from payment_service.core.webhook_ports import EventStore, WebhookStore
from payment_service.core.webhooks import EVENT_TYPES, EventRecord
from payment_service.http.answers import Answer
from payment_service.http.requests import listing, merchant, page, respond

EVENT_ID: Final = re.compile(r"evt_[0-9a-f]{32}")
BASE: Final = "/api/v1/events"


class Events:
    def __init__(self, events: EventStore, webhooks: WebhookStore, *, horizon: dt.timedelta):
        self._events = events
        self._webhooks = webhooks
        self._horizon = horizon

    async def list(
        self,
        limit: int,
        starting_after: str | None,
        ending_before: str | None,
        event_type: str | None,
        *,
        merchant_id: str,
    ) -> Answer:
        after = await self._cursor(starting_after, "starting_after", merchant_id)
        before = await self._cursor(ending_before, "ending_before", merchant_id)
        found, has_more = await self._events.page(
            merchant_id,
            limit=limit,
            starting_after=after,
            ending_before=before,
            event_type=event_type,
        )
        return listing([e.body() for e in found], has_more, BASE)

    async def get(self, event_id: str, *, merchant_id: str) -> Answer:
        return Answer(200, (await self._own(event_id, merchant_id, "id")).body())

    async def redeliver(self, event_id: str, *, merchant_id: str) -> Answer:
        """Every subscribed endpoint gets the event again, soon (202: queued, not yet sent)."""
        await self._own(event_id, merchant_id, "id")
        queued = await self._webhooks.redeliver(
            event_id, merchant_id=merchant_id, horizon=self._horizon
        )
        return Answer(
            202, {"id": event_id, "object": "event", "deliveries": [d.view() for d in queued]}
        )

    async def _cursor(self, value: str | None, param: str, merchant_id: str) -> EventRecord | None:
        return None if value is None else await self._own(value, merchant_id, param)

    async def _own(self, event_id: str, merchant_id: str, param: str) -> EventRecord:
        found = None
        if EVENT_ID.fullmatch(event_id):
            found = await self._events.get(event_id, merchant_id=merchant_id)
        if found is None:
            raise NotFound("no such event", param=param)
        return found


EVENTS: web.AppKey[Events] = web.AppKey("events")


async def list_events(request: web.Request) -> web.Response:
    merchant_id = await merchant(request)
    params = page(request)
    event_type = request.query.get("type")
    if event_type is not None and event_type not in EVENT_TYPES:
        raise InvalidRequest(f"type must be one of {sorted(EVENT_TYPES)}", param="type")
    answer = await request.app[EVENTS].list(
        params.limit, params.starting_after, params.ending_before, event_type,
        merchant_id=merchant_id,
    )  # fmt: skip
    return respond(answer)


async def get_event(request: web.Request) -> web.Response:
    merchant_id = await merchant(request)
    answer = await request.app[EVENTS].get(request.match_info["event_id"], merchant_id=merchant_id)
    return respond(answer)


async def redeliver_event(request: web.Request) -> web.Response:
    merchant_id = await merchant(request)
    answer = await request.app[EVENTS].redeliver(
        request.match_info["event_id"], merchant_id=merchant_id
    )
    return respond(answer)
