"""docker-compose.yml describes the same stack as the native one (scripts/stack.py)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from payment_service.config.settings import ApiSettings, BankSimSettings, Settings
from tests.fixtures.stack import PROJECT, load_stack_script

pytestmark = pytest.mark.unit

stack = load_stack_script()
COMPOSE = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = ("banksim", "processor", "api")
REQUIRED_APP_VARS = {
    "DATABASE_URL",
    "KAFKA_BOOTSTRAP_SERVERS",
    "REDIS_URL",
    "BANKING_API_URL",
    "SECRET_KEY",
    "CARD_FINGERPRINT_KEY",
    "CARD_PUBLIC_KEY_FILE",
}
PRIVATE_KEY_VARS = {"CARD_PRIVATE_KEYS_DIR", "CARD_PRIVATE_KEYS", "ENCRYPTION_KEY"}


def config_variables() -> set[str]:
    """Every environment variable name that Settings reads."""
    names = set()
    for name, field in Settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseSettings):
            prefix = str(kind.model_config.get("env_prefix", ""))
            names |= {f"{prefix}{sub}".upper() for sub in kind.model_fields}
        else:
            names.add(name.upper())
    return names


def published_ports(service: dict[str, Any]) -> set[int]:
    ports = set()
    for spec in service.get("ports", []):
        host, _, container = str(spec).split("/")[0].rpartition(":")
        assert host == container, f"{spec}: host and container ports should match"
        ports.add(int(host))
    return ports


def test_services_of_the_native_stack_are_all_there() -> None:
    expected = {"kafka", "postgres", "redis", *APP_SERVICES, "datadog-agent"}
    assert expected <= set(SERVICES)
    assert SERVICES["datadog-agent"]["profiles"] == ["datadog"]
    for name in expected - {"datadog-agent"}:
        assert "profiles" not in SERVICES[name], f"{name} must start by default"
        assert "healthcheck" in SERVICES[name] or name == "processor", f"{name}: healthcheck"


def test_ports_match_the_native_stack_and_settings() -> None:
    defaults = stack.DEFAULT_PORTS
    assert (defaults["kafka"], defaults["postgres"], defaults["redis"]) == (9092, 5432, 6379)
    assert (defaults["banksim"], defaults["api"]) == (1080, 8000)
    assert defaults["api"] == ApiSettings.model_fields["port"].default
    assert defaults["banksim"] == BankSimSettings.model_fields["port"].default
    for name in ("kafka", "postgres", "redis", "banksim", "api"):
        assert published_ports(SERVICES[name]) == {defaults[name]}, name


def test_app_services_run_the_cli_with_known_variables() -> None:
    known = config_variables()
    for name in APP_SERVICES:
        service = SERVICES[name]
        assert service["command"] == [name]
        env = service["environment"]
        assert set(env) >= REQUIRED_APP_VARS, name
        unknown = set(env) - known
        assert not unknown, f"{name} sets variables that config.py does not read: {unknown}"
    assert SERVICES["api"]["environment"]["API_PORT"] == stack.DEFAULT_PORTS["api"]
    assert SERVICES["banksim"]["environment"]["BANKSIM_PORT"] == stack.DEFAULT_PORTS["banksim"]


def test_secrets_are_never_given_defaults_in_compose() -> None:
    env = SERVICES["api"]["environment"]
    for name in ("SECRET_KEY", "CARD_FINGERPRINT_KEY"):
        assert str(env[name]).startswith(f"${{{name}:?"), f"{name} must be required, not defaulted"


def test_only_the_processor_gets_the_private_card_keys() -> None:
    for name in ("api", "banksim"):
        assert not PRIVATE_KEY_VARS & set(SERVICES[name]["environment"]), name
        mounts = " ".join(SERVICES[name].get("volumes", []))
        assert "card-keys-private" not in mounts, name
    assert SERVICES["processor"]["environment"]["CARD_PRIVATE_KEYS_DIR"] == "/card-keys/private"
    assert "card-keys-private:/card-keys/private" in SERVICES["processor"]["volumes"]
    assert "card-keys-public:/card-keys/public:ro" in SERVICES["api"]["volumes"]
    password = SERVICES["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert str(password).startswith("${POSTGRES_PASSWORD:?")


def test_database_and_kafka_settings_match_the_native_stack(tmp_path: Path) -> None:
    pg = SERVICES["postgres"]["environment"]
    assert (pg["POSTGRES_USER"], pg["POSTGRES_DB"]) == (stack.PG_USER, stack.PG_DB)
    assert f"@postgres:5432/{stack.PG_DB}" in SERVICES["api"]["environment"]["DATABASE_URL"]
    kafka = SERVICES["kafka"]["environment"]
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller"
    cfg = stack.Config(dir=tmp_path, ports=dict(stack.DEFAULT_PORTS))
    users = {name: "pw" for name in ("broker", "controller")}
    props = stack.kafka_server_properties(cfg, tmp_path / "data", users)
    assert "auto.create.topics.enable=false" in props.splitlines()
    assert "process.roles=broker,controller" in props.splitlines()


def test_native_local_env_uses_the_same_variable_names(tmp_path: Path) -> None:
    args = argparse.Namespace(dir=str(tmp_path))
    cfg = stack.load_config(args)
    values = stack.ensure_local_env(cfg)
    names = set(values) - {"POSTGRES_PASSWORD"}
    assert names >= REQUIRED_APP_VARS
    assert names <= config_variables()


def test_kafka_is_secured_as_in_the_native_stack(tmp_path: Path) -> None:
    kafka = SERVICES["kafka"]["environment"]
    cfg = stack.Config(dir=tmp_path, ports=dict(stack.DEFAULT_PORTS))
    native = stack.kafka_server_properties(
        cfg, tmp_path / "data", {"broker": "b", "controller": "c"}
    )
    native_lines = set(native.splitlines())
    for key in (
        "authorizer.class.name",
        "allow.everyone.if.no.acl.found",
        "super.users",
        "sasl.enabled.mechanisms",
        "sasl.mechanism.controller.protocol",
    ):
        assert f"{key}={kafka['KAFKA_' + key.upper().replace('.', '_')]}" in native_lines, key
    protocols = {p.split(":")[1] for p in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")}
    assert protocols == {"SASL_PLAINTEXT"}
    for name in ("broker", "admin"):
        assert f"name={name}," in SERVICES["kafka"]["command"][-1]  # SCRAM users at format time


def test_each_app_logs_in_to_kafka_as_its_own_user_with_a_required_password() -> None:
    expected = {"processor": "processor", "api": "api", "init": "admin"}
    for name, user in expected.items():
        env = SERVICES[name]["environment"]
        assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT", name
        assert env["KAFKA_SASL_USERNAME"] == user, name
        assert str(env["KAFKA_SASL_PASSWORD"]).startswith(f"${{KAFKA_{user.upper()}_PASSWORD:?")
    assert "KAFKA_SASL_PASSWORD" not in SERVICES["banksim"]["environment"]
    assert "kafka bootstrap" in SERVICES["init"]["entrypoint"][-1]
