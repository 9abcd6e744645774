"""The sections of `Settings` (config/settings.py): one frozen pydantic-settings class per prefix.

`KAFKA_*`, `DATABASE_*`, `REDIS_*`, `BANKING_API_*`, `API_*`, `PROCESSOR_*`, `BANKSIM_*`, `DD_*`;
each reads the same sources as `Settings` (`ENV_FILES`, then the environment).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_FILES = (".stack/local.env", ".env")


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=ENV_FILES,
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )


KafkaSecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"]
KafkaSaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
# Without TLS anyone on the network path reads commands and results (DESIGN.md §3, Transport).
PRODUCTION_KAFKA_PROTOCOLS = ("SASL_SSL", "SSL")


class KafkaSettings(BaseSettings):
    model_config = _config("KAFKA_")

    bootstrap_servers: str = "localhost:9092"
    # How this process authenticates to the broker; `kafka/security.py` turns these into the
    # librdkafka keys every client of ours uses. The local stack uses SASL_PLAINTEXT with
    # SCRAM-SHA-512 and gives each process its own username and password.
    security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    sasl_mechanism: KafkaSaslMechanism = "SCRAM-SHA-512"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    # TLS (SASL_SSL, SSL): the CA that signed the brokers' certificates; for mutual TLS (SSL),
    # this client's certificate and private key (PEM files) and the key's password.
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    topic_requests: str = "payments.requests"
    topic_results: str = "payments.results"
    topic_audit: str = "payments.audit"
    topic_dlq: str = "payments.dlq"
    requests_partitions: int = Field(default=6, ge=1)
    # One partition per API instance (reply routing, DESIGN.md §3); this is the most instances.
    results_partitions: int = Field(default=4, ge=1)
    audit_partitions: int = Field(default=3, ge=1)
    dlq_partitions: int = Field(default=1, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    consumer_group: str = "payment-processor"
    linger_ms: int = Field(default=1, ge=0)
    produce_timeout_seconds: float = Field(default=5.0, gt=0)
    # librdkafka debug contexts for every client (e.g. "broker,topic"; "all" is very verbose).
    # Its lines go through our logging as JSON at DEBUG level, so they need LOG_LEVEL=DEBUG.
    debug: str | None = None


class DatabaseSettings(BaseSettings):
    model_config = _config("DATABASE_")

    url: SecretStr = SecretStr("postgresql://payment_user@localhost:5432/payment_db")
    # The owner role that migrations run as (DATABASE_MIGRATION_URL); only `migrate` and the
    # operators' tamper tests use it. Unset: migrations run as `url`'s role (one role for all).
    migration_url: SecretStr | None = None
    pool_min_size: int = Field(default=2, ge=1)
    pool_max_size: int = Field(default=20, ge=1)
    command_timeout_seconds: float = Field(default=5.0, gt=0)
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    # Longest wait for a free pooled connection (asyncpg's own default is forever).
    pool_acquire_timeout_seconds: float = Field(default=5.0, gt=0)


class RedisSettings(BaseSettings):
    model_config = _config("REDIS_")

    url: SecretStr = SecretStr("redis://localhost:6379/0")
    socket_timeout_seconds: float = Field(default=2.0, gt=0)
    connect_timeout_seconds: float = Field(default=2.0, gt=0)
    cvv_ttl_seconds: int = Field(default=300, ge=10)
    # Connections per process; a caller waits up to pool_timeout for one rather than failing.
    max_connections: int = Field(default=200, ge=1)
    pool_timeout_seconds: float = Field(default=2.0, gt=0)


class BankSettings(BaseSettings):
    model_config = _config("BANKING_API_")

    url: str = "http://localhost:1080"
    connect_timeout_seconds: float = Field(default=1.0, gt=0)
    read_timeout_seconds: float = Field(default=5.0, gt=0)
    total_timeout_seconds: float = Field(default=8.0, gt=0)
    max_attempts: int = Field(default=4, ge=1)
    backoff_base_seconds: float = Field(default=0.05, gt=0)
    backoff_cap_seconds: float = Field(default=2.0, gt=0)
    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_seconds: float = Field(default=10.0, gt=0)
    max_connections: int = Field(default=200, ge=1)
    # Adaptive (AIMD) bound on calls in flight; never above max_connections, so no call
    # waits for a pooled connection once it has a slot.
    max_concurrency: int = Field(default=200, ge=1)
    min_concurrency: int = Field(default=8, ge=1)
    # How long a call that could not be sent (breaker open, no slot, bank unreachable) keeps
    # waiting and retrying before it raises BankNotSent.
    not_sent_budget_seconds: float = Field(default=30.0, ge=0)

    @model_validator(mode="after")
    def _concurrency_bounds(self) -> BankSettings:
        if self.min_concurrency > self.max_concurrency:
            raise ValueError("BANKING_API_MIN_CONCURRENCY must not exceed _MAX_CONCURRENCY")
        return self

    @property
    def concurrency_ceiling(self) -> int:
        """The limiter's ceiling: the configured maximum, capped by the connection pool."""
        return max(self.min_concurrency, min(self.max_concurrency, self.max_connections))


