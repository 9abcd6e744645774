"""The ports of webhooks and events: what the API and the dispatcher need of storage and crypto.

Adapters: `storage.events.PgEvents`, `storage.webhooks.PgWebhooks`, `webhooks.secrets.SecretBox`,
`webhooks.ssrf.UrlGuard`. Kept apart from `core/ports.py`, which holds the payment ports.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from payment_service.core.audit_ports import Position
from payment_service.core.webhooks import (
    AuditEntry,
    DeliveryRecord,
    DueDelivery,
    EndpointRecord,
    EventRecord,
    NewEvent,
)


class EventStore(Protocol):
    """Events derived from audit rows, and the events API's reads (merchant-scoped)."""

    async def cursor(self, settle: dt.timedelta) -> Position: ...

    async def audit_after(self, position: Position, limit: int) -> list[AuditEntry]: ...

    async def record(
        self, events: list[NewEvent], cursor: Position, give_up: dt.timedelta
    ) -> None: ...

    async def get(self, event_id: str, *, merchant_id: str) -> EventRecord | None: ...

    async def page(
        self,
        merchant_id: str,
        *,
        limit: int,
        starting_after: EventRecord | None = None,
        ending_before: EventRecord | None = None,
        event_type: str | None = None,
    ) -> tuple[list[EventRecord], bool]: ...

    async def purge(self, batch: int = 1000) -> int: ...


class WebhookStore(Protocol):
    """Endpoints (merchant-scoped) and their deliveries."""

    async def create_endpoint(self, endpoint: EndpointRecord) -> EndpointRecord: ...

    async def count_endpoints(self, merchant_id: str) -> int: ...

    async def get_endpoint(
        self, endpoint_id: str, *, merchant_id: str
    ) -> EndpointRecord | None: ...

    async def list_endpoints(self, merchant_id: str, limit: int) -> list[EndpointRecord]: ...

    async def delete_endpoint(self, endpoint_id: str, *, merchant_id: str) -> bool: ...

    async def deliveries(
        self, endpoint_id: str, *, limit: int, starting_after: str | None = None
    ) -> tuple[list[DeliveryRecord], bool] | None: ...

    async def redeliver(
        self, event_id: str, *, merchant_id: str, horizon: dt.timedelta
    ) -> list[DeliveryRecord]: ...

    async def due_endpoints(self, busy: list[str], limit: int) -> list[str]: ...

    async def due_for(self, endpoint_id: str, limit: int) -> list[DueDelivery]: ...

    async def attempted(
        self,
        delivery: DueDelivery,
        *,
        next_attempt_at: dt.datetime | None,
        succeeded: bool,
        status_code: int | None,
        error: str | None,
    ) -> None: ...


class SigningSecrets(Protocol):
    """Seals an endpoint's signing secret for storage, and opens it to sign (bound to its id)."""

    def seal(self, secret: str, endpoint_id: str) -> str: ...

    def open(self, envelope: str, endpoint_id: str) -> str: ...


class UrlGuard(Protocol):
    """Refuses (`InvalidRequest`) a URL that may not receive webhooks (scheme, address)."""

    async def check(self, url: str) -> None: ...
