"""The stack manager's pure parts (scripts/stackctl): ports, secrets, Kafka security, processes."""

from __future__ import annotations

import argparse
import ast
import base64
import hashlib
import hmac
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from scripts import stackctl
from scripts.stackctl import apps, kafka, kafka_users, kafka_wire

pytestmark = pytest.mark.unit


def namespace(tmp_path: Path, **ports: int) -> argparse.Namespace:
    return argparse.Namespace(dir=str(tmp_path), **{f"{k}_port": v for k, v in ports.items()})


def test_defaults_then_saved_ports_then_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_PORT", raising=False)
    monkeypatch.delenv("BANKSIM_PORT", raising=False)
    cfg = stackctl.load_config(namespace(tmp_path))
    assert cfg.ports == stackctl.DEFAULT_PORTS
    cfg = stackctl.load_config(namespace(tmp_path, kafka=19092, postgres=15432))
    assert (cfg.ports["kafka"], cfg.ports["controller"], cfg.ports["postgres"]) == (
        19092,
        19093,
        15432,
    )
    stackctl.save_ports(cfg)
    again = stackctl.load_config(namespace(tmp_path))  # no options: the ports used last time
    assert again.ports == cfg.ports
    monkeypatch.setenv("API_PORT", "18000")
    assert stackctl.load_config(namespace(tmp_path)).ports["api"] == 18000


def test_controller_port_must_differ(tmp_path: Path) -> None:
    with pytest.raises(stackctl.StackError):
        stackctl.load_config(namespace(tmp_path, kafka=19092, controller=19092))


def test_local_env_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    cfg = stackctl.Config(dir=tmp_path, ports=dict(stackctl.DEFAULT_PORTS))
    first = stackctl.ensure_local_env(cfg)
    assert stat.S_IMODE(os.stat(cfg.local_env).st_mode) == 0o600
    version, _, key = first["CARD_FINGERPRINT_KEY"].partition(":")
    assert version == "fpk1"
    assert len(base64.b64decode(key)) == 32
    assert len(first["SECRET_KEY"]) >= 40
    assert first["CARD_PUBLIC_KEY_FILE"] == str(cfg.card_public_key)
    # Every process reads local.env: no private card key, no legacy key in it.
    assert not {"ENCRYPTION_KEY", "CARD_PRIVATE_KEYS", "CARD_PRIVATE_KEYS_DIR"} & set(first)
    processor = stackctl.read_env_file(cfg.processor_env)
    assert processor == {
        "CARD_PRIVATE_KEYS_DIR": str(cfg.card_keys),
        "RESULT_SIGNING_KEY_FILE": str(cfg.signing_keys / "processor-result.key"),
    }
    # The message layer's public keys are for everyone; its private keys are not.
    assert first["RESULT_VERIFY_KEY_FILE"].endswith(".pub")
    assert not {"COMMAND_SIGNING_KEY_FILE", "RESULT_SIGNING_KEY_FILE"} & set(first)
    assert stat.S_IMODE(os.stat(cfg.processor_env).st_mode) == 0o600
    assert first["DATABASE_URL"] == (
        f"postgresql://payment_user:{first['POSTGRES_PASSWORD']}@127.0.0.1:5432/payment_db"
    )
    moved = stackctl.Config(dir=tmp_path, ports={**stackctl.DEFAULT_PORTS, "postgres": 15432})
    second = stackctl.ensure_local_env(moved)
    for name in ("SECRET_KEY", "CARD_FINGERPRINT_KEY", "POSTGRES_PASSWORD"):
        assert second[name] == first[name]
    assert ":15432/" in second["DATABASE_URL"]
    assert stackctl.read_env_file(cfg.local_env) == second


def test_an_older_stacks_encryption_key_moves_to_the_processor_only(tmp_path: Path) -> None:
    cfg = stackctl.Config(dir=tmp_path, ports=dict(stackctl.DEFAULT_PORTS))
    legacy = stackctl.new_encryption_key()
    cfg.local_env.write_text(f"SECRET_KEY={stackctl.new_secret_key()}\nENCRYPTION_KEY={legacy}\n")
    values = stackctl.ensure_local_env(cfg)
    assert "ENCRYPTION_KEY" not in values
    assert legacy not in cfg.local_env.read_text()
    assert stackctl.read_env_file(cfg.processor_env)["ENCRYPTION_KEY"] == legacy
    stackctl.ensure_local_env(cfg)  # kept on the next start
    assert stackctl.read_env_file(cfg.processor_env)["ENCRYPTION_KEY"] == legacy


def test_a_process_is_ours_only_when_its_command_line_matches(tmp_path: Path) -> None:
    cfg = stackctl.Config(dir=tmp_path, ports=dict(stackctl.DEFAULT_PORTS))
    for name in stackctl.ALL:
        assert not stackctl.expected_process(cfg, name, os.getpid())
    cfg.pids.mkdir(parents=True)
    cfg.pidfile("kafka").write_text(f"{os.getpid()}\n")
    assert stackctl.recorded_pid(cfg, "kafka") is None  # someone else's process: never ours
    assert not cfg.pidfile("kafka").exists()  # and the stale record is dropped


def test_a_taken_port_is_reported_with_the_option_to_change_it(tmp_path: Path) -> None:
    cfg = stackctl.Config(dir=tmp_path, ports=dict(stackctl.DEFAULT_PORTS))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert stackctl.port_in_use(port)
        with pytest.raises(stackctl.StackError) as info:
            stackctl.check_ports_free(cfg, "redis", {"redis": port})
    assert f"port {port}" in str(info.value)
    assert f"pid {os.getpid()}" in str(info.value)
    assert "--redis-port" in info.value.hint


