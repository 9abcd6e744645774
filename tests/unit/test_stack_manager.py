"""The stack manager's pure parts (scripts/stackctl): ports, secrets, process identification."""

from __future__ import annotations

import argparse
import ast
import base64
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from scripts import stackctl

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
    assert processor == {"CARD_PRIVATE_KEYS_DIR": str(cfg.card_keys)}
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
