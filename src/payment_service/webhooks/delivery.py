"""One delivery attempt: POST the event as JSON, signed, with explicit timeouts, no redirects.

A 2xx answer is success; anything else (another status, a refused address, a timeout, a
connection error) is a failed attempt to retry later. The answer's body is not read beyond a
small bound: a receiver cannot make us hold its bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

import aiohttp

from payment_service.config.webhooks import WebhookSettings
from payment_service.core.webhook_ports import SigningSecrets
from payment_service.core.webhooks import DueDelivery
from payment_service.webhooks import signing
from payment_service.webhooks.ssrf import GuardedResolver, literal_refused

USER_AGENT: Final = "payment-service-webhooks/1"
MAX_ERROR_LENGTH: Final = 300


@dataclass(frozen=True)
class AttemptResult:
    succeeded: bool
    status_code: int | None = None
    error: str | None = None


def http_session(settings: WebhookSettings) -> aiohttp.ClientSession:
    """The dispatcher's client: the SSRF-guarded resolver, bounded timeouts, no proxy from env."""
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(allow_private=settings.allow_private_urls),
        limit=settings.max_concurrent_endpoints,
        ttl_dns_cache=60,
    )
    timeout = aiohttp.ClientTimeout(
        total=settings.request_timeout_seconds,
        connect=settings.connect_timeout_seconds,
        sock_read=settings.request_timeout_seconds,
    )
    return aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False)


class Sender:
    """Signs and posts deliveries through one session."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        secrets: SigningSecrets,
        *,
        allow_private: bool,
    ) -> None:
        self._session = session
        self._secrets = secrets
        self._allow_private = allow_private

    async def send(self, delivery: DueDelivery) -> AttemptResult:
        if literal_refused(delivery.url, allow_private=self._allow_private):
            return AttemptResult(False, error="refused: the address is not public")
        secret = self._secrets.open(delivery.secret_envelope, delivery.endpoint_id)
        body = json.dumps(delivery.body, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            signing.HEADER: signing.header_value(secret, body),
            "Payment-Event-Id": delivery.event_id,
        }
        try:
            async with self._session.post(
                delivery.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.content.read(1024)
                status = response.status
        except TimeoutError:
            return AttemptResult(False, error="timed out")
        except (aiohttp.ClientError, OSError) as exc:
            return AttemptResult(False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_LENGTH])
        if 200 <= status < 300:
            return AttemptResult(True, status)
        return AttemptResult(False, status, f"answered {status}")
