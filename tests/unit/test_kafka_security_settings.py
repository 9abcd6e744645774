"""The security settings become one librdkafka configuration, used the same way by every client."""

from __future__ import annotations

from secrets import token_urlsafe
from typing import Any

import pytest
from pydantic import ValidationError

from payment_service.config.settings import KafkaSettings, Settings
from payment_service.kafka.producer import producer_config
from payment_service.kafka.security import KafkaSecurityError, client_config, security_config
from payment_service.streams.pipeline import connection_config

pytestmark = pytest.mark.unit


def kafka(**fields: Any) -> KafkaSettings:
    return KafkaSettings.model_validate({"bootstrap_servers": "b:9092", **fields})


SASL = {
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_username": "processor",
    "sasl_password": "s3cret-pw",
}


def test_plaintext_adds_only_the_protocol() -> None:
    assert security_config(kafka()) == {"security.protocol": "plaintext"}


def test_sasl_gives_mechanism_user_and_password() -> None:
    assert security_config(kafka(**SASL)) == {
        "security.protocol": "sasl_plaintext",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "processor",
        "sasl.password": "s3cret-pw",
    }


@pytest.mark.parametrize("missing", ["sasl_username", "sasl_password"])
def test_sasl_without_credentials_is_refused_with_what_to_set(missing: str) -> None:
    with pytest.raises(KafkaSecurityError, match="KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"):
        security_config(kafka(**{**SASL, missing: None}))


def test_sasl_ssl_takes_the_ca_and_mutual_tls_the_certificate_and_key() -> None:
    config = security_config(
        kafka(
            **{**SASL, "security_protocol": "SASL_SSL"},
            ssl_ca_location="/ca.pem",
        )
    )
    assert config["security.protocol"] == "sasl_ssl"
    assert config["ssl.ca.location"] == "/ca.pem"
    mtls = security_config(
        kafka(
            security_protocol="SSL",
            ssl_ca_location="/ca.pem",
            ssl_certificate_location="/client.pem",
            ssl_key_location="/client.key",
            ssl_key_password="key-pw",
        )
    )
    assert mtls == {
        "security.protocol": "ssl",
        "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/client.pem",
        "ssl.key.location": "/client.key",
        "ssl.key.password": "key-pw",
    }


@pytest.mark.parametrize(
    "fields",
    [
        {"security_protocol": "SSL"},  # no client certificate: the broker sees ANONYMOUS
        {"security_protocol": "SSL", "ssl_certificate_location": "/c.pem"},  # no key
        {"ssl_ca_location": "/ca.pem"},  # TLS settings without TLS
    ],
)
def test_inconsistent_tls_settings_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(KafkaSecurityError):
        security_config(kafka(**fields))


def test_every_client_is_built_from_the_same_configuration() -> None:
    settings = kafka(**SASL)
    expected = client_config(settings)
    assert expected["bootstrap.servers"] == "b:9092"
    producer = producer_config(settings, "payment-api-0")
    assert {k: producer[k] for k in expected} == expected
    quix = connection_config(settings).as_librdkafka_dict()
    assert quix["sasl.username"] == "processor"
    assert quix["sasl.password"] == "s3cret-pw"
    assert quix["security.protocol"] == "sasl_plaintext"
    assert "s3cret-pw" not in repr(connection_config(settings))
    assert "s3cret-pw" not in repr(settings)


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SASL_PLAINTEXT"])
def test_production_refuses_kafka_without_tls(protocol: str) -> None:
    # Strong secrets, so that only the Kafka protocol can be what production refuses.
    secrets = {"secret_key": token_urlsafe(40)}
    with pytest.raises(ValidationError, match=r"KAFKA_SECURITY_PROTOCOL=.* is refused"):
        Settings.model_validate(
            {"environment": "production", **secrets, "kafka": kafka(security_protocol=protocol)}
        )
    accepted = Settings.model_validate(
        {"environment": "production", **secrets, "kafka": kafka(security_protocol="SASL_SSL")}
    )
    assert accepted.kafka.security_protocol == "SASL_SSL"
