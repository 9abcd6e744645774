"""Configuration: one frozen `Settings`, read from the environment, `.env` and the local stack.

Variable names follow the seed README (`DATABASE_URL`, `KAFKA_BOOTSTRAP_SERVERS`,
`BANKING_API_URL`, `SECRET_KEY`, `ENCRYPTION_KEY`, `DD_*`, ...). Each section reads its own prefix,
so the names stay flat for operators while the code gets nested, typed sections.

Sources, later wins: `.stack/local.env` (written by the local stack manager: URLs and the
secrets every process may hold), `.env` (the operator's overrides), the process environment.
Private card keys are never in `local.env`: only the processor's environment names them.

Secrets have no default. Each process's composition root refuses to start without the ones it
needs (naming them); in production every secret that is set must also pass the length floor of
`config.secrets` (32 bytes of entropy, nothing trivially weak). Every variable is documented in
`.env.example`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from payment_service.config.secrets import check_secret

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


class DatabaseSettings(BaseSettings):
    model_config = _config("DATABASE_")

    url: SecretStr = SecretStr("postgresql://payment_user@localhost:5432/payment_db")
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
    # Requests being handled at once (bodies still arriving do not count); past it, 503 at once.
    max_in_flight: int = Field(default=1000, ge=1)
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
    # Each commit waits for every message in flight, pausing intake for up to one message's
    # time; committing every 5 s (Quix's default) rather than 0.5 s halved p99 with a 50 ms
    # bank (docs/benchmark.md). A crash redelivers at most this much work, idempotently.
    commit_interval_seconds: float = Field(default=5.0, gt=0)
    # Reconciliation of payments left unsettled (bank outcome unknown, or a crashed delivery).
    reconcile_interval_seconds: float = Field(default=30.0, gt=0)
    reconcile_stale_after_seconds: float = Field(default=120.0, gt=0)
    reconcile_give_up_after_seconds: float = Field(default=900.0, gt=0)
    # Transient infrastructure errors (database, Redis, Kafka) are retried this long per message.
    transient_retry_seconds: float = Field(default=20.0, gt=0)


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


class DatadogSettings(BaseSettings):
    model_config = _config("DD_")

    api_key: SecretStr | None = None
    trace_enabled: bool = False
    # DogStatsD metrics over UDP; a missing agent only drops datagrams.
    metrics_enabled: bool = True
    agent_host: str = "localhost"
    dogstatsd_port: int = 8125
    service: str = "payment-service"
    env: str = "local"


class Settings(BaseSettings):
    """All of the service's configuration; build it once in `main()` and pass it down."""

    model_config = _config("")

    environment: Literal["development", "test", "production"] = "development"
    debug: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    # HMAC key of the Idempotency-Key request hashes (the API's): at least 32 random bytes.
    secret_key: SecretStr | None = None
    # Card fingerprints, "version:base64(>= 32 bytes)" (fpk1:...): the API and the processor.
    card_fingerprint_key: SecretStr | None = None
    # The processor's private card keys, never the API's: a directory kept by
    # `payment-service cards keys ...`, or "kid:base64,..." (the first is current).
    card_private_keys_dir: Path | None = None
    card_private_keys: SecretStr | None = None
    # The encrypt-only public key (the API's): the exported JSON in a file, followed through
    # rotations, or the JSON / "kid:base64" inline.
    card_public_key_file: Path | None = None
    card_public_key: str | None = None
    # LEGACY, decrypt-only (processor): the old AES-GCM keys "kid:base64,...", kept until
    # `cards rewrap` has converted what they seal; never the API's.
    encryption_key: SecretStr | None = None

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    bank: BankSettings = Field(default_factory=BankSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    banksim: BankSimSettings = Field(default_factory=BankSimSettings)
    datadog: DatadogSettings = Field(default_factory=DatadogSettings)

    @model_validator(mode="after")
    def _no_weak_secrets_in_production(self) -> Settings:
        if self.environment == "production":
            # Missing secrets are refused by each process's root (each needs its own set).
            problems = self.secret_problems()
            if self.kafka.security_protocol not in PRODUCTION_KAFKA_PROTOCOLS:
                problems.append(
                    f"KAFKA_SECURITY_PROTOCOL={self.kafka.security_protocol} is refused: use "
                    f"{' or '.join(PRODUCTION_KAFKA_PROTOCOLS)} (TLS)"
                )
            if problems:
                raise ValueError("; ".join(problems) + " (production refuses weak settings)")
        return self

    def secret_problems(self) -> list[str]:
        """What is too weak among the secrets that are set (the roots warn outside production)."""
        found: list[str | None] = []
        if self.secret_key is not None:
            found.append(check_secret("SECRET_KEY", self.secret_key.get_secret_value()))
        if self.card_fingerprint_key is not None:
            _, _, key = self.card_fingerprint_key.get_secret_value().partition(":")
            found.append(check_secret("CARD_FINGERPRINT_KEY", key))
        for name in ("card_private_keys", "encryption_key"):
            value: SecretStr | None = getattr(self, name)
            entries = value.get_secret_value().split(",") if value is not None else []
            for index, entry in enumerate(entries, start=1):
                key = entry.partition(":")[2]
                found.append(check_secret(f"{name.upper()} entry {index}", key))
        return [p for p in found if p]

    @classmethod
    def load(cls) -> Settings:
        """Read the settings; the entry point of every process."""
        return cls()

    def require_secret(
        self, name: Literal["secret_key", "encryption_key", "card_fingerprint_key"]
    ) -> str:
        """The secret's value, or a clear error telling the operator what to set."""
        value: SecretStr | None = getattr(self, name)
        if value is None or not value.get_secret_value():
            hint = "run `make up` (it generates local keys) or set it in .env"
            raise RuntimeError(f"{name.upper()} is not set: {hint}")
        return value.get_secret_value()
