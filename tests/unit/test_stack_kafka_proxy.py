"""The stack's optional second Kafka listener, advertised at a proxy's port (chaos suite)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
from scripts import stackctl

pytestmark = pytest.mark.unit
USERS = {"broker": "broker-secret", "controller": "controller-secret"}


def _properties(cfg: stackctl.Config, tmp_path: Path) -> dict[str, str]:
    text = stackctl.kafka_server_properties(cfg, tmp_path / "data", USERS)
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line and line[0] != "#")
    return {key: value for key, value in pairs}


def test_without_the_options_there_is_no_second_listener(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("API_PORT", raising=False)
    monkeypatch.delenv("BANKSIM_PORT", raising=False)
    cfg = stackctl.load_config(argparse.Namespace(dir=str(tmp_path)))
    assert set(cfg.ports) == set(stackctl.DEFAULT_PORTS)
    props = _properties(cfg, tmp_path)
    assert "PROXIED" not in props["listeners"] + props["advertised.listeners"]


def test_the_second_listener_is_advertised_at_the_proxy_and_kept_for_restarts(
    tmp_path: Path,
) -> None:
    options = argparse.Namespace(
        dir=str(tmp_path), kafka_proxied_port=29092, kafka_proxy_port=29093
    )
    cfg = stackctl.load_config(options)
    stackctl.save_ports(cfg)
    again = stackctl.load_config(argparse.Namespace(dir=str(tmp_path)))  # `start --only kafka`
    assert (again.ports["kafka_proxied"], again.ports["kafka_proxy"]) == (29092, 29093)
    props = _properties(again, tmp_path)
    assert "PROXIED://127.0.0.1:29092" in props["listeners"].split(",")
    assert "PROXIED://127.0.0.1:29093" in props["advertised.listeners"].split(",")
    assert "PROXIED:SASL_PLAINTEXT" in props["listener.security.protocol.map"].split(",")
    jaas = props["listener.name.proxied.scram-sha-512.sasl.jaas.config"]
    assert 'username="broker"' in jaas
