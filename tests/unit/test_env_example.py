""".env.example documents every variable of config.py, and commits no secret value."""

from __future__ import annotations

import re

import pytest

from tests.fixtures.stack import PROJECT
from tests.unit.test_compose import config_variables

pytestmark = pytest.mark.unit

LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")
SECRETS = {
    "SECRET_KEY",
    "ENCRYPTION_KEY",
    "CARD_FINGERPRINT_KEY",
    "CARD_PRIVATE_KEYS",
    "DD_API_KEY",
    "POSTGRES_PASSWORD",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_KEY_PASSWORD",
    *(
        f"KAFKA_{user}_PASSWORD"
        for user in ("BROKER", "CONTROLLER", "ADMIN", "API", "PROCESSOR", "OPS")
    ),
}


def documented() -> dict[str, str]:
    values = {}
    for line in (PROJECT / ".env.example").read_text().splitlines():
        match = LINE.match(line.strip())
        if match:
            values[match.group(1)] = match.group(2).strip()
    return values


def test_every_config_variable_is_documented() -> None:
    missing = config_variables() - set(documented())
    assert not missing, f"add these to .env.example: {sorted(missing)}"


def test_no_secret_has_a_value() -> None:
    values = documented()
    for name in SECRETS:
        assert values.get(name, "") == "", f"{name} must be left empty in .env.example"
