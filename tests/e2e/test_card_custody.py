"""Who can decrypt: the published key, another team's producer, bad envelopes, the API's hands.

Each bad input has its own code, and in every case nothing reaches the bank.
"""

from __future__ import annotations

import ast
import base64
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from redis.asyncio import Redis

from payment_service.cards.keys import CardKeyPair
from payment_service.core.masking import SecurityCode
from tests.e2e.custody import (
    by_card_on_file,
    card_data,
    command,
    nothing_charged,
    produce,
    public_key,
    sealed_card,
    sealed_number,
    sealer_for,
    settled_row,
    store_card,
    unique_txn,
)
from tests.e2e.helpers import canary_card, executed, ledger, topic_messages
from tests.e2e.producers import register
from tests.fixtures.service import PROJECT, Merchant, Service, payment_body
from tests.fixtures.stack import free_ports

pytestmark = pytest.mark.e2e

PRIVATE = ("CARD_PRIVATE_KEYS_DIR", "CARD_PRIVATE_KEYS", "ENCRYPTION_KEY")
PRODUCER = PROJECT / "examples" / "foreign_producer.py"


async def test_the_public_key_is_published_over_http_and_by_the_cli(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    async with http.get("/api/v1/keys/card") as resp:
        assert resp.status == 401
    async with http.get("/api/v1/keys/card", headers=merchant.headers) as resp:
        published = await resp.json()
        assert resp.status == 200
    assert set(published) == {"kid", "alg", "public_key", "created_at"}
    assert published["alg"] == "HPKE-X25519-HKDF-SHA256-AES-256-GCM"
    assert len(base64.b64decode(published["public_key"])) == 32
    exported = json.loads(service.cli("keys", "export-public", processor=True))
    assert exported == published
    async with http.get("/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    assert {"/api/v1/keys/card", "/api/v1/payment_methods"} <= set(paths)


def test_the_foreign_producer_imports_nothing_of_ours() -> None:
    tree = ast.parse(PRODUCER.read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        for name in (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
            if isinstance(node, ast.ImportFrom)
            else []
        )
    }
    assert imported <= {"__future__", "argparse", "base64", "datetime", "json", "os", "sys"} | {
        "struct",
        "time",
        "pathlib",
        "typing",
        "urllib",
        "uuid",
        "confluent_kafka",
        "cryptography",
    }


async def test_another_teams_producer_charges_with_only_the_public_key(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    # The team is a registered producer: its own Kafka login, its own signing key.
    team = register(service, [merchant.merchant_id], "payment", tmp_path)

    def run(*extra: str) -> str:
        result = subprocess.run(
            [sys.executable, "-I", str(PRODUCER), "--api", service.api_url,
             "--api-key", merchant.api_key, "--bootstrap", service.kafka_bootstrap,
             "--topic", service.topic("requests"), "--merchant", merchant.merchant_id,
             "--producer-id", team.name, "--signing-key-file", str(team.key_file),
             "--sasl-username", team.name, *extra],
            capture_output=True, text=True, timeout=60, check=False, cwd="/",
            env={"KAFKA_SASL_PASSWORD": team.password},
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    txn = run("--card", "4111111111111111")
    row = await settled_row(service, txn)
    assert (row["status"], row["card_last4"]) == ("captured", "1111")
    assert row["card_fingerprint"].startswith("fpk1:")  # computed by the processor
    entries = await ledger(service, txn)
    assert len(executed(entries, "sale")) == 1
    # A card on file, charged by a producer that never touches a card number.
    stored = await store_card(http, merchant)
    by_pm = await settled_row(service, run("--payment-method-id", stored["id"]))
    assert (by_pm["status"], by_pm["payment_method_id"]) == ("captured", stored["id"])


@pytest.mark.parametrize(
    "case", ["unknown key id", "tampered", "another transaction", "another purpose"]
)
async def test_each_bad_envelope_has_its_own_code_and_charges_nothing(
    case: str, service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    txn = unique_txn()
    key = await public_key(http, merchant)
    if case == "unknown key id":
        stranger = CardKeyPair.generate("ck_stranger")
        envelope, code = sealed_number(stranger.public, txn), "card_key_unknown"
    elif case == "tampered":
        data = json.loads(sealed_number(key, txn))
        raw = bytearray(base64.b64decode(data["ct"]))
        raw[-3] ^= 0x20
        data["ct"] = base64.b64encode(bytes(raw)).decode()
        envelope, code = json.dumps(data), "card_data_unreadable"
    elif case == "another transaction":
        envelope, code = sealed_number(key, unique_txn()), "card_data_mismatch"
    else:
        code_envelope = sealer_for(key).seal_security_code(SecurityCode("4242"), txn)
        envelope, code = code_envelope, "card_data_mismatch"
    message = command(merchant.merchant_id, txn, card=sealed_card(envelope))
    row = await settled_row(service, await produce(service, message))
    assert (row["status"], row["failure_code"]) == ("failed", code)
    assert row["card_fingerprint"] is None
    await nothing_charged(service, txn)


async def test_a_security_code_under_a_removed_key_fails_that_payment_and_the_processor_goes_on(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    txn = unique_txn()
    key = await public_key(http, merchant)
    retired = sealer_for(CardKeyPair.generate("ck_retired").public)
    redis = Redis.from_url(service.redis_url, socket_timeout=5)
    try:
        await redis.set(f"cvv:{txn}", retired.seal_security_code(SecurityCode("123"), txn), ex=300)
        message = command(
            merchant.merchant_id, txn, card=sealed_card(sealed_number(key, txn)),
            security_code_in_vault=True,
        )  # fmt: skip
        row = await settled_row(service, await produce(service, message))
        assert (row["status"], row["failure_code"]) == ("failed", "card_key_unknown")
        assert "security code" in row["failure_message"]
        await nothing_charged(service, txn)
        assert not await redis.exists(f"cvv:{txn}")
    finally:
        await redis.aclose()
    body = payment_body(merchant.merchant_id)
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        assert (resp.status, (await resp.json())["status"]) == (200, "captured")


def test_the_api_process_holds_no_private_key(service: Service) -> None:
    if not service.owns_processes:
        pytest.skip("needs the API process this session started")
    api = service.processes["api"].proc
    assert api is not None
    raw = Path(f"/proc/{api.pid}/environ").read_bytes()
    environ = dict(item.decode().partition("=")[::2] for item in raw.split(b"\0") if b"=" in item)
    assert not set(PRIVATE) & set(environ)
    assert service.key_dir is not None
    for key_file in service.key_dir.glob("*.key"):
        private = json.loads(key_file.read_text())["private_key"]
        assert private.encode() not in raw
    # Its settings, read exactly as it reads them (its environment, its working directory).
    probe = (
        "import json; from payment_service.config.settings import Settings; s = Settings(); "
        f"print(json.dumps({{n: getattr(s, n) is not None for n in {PRIVATE_FIELDS!r}}}))"
    )
    held = subprocess.run(
        [sys.executable, "-c", probe], env=environ, cwd=Path(f"/proc/{api.pid}/cwd").resolve(),
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert json.loads(held.stdout) == dict.fromkeys(PRIVATE_FIELDS, False)
    # And it has no key file open.
    for fd in Path(f"/proc/{api.pid}/fd").iterdir():
        target = str(fd.resolve()) if fd.is_symlink() else ""
        assert str(service.key_dir) not in target


PRIVATE_FIELDS = ("card_private_keys_dir", "card_private_keys", "encryption_key")


@pytest.mark.parametrize("variable", PRIVATE)
def test_the_api_refuses_to_start_with_a_private_key(service: Service, variable: str) -> None:
    value = {
        "CARD_PRIVATE_KEYS_DIR": str(service.key_dir or "/nonexistent"),
        "CARD_PRIVATE_KEYS": "ck_x:" + base64.b64encode(bytes(range(32))).decode(),
        "ENCRYPTION_KEY": "k1:" + base64.b64encode(bytes(range(32))).decode(),
    }[variable]
    (port,) = free_ports(1)
    result = service.run_cli(
        "api", check=False, timeout=60, extra_env={variable: value, "API_PORT": str(port)}
    )
    assert result.returncode != 0
    assert "must not hold private card keys" in result.stderr + result.stdout
    assert variable in result.stderr + result.stdout
    assert value not in result.stderr + result.stdout


async def test_no_card_number_rests_in_clear_with_cards_on_file_and_rewrap(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    card = canary_card()
    stored = await store_card(http, merchant, card)
    cvv = f"{uuid.uuid4().int % 900 + 100}"
    body = by_card_on_file(merchant, stored["id"], cvv=cvv)
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        paid = await resp.json()
        assert (resp.status, paid["status"]) == (200, "captured"), paid
    direct = {**payment_body(merchant.merchant_id), "card_data": card_data(card, cvv=cvv)}
    async with http.post("/api/v1/payments/process", json=direct, headers=merchant.headers) as r:
        assert (await r.json())["status"] == "captured"
    rewrap = service.run_cli("cards", "rewrap", "--json", processor=True)
    summary = json.loads(rewrap.stdout)
    assert summary["complete"]
    await _nowhere(service, card.encode(), rewrap.stdout + rewrap.stderr)


async def _nowhere(service: Service, needle: bytes, *texts: str) -> None:
    for text in texts:
        assert needle.decode() not in text
    if service.owns_processes:
        assert needle not in service.logs()
    for name in ("REQUESTS", "RESULTS", "AUDIT", "DLQ"):
        for message in await topic_messages(service, service.topic(name)):
            raw = (message.value() or b"") + b"".join(v or b"" for _, v in message.headers() or [])
            assert needle not in raw, name
    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        names = {t["tablename"] for t in tables}
        assert {"payment_methods", "custody_audit"} <= names
        for table in names:
            rows = await conn.fetch(f'SELECT * FROM "{table}"')  # noqa: S608
            dump: Any = json.dumps([dict(r) for r in rows], default=str)
            assert needle.decode() not in dump, table
    finally:
        await conn.close()
    redis = Redis.from_url(service.redis_url, socket_timeout=5)
    try:
        async for key in redis.scan_iter(count=1000):
            if (await redis.type(key)) == b"string":
                assert needle not in (await redis.get(key) or b""), key
    finally:
        await redis.aclose()
