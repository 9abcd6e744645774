"""`local.env`: the connection URLs and development secrets of a stack, read and written.

The file is `KEY=value` lines (no quoting, `#` comments); the service's settings read the same
file. Secrets are generated on first start and kept, so restarts keep the data they protect.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
from pathlib import Path

from .config import HOST, PG_DB, PG_USER, Config, write_atomic


def read_env_file(path: Path) -> dict[str, str]:
    """The `KEY=value` pairs of an env file; an absent file has none."""
    values: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError):
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.partition("=")
                values[key.strip()] = value.strip()
    return values


def new_secret_key() -> str:
    """A fresh `SECRET_KEY`: 32 random bytes, URL-safe base64."""
    return secrets.token_urlsafe(32)


def new_encryption_key() -> str:
    """A fresh `ENCRYPTION_KEY`: key id `k1`, then 32 random bytes in base64."""
    return "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()


def ensure_local_env(cfg: Config) -> dict[str, str]:
    """Write `<dir>/local.env`: URLs for the current ports, secrets generated once and kept."""
    old = read_env_file(cfg.local_env)
    password = old.get("POSTGRES_PASSWORD") or secrets.token_urlsafe(24)
    secret_key = old.get("SECRET_KEY") or new_secret_key()
    encryption_key = old.get("ENCRYPTION_KEY") or new_encryption_key()
    p = cfg.ports
    values = {
        "ENVIRONMENT": old.get("ENVIRONMENT", "development"),
        "DATABASE_URL": f"postgresql://{PG_USER}:{password}@{HOST}:{p['postgres']}/{PG_DB}",
        "REDIS_URL": f"redis://{HOST}:{p['redis']}/0",
        "KAFKA_BOOTSTRAP_SERVERS": f"{HOST}:{p['kafka']}",
        # Every process logs in; its own user and password come in its environment only.
        "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "BANKING_API_URL": f"http://{HOST}:{p['banksim']}",
        "API_PORT": str(p["api"]),
        "BANKSIM_PORT": str(p["banksim"]),
        "SECRET_KEY": secret_key,
        "ENCRYPTION_KEY": encryption_key,
        "POSTGRES_PASSWORD": password,
    }
    header = (
        f"# Written by scripts/stack.py for the local stack in {cfg.dir}.\n"
        "# Development-only secrets generated on first start and kept; never commit this file.\n"
    )
    text = header + "".join(f"{k}={v}\n" for k, v in values.items())
    if not cfg.local_env.exists() or cfg.local_env.read_text(encoding="utf-8") != text:
        write_atomic(cfg.local_env, text, mode=0o600)
    return values
