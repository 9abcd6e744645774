"""scripts/stack.py's pure parts: ports, generated secrets, process identification."""

from __future__ import annotations

import argparse
import base64
import os
import socket
import stat
from pathlib import Path

import pytest

from tests.fixtures.stack import load_stack_script

pytestmark = pytest.mark.unit

stack = load_stack_script()


def namespace(tmp_path: Path, **ports: int) -> argparse.Namespace:
    return argparse.Namespace(dir=str(tmp_path), **{f"{k}_port": v for k, v in ports.items()})


def test_defaults_then_saved_ports_then_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_PORT", raising=False)
    monkeypatch.delenv("BANKSIM_PORT", raising=False)
    cfg = stack.load_config(namespace(tmp_path))
    assert cfg.ports == stack.DEFAULT_PORTS
    cfg = stack.load_config(namespace(tmp_path, kafka=19092, postgres=15432))
    assert (cfg.ports["kafka"], cfg.ports["controller"], cfg.ports["postgres"]) == (
        19092,
        19093,
        15432,
    )
    stack.save_ports(cfg)
    again = stack.load_config(namespace(tmp_path))  # no options: the ports used last time
    assert again.ports == cfg.ports
    monkeypatch.setenv("API_PORT", "18000")
    assert stack.load_config(namespace(tmp_path)).ports["api"] == 18000


def test_controller_port_must_differ(tmp_path: Path) -> None:
    with pytest.raises(stack.StackError):
        stack.load_config(namespace(tmp_path, kafka=19092, controller=19092))


def test_local_env_secrets_are_generated_once_and_private(tmp_path: Path) -> None:
    cfg = stack.Config(dir=tmp_path, ports=dict(stack.DEFAULT_PORTS))
    first = stack.ensure_local_env(cfg)
    assert stat.S_IMODE(os.stat(cfg.local_env).st_mode) == 0o600
    kid, _, key = first["ENCRYPTION_KEY"].partition(":")
    assert kid == "k1"
    assert len(base64.b64decode(key)) == 32
    assert len(first["SECRET_KEY"]) >= 40
    assert first["DATABASE_URL"] == (
        f"postgresql://payment_user:{first['POSTGRES_PASSWORD']}@127.0.0.1:5432/payment_db"
    )
    moved = stack.Config(dir=tmp_path, ports={**stack.DEFAULT_PORTS, "postgres": 15432})
    second = stack.ensure_local_env(moved)
    for name in ("SECRET_KEY", "ENCRYPTION_KEY", "POSTGRES_PASSWORD"):
        assert second[name] == first[name]
    assert ":15432/" in second["DATABASE_URL"]
    assert stack.read_env_file(cfg.local_env) == second


def test_a_process_is_ours_only_when_its_command_line_matches(tmp_path: Path) -> None:
    cfg = stack.Config(dir=tmp_path, ports=dict(stack.DEFAULT_PORTS))
    for name in stack.ALL:
        assert not stack.expected_process(cfg, name, os.getpid())
    cfg.pids.mkdir(parents=True)
    cfg.pidfile("kafka").write_text(f"{os.getpid()}\n")
    assert stack.recorded_pid(cfg, "kafka") is None  # someone else's process: never ours
    assert not cfg.pidfile("kafka").exists()  # and the stale record is dropped


def test_a_taken_port_is_reported_with_the_option_to_change_it(tmp_path: Path) -> None:
    cfg = stack.Config(dir=tmp_path, ports=dict(stack.DEFAULT_PORTS))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert stack.port_in_use(port)
        with pytest.raises(stack.StackError) as info:
            stack.check_ports_free(cfg, "redis", {"redis": port})
    assert f"port {port}" in str(info.value)
    assert f"pid {os.getpid()}" in str(info.value)
    assert "--redis-port" in info.value.hint