class ApiSettings(BaseSettings):
    model_config = _config("API_")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Which partition of the results topic this instance reads its answers from.
    instance: int = Field(default=0, ge=0)
    # SO_REUSEPORT: several API processes on one port, the kernel spreading connections among
    # them (docs/scaling.md). Off by default: a second stack on a taken port must fail loudly.
    reuse_port: bool = False
    sync_timeout_seconds: float = Field(default=10.0, gt=0)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(default=6000, ge=1)
    # Self-protection (docs/architecture.md, "The API protects itself"). Before authentication:
    # requests admitted per second per client address and per API-key prefix (token buckets).
    preauth_rate_per_second: float = Field(default=1000.0, gt=0)
    preauth_burst: int = Field(default=2000, ge=1)
    # PostgreSQL lookups of keys not in the cache, per second per client address and key prefix.
    auth_lookup_rate_per_second: float = Field(default=20.0, gt=0)
    auth_lookup_burst: int = Field(default=100, ge=1)
    # How long an unknown key is answered 401 from memory.
    auth_negative_cache_seconds: float = Field(default=10.0, gt=0)
    # /health degrades when no processor heartbeat is this fresh or their lag passes the limit.
    processor_stale_seconds: float = Field(default=10.0, gt=0)
    processor_max_lag: int = Field(default=1000, ge=0)
    # Requests being handled at once (bodies still arriving do not count); past it, 503 at once.
    max_in_flight: int = Field(default=1000, ge=1)
    # While the fastest payment request of an interval takes longer than the target, payments
    # queue: the cap drops towards the in-flight count, never below the minimum (http/shedding.py).
    shed_target_seconds: float = Field(default=0.5, gt=0)
    shed_interval_seconds: float = Field(default=1.0, gt=0)
    shed_min_in_flight: int = Field(default=128, ge=1)
    # The whole body must arrive within this; else 408 and the connection is closed.
    body_read_timeout_seconds: float = Field(default=10.0, gt=0)
    # An idle connection, or one whose request line and headers have not all arrived, is closed
    # after this (aiohttp's keep-alive timer also runs from the moment a connection opens).
    keepalive_timeout_seconds: float = Field(default=15.0, gt=0)
    # After an early answer (413, 408), how long to drain an unread body before closing.
    lingering_seconds: float = Field(default=2.0, ge=0)
    max_request_line_bytes: int = Field(default=8190, ge=256)
    max_header_bytes: int = Field(default=8190, ge=256)
    max_headers: int = Field(default=64, ge=8)


