"""Key rotation on the running service: rotate twice under load, rewrap, retire; nothing lost.

Marked `fault`: it changes the keys of the service it runs against.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import uuid
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis.asyncio import Redis

from payment_service.cards.envelope import key_id_of
from payment_service.core.masking import SecurityCode
from tests.e2e.custody import (
    by_card_on_file,
    card_data,
    public_key,
    sealer_for,
    settled_row,
    store_card,
)
from tests.e2e.helpers import executed, ledger
from tests.fixtures.service import Merchant, Service, eventually, payment_body

pytestmark = [pytest.mark.e2e, pytest.mark.fault]


def _rotate(service: Service) -> str:
    return service.cli("cards", "keys", "rotate", processor=True).strip()


def _retire(service: Service, kid: str) -> tuple[int, str]:
    result = service.run_cli(
        "cards", "keys", "retire", kid, "--grace", "0", "--wait", "60",
        processor=True, check=False,
    )  # fmt: skip
    return result.returncode, result.stderr


def _kids(service: Service) -> dict[str, bool]:
    listed = json.loads(service.cli("cards", "keys", "list", "--json", processor=True))
    return {row["kid"]: row["current"] for row in listed}


async def _published(http: aiohttp.ClientSession, merchant: Merchant, kid: str) -> None:
    async def switched() -> bool:
        return (await public_key(http, merchant)).kid == kid

    await eventually(switched, timeout=30, what=f"the API to seal to {kid}")


class Load:
    """Payments by card and by card on file, one after another per worker, until stopped."""

    def __init__(self, http: aiohttp.ClientSession, merchant: Merchant, methods: list[str]):
        self.http, self.merchant, self.methods = http, merchant, methods
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.stop = asyncio.Event()

    async def worker(self, n: int) -> None:
        i = 0
        while not self.stop.is_set():
            i += 1
            if i % 2:
                body = payment_body(self.merchant.merchant_id)
            else:
                method = self.methods[(n + i) % len(self.methods)]
                body = by_card_on_file(self.merchant, method, cvv="123")
            headers = {**self.merchant.headers, "Idempotency-Key": f"load-{n}-{i}"}
            async with self.http.post(
                "/api/v1/payments/process", json=body, headers=headers
            ) as resp:
                self.answers.append((resp.status, await resp.json()))

    async def reached(self, count: int) -> None:
        async def enough() -> bool:
            return len(self.answers) >= count

        await eventually(enough, timeout=120, what=f"{count} payments")


@pytest.mark.timeout(400)
async def test_rotate_twice_under_load_rewrap_and_retire_loses_nothing(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    first = (await public_key(http, merchant)).kid
    methods = [(await store_card(http, merchant))["id"] for _ in range(4)]
    load = Load(http, merchant, methods)
    workers = [asyncio.create_task(load.worker(n)) for n in range(6)]
    try:
        await load.reached(20)
        second = _rotate(service)
        await _published(http, merchant, second)
        await load.reached(len(load.answers) + 30)
        third = _rotate(service)
        await _published(http, merchant, third)
        await load.reached(len(load.answers) + 30)
        code, why = _retire(service, first)
        assert code == 1
        assert "cards on file (payment_methods)" in why
        rewrapped = json.loads(service.cli("cards", "rewrap", "--json", processor=True))
        assert rewrapped["complete"], rewrapped
        assert rewrapped["current_kid"] == third
        assert rewrapped["payment_methods"]["rewrapped"] >= len(methods)
        await load.reached(len(load.answers) + 20)
    finally:
        load.stop.set()
        await asyncio.gather(*workers)

    # Every payment answered, settled as captured, charged exactly once.
    assert all(status in (200, 202) for status, _ in load.answers), load.answers[:3]
    for _, body in load.answers:
        txn = body["transaction_id"]
        row = await settled_row(service, txn)
        assert (row["status"], row["failure_code"]) == ("captured", None), txn
        entries = await ledger(service, txn)
        assert len(executed(entries, "sale")) == 1

    assert _retire(service, third)[0] == 1  # the current key is never retired
    for old in (first, second):
        code, why = _retire(service, old)
        assert code == 0, why
    assert _kids(service) == {third: True}
    # A card stored before both rotations still pays (it was re-sealed), and so does a new one.
    body = by_card_on_file(merchant, methods[0])
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        assert (await resp.json())["status"] == "captured"
    fresh = {**payment_body(merchant.merchant_id), "card_data": card_data()}
    async with http.post("/api/v1/payments/process", json=fresh, headers=merchant.headers) as resp:
        assert (await resp.json())["status"] == "captured"


@pytest.mark.timeout(300)
async def test_rewrap_converts_waiting_codes_keeps_their_ttl_and_unblocks_retire(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    """Security codes in Redis under an old key, and legacy v1 ones, are re-sealed in place."""
    old = await public_key(http, merchant)
    current = _rotate(service)
    await _published(http, merchant, current)
    legacy_key = os.urandom(32)
    legacy = "v1old:" + base64.b64encode(legacy_key).decode()
    txn_old, txn_v1 = f"waiting-{uuid.uuid4()}", f"waiting-{uuid.uuid4()}"
    nonce = os.urandom(12)
    ct = AESGCM(legacy_key).encrypt(nonce, b"456", f"security_code:{txn_v1}".encode())
    v1 = {"v": 1, "kid": "v1old", "nonce": base64.b64encode(nonce).decode()}
    v1["ct"] = base64.b64encode(ct).decode()
    redis = Redis.from_url(service.redis_url, socket_timeout=5)
    try:
        sealed_old = sealer_for(old).seal_security_code(SecurityCode("123"), txn_old)
        await redis.set(f"cvv:{txn_old}", sealed_old, ex=600)
        await redis.set(f"cvv:{txn_v1}", json.dumps(v1), ex=600)
        code, why = _retire(service, old.kid)
        assert code == 1
        assert "security codes in Redis (cvv:*)" in why
        # Without the legacy key the v1 code cannot be opened: reported, not fatal.
        partial = service.run_cli("cards", "rewrap", "--json", processor=True, check=False)
        assert partial.returncode == 2
        assert json.loads(partial.stdout)["security_codes"]["failed"]["card_key_unknown"] >= 1
        done = service.run_cli(
            "cards", "rewrap", "--json", processor=True, extra_env={"ENCRYPTION_KEY": legacy}
        )
        assert json.loads(done.stdout)["complete"]
        for txn in (txn_old, txn_v1):
            value = await redis.get(f"cvv:{txn}")
            assert value is not None
            assert key_id_of(value) == current
            assert 0 < await redis.ttl(f"cvv:{txn}") <= 600
        code, why = _retire(service, old.kid)
        assert code == 0, why
    finally:
        await redis.delete(f"cvv:{txn_old}", f"cvv:{txn_v1}")
        await redis.aclose()
    audit = await _custody_audit(service)
    assert {"card_keys.rotated", "card_keys.retired", "card_keys.rewrap_finished"} <= audit


async def _custody_audit(service: Service) -> set[str]:
    import asyncpg

    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        rows = await conn.fetch("SELECT DISTINCT action FROM custody_audit")
    finally:
        await conn.close()
    return {r["action"] for r in rows}


@pytest.mark.timeout(300)
async def test_rewrap_interrupted_by_sigint_leaves_every_card_usable_and_resumes(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    methods = [(await store_card(http, merchant))["id"] for _ in range(3)]
    old = (await public_key(http, merchant)).kid
    current = _rotate(service)
    await _published(http, merchant, current)
    # Ctrl-C right after the first card is re-sealed (a crash point sends this process SIGINT).
    interrupted = service.run_cli(
        "cards", "rewrap", "--batch", "1", processor=True, check=False,
        extra_env={"PROCESSOR_CRASH_AT": "rewrap_after_swap"},
    )  # fmt: skip
    assert interrupted.returncode == 130, interrupted.stderr
    assert "run again to resume" in interrupted.stderr
    run = await _last_rewrap(service)
    assert run["action"] == "card_keys.rewrap_interrupted"
    assert run["details"]["payment_methods"]["rewrapped"] == 1
    # Every card still pays: re-sealed or untouched, none half-done.
    for method in methods:
        body = by_card_on_file(merchant, method)
        async with http.post(
            "/api/v1/payments/process", json=body, headers=merchant.headers
        ) as resp:
            assert (await resp.json())["status"] == "captured"
    resumed = json.loads(service.cli("cards", "rewrap", "--json", processor=True))
    assert resumed["complete"]
    assert resumed["payment_methods"]["rewrapped"] >= len(methods) - 1
    assert (await _last_rewrap(service))["action"] == "card_keys.rewrap_finished"
    code, why = _retire(service, old)
    assert code == 0, why


async def _last_rewrap(service: Service) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(service.database_url, timeout=10)
    try:
        row = await conn.fetchrow(
            "SELECT action, details FROM custody_audit WHERE action LIKE 'card_keys.rewrap_%'"
            " AND action <> 'card_keys.rewrap_started' ORDER BY id DESC LIMIT 1"
        )
    finally:
        await conn.close()
    assert row is not None
    details = row["details"]
    return {
        "action": row["action"],
        "details": json.loads(details) if isinstance(details, str) else details,
    }
