"""How every Kafka client of ours authenticates: the one place the security settings become
librdkafka configuration.

`client_config()` is what the producer, the API's reply consumer, the admin client (topics,
principals) and the tests' and benchmark's clients are built from; the processor's Quix
`Application` gets the same dict as a `ConnectionConfig`. A client built any other way would
miss the credentials, so nothing else in the code names `bootstrap.servers`.

`diagnostics_config()` is what the long-running clients (the producer, the reply consumer) add:
it sends librdkafka's own log lines through Python logging, where they become JSON lines that pass
the card-data filter like any other, instead of plain text on stderr. The lines are served by the
client's `poll()`, so clients that are never polled (the CLI's admin clients) keep librdkafka's
default, stderr, where a one-shot command's operator reads them.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from payment_service.config.settings import KafkaSettings

# librdkafka's lines arrive on this logger (served by each client's poll()), as "FAC [client] text".
LIBRDKAFKA_LOGGER: Final = "payment_service.kafka.librdkafka"


class KafkaSecurityError(ValueError):
    """The security settings cannot work together (e.g. SASL without a username)."""


def security_config(kafka: KafkaSettings) -> dict[str, str]:
    """librdkafka's security keys for these settings (nothing for PLAINTEXT)."""
    protocol = kafka.security_protocol
    config: dict[str, str] = {"security.protocol": protocol.lower()}
    if protocol.startswith("SASL_"):
        config.update(_sasl(kafka))
    if protocol.endswith("SSL"):
        config.update(_tls(kafka))
    elif _tls_given(kafka):
        raise KafkaSecurityError(
            f"KAFKA_SSL_* is set but KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS"
        )
    return config


def client_config(kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    """A whole client configuration: the brokers, the security keys, then `extra`."""
    return {"bootstrap.servers": kafka.bootstrap_servers, **security_config(kafka), **extra}


def diagnostics_config(kafka: KafkaSettings) -> dict[str, Any]:
    """librdkafka's log lines through Python logging, with the `KAFKA_DEBUG` contexts asked for
    (Quix gives its clients a logger of its own: for them only `debug` is needed)."""
    config: dict[str, Any] = {"logger": logging.getLogger(LIBRDKAFKA_LOGGER)}
    if kafka.debug:
        config["debug"] = kafka.debug
    return config


def _sasl(kafka: KafkaSettings) -> dict[str, str]:
    password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else ""
    if not kafka.sasl_username or not password:
        raise KafkaSecurityError(
            f"KAFKA_SECURITY_PROTOCOL={kafka.security_protocol} needs KAFKA_SASL_USERNAME and "
            "KAFKA_SASL_PASSWORD (each process has its own; for the local stack run commands "
            "through `python3 scripts/stack.py exec -- ...`, docs/operations.md)"
        )
    return {
        "sasl.mechanisms": kafka.sasl_mechanism,
        "sasl.username": kafka.sasl_username,
        "sasl.password": password,
    }


def _tls(kafka: KafkaSettings) -> dict[str, str]:
    config: dict[str, str] = {}
    if kafka.ssl_ca_location:
        config["ssl.ca.location"] = kafka.ssl_ca_location
    has_cert, has_key = bool(kafka.ssl_certificate_location), bool(kafka.ssl_key_location)
    if has_cert != has_key:
        raise KafkaSecurityError(
            "mutual TLS needs both KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION"
        )
    if kafka.security_protocol == "SSL" and not has_cert:
        # Without a client certificate the broker sees User:ANONYMOUS, which no ACL allows.
        raise KafkaSecurityError(
            "KAFKA_SECURITY_PROTOCOL=SSL authenticates with a client certificate: set "
            "KAFKA_SSL_CERTIFICATE_LOCATION and KAFKA_SSL_KEY_LOCATION"
        )
    if has_cert:
        config["ssl.certificate.location"] = str(kafka.ssl_certificate_location)
        config["ssl.key.location"] = str(kafka.ssl_key_location)
    if kafka.ssl_key_password is not None:
        config["ssl.key.password"] = kafka.ssl_key_password.get_secret_value()
    return config


def _tls_given(kafka: KafkaSettings) -> bool:
    return any(
        (
            kafka.ssl_ca_location,
            kafka.ssl_certificate_location,
            kafka.ssl_key_location,
            kafka.ssl_key_password,
        )
    )