class ProcessorSettings(BaseSettings):
    model_config = _config("PROCESSOR_")

    max_in_flight: int = Field(default=256, ge=1)
    # One merchant's storm takes at most this many of the slots above, so others still run.
    max_in_flight_per_merchant: int = Field(default=64, ge=1)
    # Messages read ahead of the slots (waiting behind their key or their merchant's share);
    # a storm of one merchant is read past this far so that the others' commands reach a slot.
    max_queued: int = Field(default=4096, ge=1)
    # Each commit waits for every message in flight, pausing intake for up to one message's
    # time; committing every 5 s (Quix's default) rather than 0.5 s halved p99 with a 50 ms
    # bank (docs/benchmark.md). A crash redelivers at most this much work, idempotently.
    commit_interval_seconds: float = Field(default=5.0, gt=0)
    # Reconciliation of payments left unsettled (bank outcome unknown, or a crashed delivery).
    reconcile_interval_seconds: float = Field(default=30.0, gt=0)
    reconcile_stale_after_seconds: float = Field(default=120.0, gt=0)
    reconcile_give_up_after_seconds: float = Field(default=900.0, gt=0)
    # A manual-capture hold not captured within this (7 days, as card networks hold) is voided.
    authorization_validity_seconds: float = Field(default=7 * 86400.0, gt=0)
    # Transient infrastructure errors (database, Redis, Kafka) are retried this long per message.
    transient_retry_seconds: float = Field(default=20.0, gt=0)
    # How long a producer's registry entry is trusted before it is read again: a revocation
    # takes effect within this, with no restart.
    producer_cache_seconds: float = Field(default=2.0, gt=0, le=60)
    # The audit relay (streams/audit_relay.py): audit rows to `payments.audit`, outbox-style.
    audit_relay_interval_seconds: float = Field(default=0.2, gt=0, le=60)
    audit_relay_batch: int = Field(default=500, ge=1, le=10000)
    # A batch not acknowledged by Kafka within this is given up and read again (same event ids).
    audit_relay_produce_timeout_seconds: float = Field(default=30.0, gt=0)
    # With no cursor yet: "end" publishes from now on, "beginning" the whole audit history.
    audit_relay_from: Literal["end", "beginning"] = "end"


class BankSimSettings(BaseSettings):
    model_config = _config("BANKSIM_")

    host: str = "127.0.0.1"
    port: int = Field(default=1080, ge=1, le=65535)
    latency_ms: float = Field(default=3.0, ge=0)
    jitter_ms: float = Field(default=1.0, ge=0)
    # Faults active from the start, a JSON list of fault rules (docs/bank.md), e.g.
    # BANKSIM_FAULTS='[{"mode": "reset", "probability": 0.05}]'.
    faults: list[dict[str, Any]] = Field(default_factory=list)
    # Seed for latency jitter and fault probabilities, for reproducible runs.
    seed: int | None = None
    access_log: bool = False
    # The books (ledger, holds, idempotency records) in one SQLite file; kept across restarts.
    # The native stack and the test fixtures pass their own; the default is the stack's folder.
    ledger_path: Path = Path(".stack/banksim/ledger.sqlite3")


def _package_version() -> str:
    try:
        return version("payment-service")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0+unknown"


class DatadogSettings(BaseSettings):
    model_config = _config("DD_")

    api_key: SecretStr | None = None
    trace_enabled: bool = False
    # DogStatsD metrics over UDP; a missing agent only drops datagrams (reported once, counted).
    metrics_enabled: bool = True
    agent_host: str = "localhost"
    dogstatsd_port: int = 8125
    # Unified service tagging: the same service, env and version on metrics, traces and logs.
    service: str = "payment-service"
    env: str = "local"
    version: str = Field(default_factory=_package_version)
    # ddtrace features, given to ddtrace by `ops/telemetry.configure_tracing` (tracing on only):
    # Data Streams Monitoring of the Kafka pipeline, SQL comments that link DBM to traces, and
    # trace ids on log lines.
    data_streams_enabled: bool = False
    dbm_propagation_mode: Literal["disabled", "service", "full"] = "service"
    logs_injection: bool = True
    # How often the gauges (pool usage, consumer lag from librdkafka's statistics) are sampled.
    metrics_interval_seconds: float = Field(default=10.0, gt=0)
