"""Webhook endpoints: register (the signing secret shown once), list, show, delete, and the
delivery log of one endpoint. Every read is the caller's own: another merchant's id is a 404.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from aiohttp import web

from payment_service.core.errors import InvalidRequest, NotFound
from payment_service.core.webhook_ports import SigningSecrets, UrlGuard, WebhookStore
from payment_service.core.webhooks import (
    ALL_EVENTS,
    EVENT_TYPES,
    EndpointRecord,
    new_endpoint_id,
    new_signing_secret,
)
from payment_service.http.answers import Answer
from payment_service.http.requests import body, listing, merchant, page, respond
from payment_service.schemas.webhooks import WebhookEndpointRequest

ENDPOINT_ID: Final = re.compile(r"we_[A-Za-z0-9]{8,64}")
BASE: Final = "/api/v1/webhook_endpoints"


def _enabled(events: list[str]) -> tuple[str, ...]:
    unknown = sorted(set(events) - EVENT_TYPES - {ALL_EVENTS})
    if unknown:
        raise InvalidRequest(
            f"unknown event types {unknown}; known: {sorted(EVENT_TYPES)} or {ALL_EVENTS!r}",
            code="invalid_enabled_events",
            param="enabled_events",
        )
    return tuple(dict.fromkeys(events))


def endpoint_id(request: web.Request) -> str:
    value = request.match_info["endpoint_id"]
    if ENDPOINT_ID.fullmatch(value) is None:
        raise NotFound("no such webhook endpoint", param="endpoint_id")
    return value


class WebhookEndpoints:
    """The endpoint use cases, typed against the ports."""

    def __init__(
        self,
        store: WebhookStore,
        secrets: SigningSecrets,
        guard: UrlGuard,
        *,
        max_per_merchant: int,
    ) -> None:
        self._store = store
        self._secrets = secrets
        self._guard = guard
        self._max = max_per_merchant

    async def create(self, request: WebhookEndpointRequest, *, merchant_id: str) -> Answer:
        enabled = _enabled(request.enabled_events)
        await self._guard.check(request.url)
        if await self._store.count_endpoints(merchant_id) >= self._max:
            raise InvalidRequest(
                f"at most {self._max} webhook endpoints per merchant; delete one first",
                code="webhook_endpoint_limit",
            )
        new_id, secret = new_endpoint_id(), new_signing_secret()
        record = await self._store.create_endpoint(
            EndpointRecord(
                endpoint_id=new_id,
                merchant_id=merchant_id,
                url=request.url,
                enabled_events=enabled,
                description=request.description,
                created_at=dt.datetime.now(dt.UTC),
                secret_envelope=self._secrets.seal(secret, new_id),
            )
        )
        # The only time the secret leaves the service.
        return Answer(201, {**record.view(), "secret": secret}, {"Location": f"{BASE}/{new_id}"})

    async def get(self, endpoint: str, *, merchant_id: str) -> Answer:
        return Answer(200, (await self._own(endpoint, merchant_id)).view())

    async def list(self, limit: int, *, merchant_id: str) -> Answer:
        found = await self._store.list_endpoints(merchant_id, limit + 1)
        return listing([e.view() for e in found[:limit]], len(found) > limit, BASE)

    async def delete(self, endpoint: str, *, merchant_id: str) -> Answer:
        if not await self._store.delete_endpoint(endpoint, merchant_id=merchant_id):
            raise NotFound("no such webhook endpoint", param="endpoint_id")
        return Answer(200, {"id": endpoint, "object": "webhook_endpoint", "deleted": True})

    async def deliveries(
        self, endpoint: str, limit: int, starting_after: str | None, *, merchant_id: str
    ) -> Answer:
        await self._own(endpoint, merchant_id)
        found = await self._store.deliveries(endpoint, limit=limit, starting_after=starting_after)
        if found is None:
            raise NotFound("no such delivery of this endpoint", param="starting_after")
        rows, has_more = found
        return listing([d.view() for d in rows], has_more, f"{BASE}/{endpoint}/deliveries")

    async def _own(self, endpoint: str, merchant_id: str) -> EndpointRecord:
        record = await self._store.get_endpoint(endpoint, merchant_id=merchant_id)
        if record is None:
            raise NotFound("no such webhook endpoint", param="endpoint_id")
        return record


WEBHOOKS: web.AppKey[WebhookEndpoints] = web.AppKey("webhooks")


async def create_endpoint(request: web.Request) -> web.Response:
    merchant_id = await merchant(request)
    parsed = await body(request, WebhookEndpointRequest)
    return respond(await request.app[WEBHOOKS].create(parsed, merchant_id=merchant_id))


async def list_endpoints(request: web.Request) -> web.Response:
    merchant_id = await merchant(request)
    params = page(request)
    if params.starting_after or params.ending_before:
        raise InvalidRequest(
            "the endpoint list has no cursor (a merchant has a handful): use limit alone",
            param="starting_after",
        )
    return respond(await request.app[WEBHOOKS].list(params.limit, merchant_id=merchant_id))


async def get_endpoint(request: web.Request) -> web.Response:
    merchant_id = await merchant(request)
    answer = await request.app[WEBHOOKS].get(endpoint_id(request), merchant_id=merchant_id)
    return respond(answer)


async def delete_endpoint(request: web.Request) -> web.Response:
    merchant_id = await merchant(request)
    answer = await request.app[WEBHOOKS].delete(endpoint_id(request), merchant_id=merchant_id)
    return respond(answer)


async def list_deliveries(request: web.Request) -> web.Response:
    merchant_id = await merchant(request)
    params = page(request)
    if params.ending_before:
        raise InvalidRequest("the delivery log pages with starting_after", param="ending_before")
    answer = await request.app[WEBHOOKS].deliveries(
        endpoint_id(request), params.limit, params.starting_after, merchant_id=merchant_id
    )
    return respond(answer)
