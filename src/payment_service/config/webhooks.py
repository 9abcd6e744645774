"""Settings of webhooks and the events API (`WEBHOOKS_*`): the dispatcher's pace and bounds."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from payment_service.config.sections import _config


class WebhookSettings(BaseSettings):
    model_config = _config("WEBHOOKS_")

    # Development only: deliver to private, loopback and link-local addresses (the test stack's
    # receivers listen on 127.0.0.1). Never in production (the settings refuse it there).
    allow_private_urls: bool = False
    # How often the dispatcher reads new audit rows and looks for due deliveries.
    poll_interval_seconds: float = Field(default=1.0, gt=0)
    # Exponential backoff: base * 2**(attempt-1), at most max, retried until horizon (3 days).
    retry_base_seconds: float = Field(default=60.0, gt=0)
    retry_max_seconds: float = Field(default=6 * 3600.0, gt=0)
    retry_horizon_seconds: float = Field(default=3 * 24 * 3600.0, gt=0)
    # One delivery attempt: connecting, and the whole request with the answer's first bytes.
    connect_timeout_seconds: float = Field(default=3.0, gt=0)
    request_timeout_seconds: float = Field(default=10.0, gt=0)
    # Endpoints served at once (each endpoint has one delivery in flight at a time).
    max_concurrent_endpoints: int = Field(default=64, ge=1)
    # Due deliveries one endpoint's turn takes, oldest first, before others get theirs.
    endpoint_batch: int = Field(default=20, ge=1)
    # Events are kept this long (the purge deletes older ones with their deliveries).
    retention_days: int = Field(default=30, ge=1)
    max_endpoints_per_merchant: int = Field(default=16, ge=1)
