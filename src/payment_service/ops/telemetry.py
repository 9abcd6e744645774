"""Datadog: DogStatsD metrics and ddtrace spans, each off unless configured.

Metrics go over UDP to the agent (`DD_AGENT_HOST`:`DD_DOGSTATSD_PORT`), buffered, so a missing
agent costs nothing but a dropped datagram. Tracing (`DD_TRACE_ENABLED=true`) patches aiohttp,
asyncpg, redis and confluent-kafka, and carries the trace context across Kafka in the command's
headers so one trace follows a payment from the HTTP request through the processor.

Tags and span tags name payments by id, status and codes only; never card data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

from datadog.dogstatsd.base import DogStatsd

from payment_service.config.settings import DatadogSettings

log = logging.getLogger(__name__)

_PATCHED = ("aiohttp", "asyncpg", "redis", "kafka")


class Metrics:
    """Counters, gauges and distributions under the `payment.` namespace."""

    def __init__(self, settings: DatadogSettings, process: str) -> None:
        self._statsd: DogStatsd | None = None
        if settings.metrics_enabled:
            self._statsd = DogStatsd(
                host=settings.agent_host,
                port=settings.dogstatsd_port,
                namespace="payment",
                constant_tags=[
                    f"service:{settings.service}",
                    f"env:{settings.env}",
                    f"process:{process}",
                ],
                disable_telemetry=True,
                disable_buffering=False,
                disable_background_sender=True,
            )

    def increment(self, name: str, tags: Mapping[str, str | None] | None = None) -> None:
        if self._statsd is not None:
            self._statsd.increment(name, tags=_tags(tags))

    def timing(
        self, name: str, milliseconds: float, tags: Mapping[str, str | None] | None = None
    ) -> None:
        if self._statsd is not None:
            self._statsd.distribution(name, milliseconds, tags=_tags(tags))

    def gauge(self, name: str, value: float, tags: Mapping[str, str | None] | None = None) -> None:
        if self._statsd is not None:
            self._statsd.gauge(name, value, tags=_tags(tags))

    def flush(self) -> None:
        if self._statsd is not None:
            self._statsd.flush()

    def close(self) -> None:
        if self._statsd is not None:
            self._statsd.flush()
            self._statsd.close_socket()


def _tags(tags: Mapping[str, str | None] | None) -> list[str] | None:
    if not tags:
        return None
    return [f"{k}:{v}" for k, v in tags.items() if v is not None]


def configure_tracing(settings: DatadogSettings) -> bool:
    """Patch the libraries we use, when tracing is on. Call before building any client."""
    if not settings.trace_enabled:
        return False
    from ddtrace import patch

    patch(**dict.fromkeys(_PATCHED, True))
    log.info("datadog tracing on (agent %s)", settings.agent_host)
    return True


def inject_trace(headers: dict[str, str]) -> None:
    """Add the current trace context to outgoing Kafka headers (no-op without an active span)."""
    from ddtrace.propagation.http import HTTPPropagator
    from ddtrace.trace import tracer

    span = tracer.current_span()
    if span is not None:
        HTTPPropagator.inject(span.context, headers)


@contextmanager
def span(
    name: str,
    *,
    resource: str,
    headers: Mapping[str, str] | None = None,
    enabled: bool,
    **tags: Any,
) -> Iterator[None]:
    """A span, continuing the trace whose context `headers` carry; nothing when tracing is off."""
    if not enabled:
        with nullcontext():
            yield
        return
    from ddtrace.propagation.http import HTTPPropagator
    from ddtrace.trace import tracer

    if headers:
        context = HTTPPropagator.extract(dict(headers))  # type: ignore[no-untyped-call]
        tracer.context_provider.activate(context)
    with tracer.trace(name, service="payment-processor", resource=resource) as current:
        for key, value in tags.items():
            if value is not None:
                current.set_tag(key, value)
        yield
