"""The Kafka users of a stack and their generated passwords, kept in `kafka/credentials.env`.

The broker authenticates every client with SASL/SCRAM-SHA-512 (docs/operations.md):

    broker      the broker's own inter-broker login (super user), bootstrapped at format time
    controller  the static SASL/PLAIN login on the controller listener (not a SCRAM user)
    admin       super user for the CLI tasks (`topics`, `kafka bootstrap`) and the health probe
    api, processor, ops   the service's principals, created by `payment-service kafka bootstrap`

Passwords are generated on first start and kept (mode 0600) in the state folder, not in the
shared `local.env` that every process reads: each process is given only its own user in its
environment (`principal_env`).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from .config import Config, write_atomic
from .env import read_env_file

USERS = ("broker", "controller", "admin", "api", "processor", "ops")
CREDENTIAL_VARS = ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD")


def credentials_file(cfg: Config) -> Path:
    return cfg.dir / "kafka" / "credentials.env"


def read_credentials(cfg: Config) -> dict[str, str]:
    """name -> password; empty before the first start."""
    return read_env_file(credentials_file(cfg))


def ensure_credentials(cfg: Config) -> dict[str, str]:
    """Every user's password, generating the missing ones (kept across restarts)."""
    old = read_credentials(cfg)
    values = {name: old.get(name) or secrets.token_urlsafe(24) for name in USERS}
    if values != old:
        path = credentials_file(cfg)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            "# Written by scripts/stack.py: the local Kafka's users (SASL/SCRAM-SHA-512) and\n"
            "# their generated passwords; never commit this file.\n"
        )
        write_atomic(path, header + "".join(f"{k}={v}\n" for k, v in values.items()), 0o600)
    return values


def principal_env(cfg: Config, user: str) -> dict[str, str]:
    """The variables that make a process log in to Kafka as `user`."""
    return dict(zip(CREDENTIAL_VARS, (user, read_credentials(cfg)[user]), strict=True))
