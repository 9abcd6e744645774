"""HTTP bodies of webhook endpoints (`/api/v1/webhook_endpoints`).

The URL's scheme and address are checked by the SSRF guard (webhooks/ssrf.py), the event
types against the core's table (`core.webhooks.EVENT_TYPES`, or `*` for all).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StrictStr

from payment_service.schemas.payments import FreeText, _Strict

EventTypeName = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class WebhookEndpointRequest(_Strict):
    url: StrictStr = Field(min_length=1, max_length=2048, description="http(s), public address")
    enabled_events: list[EventTypeName] = Field(
        min_length=1, max_length=32, description='event types, or ["*"] for all of them'
    )
    description: Annotated[str, FreeText] | None = Field(default=None, max_length=500)
