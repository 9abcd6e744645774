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
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings

from payment_service.config.secrets import check_secret
from payment_service.config.sections import (
    ENV_FILES,
    PRODUCTION_KAFKA_PROTOCOLS,
    ApiSettings,
    BankSettings,
    BankSimSettings,
    DatabaseSettings,
    DatadogSettings,
    KafkaSaslMechanism,
    KafkaSecurityProtocol,
    KafkaSettings,
    ProcessorSettings,
    RedisSettings,
    _config,
)
from payment_service.config.webhooks import WebhookSettings

__all__ = [
    "ENV_FILES",
    "PRODUCTION_KAFKA_PROTOCOLS",
    "ApiSettings",
    "BankSettings",
    "BankSimSettings",
    "DatabaseSettings",
    "DatadogSettings",
    "KafkaSaslMechanism",
    "KafkaSecurityProtocol",
    "KafkaSettings",
    "ProcessorSettings",
    "RedisSettings",
    "Settings",
    "WebhookSettings",
]


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
    # Ed25519 keys of the message layer (docs/kafka.md, "Signing"), each a file holding one
    # base64 line (`payment-service signing init` writes them). The API signs its commands
    # with COMMAND_SIGNING_KEY_FILE (private, the API's alone) and checks results with
    # RESULT_VERIFY_KEY_FILE (the processor's public key); the processor checks the API's
    # commands with COMMAND_VERIFY_KEY_FILE and signs results with RESULT_SIGNING_KEY_FILE
    # (private, the processor's alone). Registered producers' public keys are in PostgreSQL.
    command_signing_key_file: Path | None = None
    command_verify_key_file: Path | None = None
    result_signing_key_file: Path | None = None
    result_verify_key_file: Path | None = None

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    bank: BankSettings = Field(default_factory=BankSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings)
    banksim: BankSimSettings = Field(default_factory=BankSimSettings)
    datadog: DatadogSettings = Field(default_factory=DatadogSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)

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
            if self.webhooks.allow_private_urls:
                problems.append("WEBHOOKS_ALLOW_PRIVATE_URLS=true is for development only")
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
