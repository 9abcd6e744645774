"""docker-compose.yml and the Dockerfile describe the same stack as the native one (stack.py).

Compared: the services and their health checks, the servers' versions (Kafka from the jars'
pom, PostgreSQL and Redis from the installed Debian packages when present), the variable names
against the settings, the ports and that they are published on 127.0.0.1 only, the secrets, and
the image's build (multi-stage, Python 3.12, non-root, a writable working directory). When the
compose plugin is installed, `docker compose config` (it needs no engine) validates the file.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings
from scripts import dockerstack
from scripts import stackctl as stack
from scripts.stackctl.kafka_jars import kafka_version

from payment_service.config.settings import ApiSettings, BankSimSettings, Settings
from tests.fixtures.containers import CONTAINER_IMAGES
from tests.fixtures.stack import PROJECT

pytestmark = pytest.mark.unit

COMPOSE = yaml.safe_load((PROJECT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
APP_SERVICES = ("banksim", "processor", "api")
INFRA_SERVICES = ("kafka", "postgres", "redis")
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
DOCKERFILE = (PROJECT / "Dockerfile").read_text()


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
    """The host ports of a service; each must be bound to 127.0.0.1 and equal its container port."""
    ports = set()
    for spec in service.get("ports", []):
        address, host, container = str(spec).split("/")[0].split(":")
        assert address == "127.0.0.1", f"{spec}: publish on 127.0.0.1 only"
        assert host == container, f"{spec}: host and container ports should match"
        ports.add(int(host))
    return ports


def image_tag(service: str) -> tuple[str, str]:
    name, _, tag = str(SERVICES[service]["image"]).partition(":")
    return name, tag


def test_services_of_the_native_stack_are_all_there_with_health_checks() -> None:
    expected = {*INFRA_SERVICES, *APP_SERVICES, "init", "datadog-agent"}
    assert expected <= set(SERVICES)
    assert set(stack.ALL) <= set(SERVICES)
    assert SERVICES["datadog-agent"]["profiles"] == ["datadog"]
    for name in expected - {"datadog-agent"}:
        assert "profiles" not in SERVICES[name], f"{name} must start by default"
    for name in (*INFRA_SERVICES, "banksim", "api"):
        assert SERVICES[name]["healthcheck"]["test"], f"{name}: healthcheck"
        assert not SERVICES[name]["healthcheck"].get("disable"), name
    # No port to probe: the image's API check must not mark them unhealthy.
    for name in ("processor", "init"):
        assert SERVICES[name]["healthcheck"] == {"disable": True}, name
    assert "/health" in " ".join(SERVICES["api"]["healthcheck"]["test"])
    assert "/health" in " ".join(SERVICES["banksim"]["healthcheck"]["test"])


def test_app_services_wait_for_what_they_need() -> None:
    for name in ("processor", "api"):
        needs = SERVICES[name]["depends_on"]
        assert needs["init"]["condition"] == "service_completed_successfully", name
        assert needs["redis"]["condition"] == "service_healthy", name
    init = SERVICES["init"]["depends_on"]
    assert {init["kafka"]["condition"], init["postgres"]["condition"]} == {"service_healthy"}
    assert "migrate" in " ".join(SERVICES["init"]["entrypoint"])
    assert "topics" in " ".join(SERVICES["init"]["entrypoint"])


def test_server_versions_match_the_native_stack() -> None:
    assert image_tag("kafka") == ("apache/kafka", kafka_version())
    assert kafka_version().startswith("4.1.")
    pg_name, pg_tag = image_tag("postgres")
    assert (pg_name, pg_tag.split(".")[0]) == ("postgres", "15")
    native_pg = [p.parts[-3] for p in Path("/usr/lib/postgresql").glob("*/bin/initdb")]
    if native_pg:
        assert pg_tag.split(".")[0] in native_pg, f"native PostgreSQL {native_pg}, compose {pg_tag}"
    redis_name, redis_tag = image_tag("redis")
    assert redis_name == "redis"
    redis_server = shutil.which("redis-server")
    if redis_server:
        out = subprocess.run(
            [redis_server, "--version"], capture_output=True, text=True, check=True
        ).stdout
        match = re.search(r"v=(\d+)\.", out)
        assert match, out
        assert redis_tag.split(".")[0] == match.group(1), f"native Redis {out.strip()}"


def test_testcontainers_use_the_compose_images() -> None:
    assert {name: SERVICES[name]["image"] for name in INFRA_SERVICES} == CONTAINER_IMAGES


def test_ports_match_the_native_stack_and_settings() -> None:
    defaults = stack.DEFAULT_PORTS
    assert (defaults["kafka"], defaults["postgres"], defaults["redis"]) == (9092, 5432, 6379)
    assert (defaults["banksim"], defaults["api"]) == (1080, 8000)
    assert defaults["api"] == ApiSettings.model_fields["port"].default
    assert defaults["banksim"] == BankSimSettings.model_fields["port"].default
    for name in ("kafka", "postgres", "redis", "banksim", "api"):
        assert published_ports(SERVICES[name]) == {defaults[name]}, name
    for name, service in SERVICES.items():
        published_ports(service)  # every published port, the agent's too, on 127.0.0.1
        assert "network_mode" not in service, name


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
    assert "${POSTGRES_PASSWORD:?" in SERVICES["api"]["environment"]["DATABASE_URL"]


def test_redis_requires_a_password_and_the_urls_carry_it() -> None:
    redis = SERVICES["redis"]
    assert str(redis["environment"]["REDIS_PASSWORD"]).startswith("${REDIS_PASSWORD:?")
    command = " ".join(redis["command"])
    assert '--requirepass "$$REDIS_PASSWORD"' in command
    assert "REDISCLI_AUTH" in " ".join(redis["healthcheck"]["test"])
    for name in (*APP_SERVICES, "init"):
        url = SERVICES[name]["environment"]["REDIS_URL"]
        assert url.startswith("redis://:${REDIS_PASSWORD:?"), name
        assert url.endswith("@redis:6379/0"), name


def test_datadog_agent_is_addressed_only_with_its_profile() -> None:
    env = SERVICES["api"]["environment"]
    assert env["DD_AGENT_HOST"] == "${DD_AGENT_HOST:-localhost}"
    assert "datadog-agent" not in yaml.safe_dump({k: SERVICES[k] for k in APP_SERVICES})
    makefile = (PROJECT / "Makefile").read_text()
    line = next(ln for ln in makefile.splitlines() if "DD_AGENT_HOST=datadog-agent" in ln)
    assert "$(if $(DATADOG),COMPOSE_PROFILES=datadog " in line


def test_kafka_is_advertised_to_the_host_where_it_is_published() -> None:
    env = SERVICES["kafka"]["environment"]
    advertised = dict(item.split("://", 1) for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["EXTERNAL"] == f"127.0.0.1:{stack.DEFAULT_PORTS['kafka']}"
    assert advertised["INTERNAL"] == SERVICES["api"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    assert set(protocols) == {"CONTROLLER", "INTERNAL", "EXTERNAL"}


def test_kafka_keeps_its_data_on_the_volume() -> None:
    kafka = SERVICES["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in kafka["volumes"]}
    assert mounts.get(log_dirs) == "kafka-data"
    assert "kafka-data" in COMPOSE["volumes"]
    assert "postgres-data:/var/lib/postgresql/data" in SERVICES["postgres"]["volumes"]


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


def test_image_is_multi_stage_slim_and_non_root() -> None:
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", DOCKERFILE, re.MULTILINE)
    assert [alias for _, alias in stages] == ["builder", "runtime"]
    assert "ARG PYTHON_IMAGE=python:3.12-slim" in DOCKERFILE
    runtime = DOCKERFILE.split("AS runtime", 1)[1]
    assert re.search(r"^USER 10001", runtime, re.MULTILINE)
    assert "WORKDIR /var/lib/payment-service" in runtime
    assert "--home-dir /var/lib/payment-service" in runtime
    assert "HEALTHCHECK" in runtime
    # The runtime stage takes only the built venv: no sources, tests or build tools.
    copies = re.findall(r"^COPY\s+(.*)$", runtime, re.MULTILINE)
    assert copies == ["--from=builder /opt/venv /opt/venv"]
    assert not re.search(r"apt-get|build-essential|gcc", DOCKERFILE)
    assert "--require-hashes" in DOCKERFILE
    assert "requirements-prod.lock" in DOCKERFILE


def test_build_context_and_git_leave_out_tests_bench_and_state() -> None:
    ignored = (PROJECT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored, "the build context is an allow-list"
    for path in ("tests/", "bench/", ".stack/", "state/", ".env", ".docker.env"):
        assert path in ignored, path
    allowed = {line[1:] for line in ignored if line.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "LICENSE", "requirements-prod.lock", "src/"}
    gitignored = (PROJECT / ".gitignore").read_text().splitlines()
    for path in ("state/", ".docker.env", ".stack/"):
        assert path in gitignored, path


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True, check=False).returncode
    != 0,
    reason="no docker compose plugin here (it would validate the file without an engine)",
)
def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    env_file = tmp_path / "docker.env"
    secrets = dockerstack.SECRETS
    env_file.write_text("".join(f"{name}=test-{name.lower()}\n" for name in secrets))
    for extra in ([], ["--profile", "datadog"]):
        done = subprocess.run(
            ["docker", "compose", "--env-file", str(env_file), *extra, "config", "--quiet"],
            capture_output=True,
            text=True,
            cwd=PROJECT,
            check=False,
        )
        assert done.returncode == 0, done.stderr
