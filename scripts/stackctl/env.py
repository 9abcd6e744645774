"""`local.env` and `processor.env`: the URLs and development secrets of a stack.

Both files are `KEY=value` lines (no quoting, `#` comments). `local.env` is read by every
process (the service's settings read it too), so it holds no private card key: only the
fingerprint key, `SECRET_KEY` and where the card public key is. `processor.env` (0600) is passed
to the processor alone: where its private card key directory is, and the legacy
`ENCRYPTION_KEY` if an older stack had one (moved out of `local.env`, decrypt-only until
`payment-service cards rewrap` has converted what it sealed). Secrets are generated on first
start and kept, so restarts keep the data they protect. The card key pair itself is made by
`payment-service cards keys init` when the apps start (it needs the venv; this is stdlib only).
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
    """A legacy `ENCRYPTION_KEY` (tests of the v1 format): key id `k1`, 32 random bytes."""
    return "k1:" + base64.b64encode(secrets.token_bytes(32)).decode()


def new_fingerprint_key() -> str:
    """A fresh `CARD_FINGERPRINT_KEY`: version `fpk1`, then 32 random bytes in base64."""
    return "fpk1:" + base64.b64encode(secrets.token_bytes(32)).decode()


def ensure_processor_env(cfg: Config, legacy_key: str | None) -> dict[str, str]:
    """Write `<dir>/processor.env` (0600): the private key directory, the legacy key if any."""
    old = read_env_file(cfg.processor_env)
    values = {
        "CARD_PRIVATE_KEYS_DIR": str(cfg.card_keys),
        "RESULT_SIGNING_KEY_FILE": str(cfg.signing_keys / "processor-result.key"),
    }
    legacy = old.get("ENCRYPTION_KEY") or legacy_key
    if legacy:
        values["ENCRYPTION_KEY"] = legacy
    header = (
        "# Written by scripts/stack.py: the processor's environment only (never the API's).\n"
        "# Development-only; never commit this file.\n"
    )
    text = header + "".join(f"{k}={v}\n" for k, v in values.items())
    if not cfg.processor_env.exists() or cfg.processor_env.read_text(encoding="utf-8") != text:
        write_atomic(cfg.processor_env, text, mode=0o600)
    return values


def api_env(cfg: Config) -> dict[str, str]:
    """What only the API gets: the private key it signs its commands with."""
    return {"COMMAND_SIGNING_KEY_FILE": str(cfg.signing_keys / "api-command.key")}


def ensure_local_env(cfg: Config) -> dict[str, str]:
    """Write `<dir>/local.env`: URLs for the current ports, secrets generated once and kept.

    An `ENCRYPTION_KEY` left by an older stack moves to `processor.env`: every process reads
    `local.env`, and the API must hold no key that decrypts.
    """
    old = read_env_file(cfg.local_env)
    password = old.get("POSTGRES_PASSWORD") or secrets.token_urlsafe(24)
    secret_key = old.get("SECRET_KEY") or new_secret_key()
    fingerprint_key = old.get("CARD_FINGERPRINT_KEY") or new_fingerprint_key()
    ensure_processor_env(cfg, old.get("ENCRYPTION_KEY"))
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
        "CARD_FINGERPRINT_KEY": fingerprint_key,
        "CARD_PUBLIC_KEY_FILE": str(cfg.card_public_key),
        # Public keys of the message layer; the private ones go to their own process only.
        "COMMAND_VERIFY_KEY_FILE": str(cfg.signing_keys / "api-command.pub"),
        "RESULT_VERIFY_KEY_FILE": str(cfg.signing_keys / "processor-result.pub"),
        "POSTGRES_PASSWORD": password,
    }
    header = (
        f"# Written by scripts/stack.py for the local stack in {cfg.dir}.\n"
        "# Development-only secrets generated on first start and kept; never commit this file.\n"
        "# Read by every process: no private card key here (those are in processor.env).\n"
    )
    text = header + "".join(f"{k}={v}\n" for k, v in values.items())
    if not cfg.local_env.exists() or cfg.local_env.read_text(encoding="utf-8") != text:
        write_atomic(cfg.local_env, text, mode=0o600)
    return values
