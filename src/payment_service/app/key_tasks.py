"""The operator's card-key tasks: init, generate, rotate, list, retire, export the public key.

They run with the processor's settings (its `CARD_PRIVATE_KEYS_DIR`) or an explicit `--dir`.
Rotation writes the new public key to `CARD_PUBLIC_KEY_FILE` (or `--public-key-file`), which the
API follows without a restart, and the processor picks the new key up the first time it meets
it. Retiring deletes a key file for good, and refuses, naming what still uses the key, while:

* it is the current key, or became non-current less than `grace` seconds ago (API instances
  may still be sealing to it: they re-read the public key file every second);
* cards on file (`payment_methods`) or security codes in Redis (`cvv:*`) are sealed under it
  (`payment-service cards rewrap` re-seals them);
* the processor has not yet processed every command produced so far (`kafka.lag`), one of
  which may carry a card number sealed under it.

Rotations and retirements are recorded in `custody_audit`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import getpass
from dataclasses import dataclass
from pathlib import Path

from payment_service.app.custody import card_opener, public_key_source
from payment_service.cards import keydir
from payment_service.cards.envelope import key_id_of
from payment_service.cards.keys import PublicCardKey
from payment_service.cards.vault import SecurityCodeVault
from payment_service.config.settings import Settings
from payment_service.core.errors import KeyConfigError, MalformedEnvelope
from payment_service.kafka.lag import unprocessed_commands
from payment_service.ops.redis_client import redis_client
from payment_service.storage.db import create_pool
from payment_service.storage.payment_methods import PgPaymentMethods, write_custody_audit


def operator() -> str:
    """The audit's actor for a task run by hand."""
    try:
        return f"operator:{getpass.getuser()}"
    except (KeyError, OSError):
        return "operator"


def key_dir(settings: Settings, given: Path | None) -> Path:
    directory = given or settings.card_private_keys_dir
    if directory is None:
        raise KeyConfigError(
            "no key directory: pass --dir or set CARD_PRIVATE_KEYS_DIR (keys given inline in "
            "CARD_PRIVATE_KEYS are managed in your secret store, not by this command)"
        )
    return directory


def current_public_key(settings: Settings, given: Path | None) -> PublicCardKey:
    """The key producers seal to: from the key directory when we have one, else as published."""
    if given is not None or settings.card_private_keys_dir or settings.card_private_keys:
        if given is not None:
            pairs, current = keydir.read_keys(given)
            return pairs[current].public
        return card_opener(settings).keys.current_public()
    return public_key_source(settings).current()


def publish(settings: Settings, public: PublicCardKey, given: Path | None) -> Path | None:
    target = given or settings.card_public_key_file
    if target is not None:
        keydir.write_public(target, public)
    return target


async def audit(settings: Settings, action: str, kid: str, details: dict[str, object]) -> None:
    pool = await create_pool(settings.database)
    try:
        await write_custody_audit(
            pool, action=action, actor=operator(), key_id=kid, details=dict(details)
        )
    finally:
        await pool.close()


@dataclass(frozen=True)
class Usage:
    cards_on_file: int
    security_codes: int


async def usage(settings: Settings) -> dict[str, Usage]:
    """Per key id (`v1:<kid>` for legacy ones): cards on file and waiting security codes."""
    pool = await create_pool(settings.database)
    redis = redis_client(settings.redis)
    try:
        on_file = await PgPaymentMethods(pool).key_usage()
        vault = SecurityCodeVault.from_settings(redis, settings.redis)
        codes: dict[str, int] = {}
        async for _, sealed in vault.sealed_codes(500):
            try:
                kid = key_id_of(sealed)
            except MalformedEnvelope:
                kid = "malformed"
            codes[kid] = codes.get(kid, 0) + 1
    finally:
        await redis.aclose()
        await pool.close()
    kids = set(on_file) | set(codes)
    return {k: Usage(on_file.get(k, 0), codes.get(k, 0)) for k in sorted(kids)}


def retire_blockers(
    settings: Settings, directory: Path, kid: str, *, grace_seconds: float, wait_seconds: float
) -> list[str]:
    """Everything that still needs `kid`; empty when it may be deleted."""
    keys = {info.kid: info for info in keydir.list_keys(directory)}
    if kid not in keys:
        return [f"there is no key {kid!r} in {directory}"]
    if keys[kid].current:
        return [f"{kid} is the current key: rotate first (`payment-service cards keys rotate`)"]
    since = (dt.datetime.now(dt.UTC) - keydir.current_since(directory)).total_seconds()
    blockers = []
    if since < grace_seconds:
        blockers.append(
            f"{kid} stopped being current {since:.0f}s ago: producers may still be sealing to it;"
            f" retry in {grace_seconds - since:.0f}s"
        )
    used = asyncio.run(usage(settings)).get(kid, Usage(0, 0))
    if used.cards_on_file:
        blockers.append(f"{used.cards_on_file} cards on file (payment_methods) are sealed under it")
    if used.security_codes:
        blockers.append(
            f"{used.security_codes} security codes in Redis (cvv:*) are sealed under it"
        )
    if used.cards_on_file or used.security_codes:
        blockers.append("run `payment-service cards rewrap`, then retire again")
    if blockers:
        return blockers  # no point waiting for the processor to catch up
    pending = unprocessed_commands(settings.kafka, wait_seconds=wait_seconds)
    if pending:
        blockers.append(
            f"{pending} commands on {settings.kafka.topic_requests} are not yet processed by "
            f"{settings.kafka.consumer_group}; one may carry a card sealed under it"
        )
    return blockers