def test_the_stack_manager_imports_only_the_standard_library() -> None:
    """It runs before `.venv` exists (`make up` and `.ci/run` install with it)."""
    scripts = stackctl.PROJECT / "scripts"
    files = [scripts / "stack.py", *sorted((scripts / "stackctl").glob("*.py"))]
    outside = set()
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top not in sys.stdlib_module_names and top not in ("__future__", "scripts"):
                    outside.add(f"{path.name}: {name}")
    assert not outside


@pytest.mark.parametrize(
    ("argv", "cwd"),
    [
        (["-I", "-S", "scripts/stack.py"], stackctl.PROJECT),
        (["-E", "-S", "-m", "stackctl"], stackctl.PROJECT / "scripts"),
        (["-E", "-S", "-m", "scripts.stackctl"], stackctl.PROJECT),
    ],
)
def test_the_command_line_starts_without_site_packages(argv: list[str], cwd: Path) -> None:
    """-S: no site-packages; -I/-E: no PYTHON* variables (-I also keeps the cwd off the path)."""
    result = subprocess.run(
        [sys.executable, *argv, "--help"],
        capture_output=True,
        text=True,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: stack.py")
    assert "start-app" in result.stdout


def test_kafka_users_get_passwords_generated_once_and_kept_private(tmp_path: Path) -> None:
    cfg = stackctl.Config(dir=tmp_path, ports=dict(stackctl.DEFAULT_PORTS))
    first = kafka_users.ensure_credentials(cfg)
    assert set(first) == {"broker", "controller", "admin", "api", "processor", "ops"}
    assert len(set(first.values())) == len(first)
    assert all(len(password) >= 32 for password in first.values())
    path = kafka_users.credentials_file(cfg)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert kafka_users.ensure_credentials(cfg) == first
    # The shared local.env says how to connect, never as whom.
    env = stackctl.ensure_local_env(cfg)
    assert env["KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
    assert not set(first.values()) & set(env.values())
    assert not {"KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"} & set(env)


def test_each_process_logs_in_as_its_own_user_only(tmp_path: Path) -> None:
    cfg = stackctl.Config(dir=tmp_path, ports=dict(stackctl.DEFAULT_PORTS))
    users = kafka_users.ensure_credentials(cfg)
    inherited = {"PATH": "/bin", "KAFKA_SASL_USERNAME": "ops", "KAFKA_SASL_PASSWORD": "x"}
    env = apps.as_kafka_user(cfg, inherited, "processor")
    assert env["KAFKA_SASL_USERNAME"] == "processor"
    assert env["KAFKA_SASL_PASSWORD"] == users["processor"]
    assert env["PATH"] == "/bin"
    bank = apps.as_kafka_user(cfg, inherited, None)
    assert "KAFKA_SASL_USERNAME" not in bank
    assert "KAFKA_SASL_PASSWORD" not in bank


def test_the_broker_authenticates_every_listener_and_refuses_what_no_acl_allows(
    tmp_path: Path,
) -> None:
    cfg = stackctl.Config(dir=tmp_path, ports=dict(stackctl.DEFAULT_PORTS))
    users = kafka_users.ensure_credentials(cfg)
    props = stackctl.kafka_server_properties(cfg, tmp_path / "data", users)
    lines = set(props.splitlines())
    assert "listeners=SASL_PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093" in lines
    assert (
        "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT"
        in lines
    )
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in lines
    assert "sasl.mechanism.controller.protocol=PLAIN" in lines
    assert "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer" in lines
    assert "allow.everyone.if.no.acl.found=false" in lines
    assert "super.users=User:broker;User:admin" in lines  # no User:ANONYMOUS
    assert any(line.startswith("connections.max.reauth.ms=") for line in lines)
    assert "PLAINTEXT://" not in props.replace("SASL_PLAINTEXT://", "")


def test_kafka_data_formatted_without_sasl_is_refused_with_what_to_do(tmp_path: Path) -> None:
    cfg = stackctl.Config(dir=tmp_path, ports=dict(stackctl.DEFAULT_PORTS))
    data = tmp_path / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "meta.properties").write_text("cluster.id=x\n")
    with pytest.raises(stackctl.StackError, match="older stack without SASL") as info:
        kafka.refuse_unsecured_data(cfg)
    assert f"rm -rf {tmp_path / 'kafka'}" in info.value.hint
    kafka_users.ensure_credentials(cfg)  # formatted by a secured stack: accepted
    kafka.refuse_unsecured_data(cfg)


def test_the_scram_proof_verifies_as_the_broker_checks_it() -> None:
    """RFC 5802 from the server's side: the stored key is all it knows of the password."""
    password, salt, iterations = "pa,ss=word", b"0123456789abcdef", 4096
    salted = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    stored_key = hashlib.sha512(hmac.digest(salted, b"Client Key", "sha512")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha512")
    client_first_bare = "n=admin,r=clientnonce"
    server_first = f"r=clientnonceSERVER,s={base64.b64encode(salt).decode()},i={iterations}"
    final, expected_server_final = kafka_wire.scram_final(client_first_bare, server_first, password)
    without_proof, _, proof_b64 = final.rpartition(",p=")
    assert without_proof == "c=biws,r=clientnonceSERVER"
    auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
    signature = hmac.digest(stored_key, auth_message, "sha512")
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof_b64), signature, strict=True))
    assert hashlib.sha512(client_key).digest() == stored_key
    server_signature = base64.b64encode(hmac.digest(server_key, auth_message, "sha512")).decode()
    assert expected_server_final == f"v={server_signature}"
    with pytest.raises(kafka_wire.KafkaAuthError, match="nonce"):
        kafka_wire.scram_final(
            client_first_bare, server_first.replace("clientnonce", "x"), password
        )
