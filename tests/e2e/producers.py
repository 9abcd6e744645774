"""Registered producers for end-to-end tests: `producers add` as an operator, the example run
as another team would run it (its own process, its own Kafka login, nothing of ours imported)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fixtures.service import PROJECT, Service

EXAMPLE = PROJECT / "examples" / "foreign_producer.py"


@dataclass(frozen=True)
class Registered:
    name: str
    password: str
    key_file: Path
    results_topic: str


def register(
    service: Service, merchants: list[str], allow: str, key_dir: Path, name: str | None = None
) -> Registered:
    """`payment-service producers add` as the operators run it (admin Kafka login)."""
    name = name or f"team-{uuid.uuid4().hex[:10]}"
    key_file = key_dir / f"{name}.key"
    args = ["producers", "add", name, "--allow", allow, "--key-out", str(key_file)]
    for merchant in merchants:
        args += ["--merchant", merchant]
    out = service.run_cli(*args, extra_env=service.stack.kafka_env("admin")).stdout
    values = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return Registered(name, values["KAFKA_SASL_PASSWORD"], key_file, values["RESULTS_TOPIC"])


def card_key_file(service: Service, directory: Path) -> Path:
    """The published card public key, as `keys export-public` writes it for other teams."""
    path = directory / "card-public-key.json"
    if not path.exists():
        path.write_text(service.cli("keys", "export-public", processor=True))
    return path


async def run_example(
    service: Service, producer: Registered, merchant: str, *extra: str, card_key: Path
) -> subprocess.CompletedProcess[str]:
    """Run examples/foreign_producer.py in its own interpreter (-I), as the team would."""
    argv = [
        sys.executable, "-I", str(EXAMPLE), "--bootstrap", service.kafka_bootstrap,
        "--topic", service.topic("requests"), "--producer-id", producer.name,
        "--signing-key-file", str(producer.key_file), "--card-key-file", str(card_key),
        "--sasl-username", producer.name, "--results-topic", producer.results_topic,
        "--merchant", merchant, *extra,
    ]  # fmt: skip
    return await asyncio.to_thread(
        subprocess.run,
        argv,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
        env={"KAFKA_SASL_PASSWORD": producer.password},
    )


def outcome(done: subprocess.CompletedProcess[str]) -> tuple[str, dict[str, Any]]:
    """The transaction id and the result the example printed (it waited with --wait)."""
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    return lines[0], json.loads(lines[1])
