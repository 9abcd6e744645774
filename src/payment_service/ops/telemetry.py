"""Datadog: DogStatsD metrics and ddtrace spans, each off unless configured.

Metrics go over UDP to the agent (`DD_AGENT_HOST`:`DD_DOGSTATSD_PORT`), buffered, so a missing
agent costs nothing but a dropped datagram, reported once (`statsd_drops`). Every metric is one
of the catalogue's (`metric_catalog`). Tracing (`DD_TRACE_ENABLED=true`) patches aiohttp,
asyncpg, redis, confluent-kafka and logging, and carries the trace context across Kafka in the
command's headers so one trace follows a payment from the HTTP request through the processor.

Unified service tagging: `DD_SERVICE`, `DD_ENV` and `DD_VERSION` (the settings) are the constant
tags of every metric, ddtrace's service, env and version, and the `dd.*` fields of every log line.

Tags and span tags name payments by id, status and codes only; never card data.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from typing import Any

from datadog.dogstatsd.base import DogStatsd

from payment_service.config.settings import DatadogSettings
from payment_service.ops.metric_catalog import NAMESPACE, Metric
from payment_service.ops.statsd_drops import STATSD_LOGGER, AgentDropFilter

log = logging.getLogger(__name__)

_PATCHED = ("aiohttp", "asyncpg", "redis", "kafka", "logging")
Tags = Mapping[str, str | None]


class Metrics:
    """Counters, gauges and distributions of the catalogue, under the `payment.` namespace."""

    def __init__(self, settings: DatadogSettings, process: str) -> None:
        self._statsd: DogStatsd | None = None
        self._drops: AgentDropFilter | None = None
        if settings.metrics_enabled:
            self._drops = AgentDropFilter(f"{settings.agent_host}:{settings.dogstatsd_port}")
            logging.getLogger(STATSD_LOGGER).addFilter(self._drops)
            self._statsd = DogStatsd(
                host=settings.agent_host,
                port=settings.dogstatsd_port,
                namespace=NAMESPACE,
                constant_tags=[
                    f"service:{settings.service}",
                    f"env:{settings.env}",
                    f"version:{settings.version}",
                    f"process:{process}",
                ],
                disable_telemetry=True,
                disable_buffering=False,
                disable_background_sender=True,
            )

    @property
    def dropped_packets(self) -> int:
        """Datagrams the kernel refused since start (no agent listening)."""
        return self._drops.dropped if self._drops is not None else 0

    def increment(self, metric: Metric, tags: Tags | None = None, value: float = 1) -> None:
        assert metric.kind == "count", metric
        if self._statsd is not None:
            self._statsd.increment(metric.name, value, tags=_tags(tags))

    def timing(self, metric: Metric, milliseconds: float, tags: Tags | None = None) -> None:
        assert metric.kind == "distribution", metric
        if self._statsd is not None:
            self._statsd.distribution(metric.name, milliseconds, tags=_tags(tags))

    def gauge(self, metric: Metric, value: float, tags: Tags | None = None) -> None:
        assert metric.kind == "gauge", metric
        if self._statsd is not None:
            self._statsd.gauge(metric.name, value, tags=_tags(tags))

    def flush(self) -> None:
        if self._statsd is not None:
            self._statsd.flush()

    def close(self) -> None:
        if self._statsd is not None:
            self._statsd.flush()
            self._statsd.close_socket()
        if self._drops is not None:
            logging.getLogger(STATSD_LOGGER).removeFilter(self._drops)


def _tags(tags: Tags | None) -> list[str] | None:
    if not tags:
        return None
    return [f"{k}:{v}" for k, v in tags.items() if v is not None]


def ddtrace_environment(settings: DatadogSettings) -> dict[str, str]:
    """The settings ddtrace reads from the environment (only there, and when it is imported)."""
    return {
        "DD_TRACE_ENABLED": "true",
        "DD_SERVICE": settings.service,
        "DD_ENV": settings.env,
        "DD_VERSION": settings.version,
        "DD_AGENT_HOST": settings.agent_host,
        "DD_DOGSTATSD_PORT": str(settings.dogstatsd_port),
        "DD_DATA_STREAMS_ENABLED": str(settings.data_streams_enabled).lower(),
        "DD_DBM_PROPAGATION_MODE": settings.dbm_propagation_mode,
        "DD_LOGS_INJECTION": str(settings.logs_injection).lower(),
        # ddtrace adds a plain-text stderr handler of its own; its records reach ours anyway.
        "DD_TRACE_LOG_STREAM_HANDLER": "false",
    }


def configure_tracing(settings: DatadogSettings) -> bool:
    """Give ddtrace our settings and patch the libraries we use, when tracing is on.

    Call it before anything imports confluent_kafka: ddtrace traces Kafka (and Data Streams
    Monitoring sees it) by replacing `confluent_kafka.Producer`/`Consumer`, which a module that
    imported them earlier would not see. The CLI does, before it imports a process's modules.
    """
    if not settings.trace_enabled:
        return False
    if "ddtrace" in sys.modules:
        log.warning("ddtrace was imported before its settings were given; DD_* may not apply")
    os.environ.update(ddtrace_environment(settings))
    # An empty poll is a span each time (the reply consumer polls ten times a second).
    os.environ.setdefault("DD_KAFKA_EMPTY_POLL_ENABLED", "false")
    from ddtrace import patch

    patch(**dict.fromkeys(_PATCHED, True))
    log.info(
        "datadog tracing on (agent %s; data streams %s; dbm propagation %s)",
        settings.agent_host,
        "on" if settings.data_streams_enabled else "off",
        settings.dbm_propagation_mode,
    )
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
    # No service of its own: the process's DD_SERVICE, as on its metrics and logs.
    with tracer.trace(name, resource=resource) as current:
        for key, value in tags.items():
            if value is not None:
                current.set_tag(key, value)
        yield
