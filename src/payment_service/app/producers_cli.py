"""The producer registry's commands of `payment-service` (docs/kafka.md, "Register").

    payment-service producers add NAME --merchant M [--merchant M2] [--allow payment,refund]
                                       [--key-out FILE]
    payment-service producers list
    payment-service producers revoke NAME
    payment-service signing init --dir DIR      the API's and the processor's key pairs

`add` (run with the `admin` Kafka login and the database): checks that the name was never
registered, creates the results topic `payments.results.<NAME>`, the SCRAM user and its ACLs
(`kafka/acls.grants("producer", NAME)`), a fresh Ed25519 key pair, then the registry row and its
audit row. The Kafka password and the private key are printed once, on stdout, as `KEY=value`
lines (or the private key is written to `--key-out`, mode 0600); only the public key is kept.
`revoke` revokes the registry row first (the processor refuses the producer's commands within
`PROCESSOR_PRODUCER_CACHE_SECONDS`), then deletes its Kafka user and ACLs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from confluent_kafka.admin import NewTopic

from payment_service.app.key_tasks import operator
from payment_service.app.signing_keys import init_key_dir
from payment_service.config.settings import Settings
from payment_service.core.producers import COMMAND_KINDS, CommandKind
from payment_service.kafka.acls import check_producer_name, results_topic_of
from payment_service.kafka.principals import (
    ADMIN_TIMEOUT_SECONDS,
    add_principal,
    admin_client,
    remove_principal,
)
from payment_service.kafka.signing import new_key_pair
from payment_service.schemas.messages import Id
from payment_service.storage.db import create_pool
from payment_service.storage.producers import PgProducers, ProducerExists


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _kinds(text: str) -> list[CommandKind]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    wrong = [c for c in chosen if c not in COMMAND_KINDS]
    if wrong or not chosen:
        raise SystemExit(f"error: --allow takes {','.join(COMMAND_KINDS)}; not {wrong or text!r}")
    return [c for c in COMMAND_KINDS if c in chosen]


def _merchants(given: list[str]) -> list[str]:
    from pydantic import TypeAdapter, ValidationError

    adapter: TypeAdapter[str] = TypeAdapter(Id)
    try:
        return [adapter.validate_python(m) for m in given]
    except ValidationError:
        raise SystemExit("error: a merchant id is 1-64 of A-Z a-z 0-9 _ . : -") from None


async def _registry(settings: Settings, work: Any) -> Any:
    pool = await create_pool(settings.database, application_name="payment-service-producers")
    try:
        return await work(PgProducers(pool))
    finally:
        await pool.close()


def _create_topic(settings: Settings, topic: str) -> None:
    admin = admin_client(settings.kafka)
    if topic in admin.list_topics(timeout=ADMIN_TIMEOUT_SECONDS).topics:
        return
    new = NewTopic(
        topic,
        num_partitions=settings.kafka.requests_partitions,
        replication_factor=settings.kafka.replication_factor,
    )
    for future in admin.create_topics([new], request_timeout=ADMIN_TIMEOUT_SECONDS).values():
        future.result(timeout=ADMIN_TIMEOUT_SECONDS)


def _add(settings: Settings, args: argparse.Namespace) -> int:
    try:
        name = check_producer_name(args.name)
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    merchants, kinds = _merchants(args.merchant), _kinds(args.allow)
    key_out: Path | None = args.key_out
    if key_out is not None and key_out.exists():
        raise SystemExit(f"error: {key_out} exists; the private key is never overwritten")
    if asyncio.run(_registry(settings, lambda r: r.producer(name))) is not None:
        raise SystemExit(f"error: producer {name} exists (or existed): pick a new name")
    topic = results_topic_of(name, settings.kafka)
    _create_topic(settings, topic)
    password = secrets.token_urlsafe(32)
    count = add_principal(admin_client(settings.kafka), settings.kafka, name, "producer", password)
    private, public = new_key_pair()

    async def register(registry: PgProducers) -> object:
        return await registry.register(
            name, merchants=merchants, commands=kinds, public_key=public, actor=operator()
        )

    try:
        asyncio.run(_registry(settings, register))
    except ProducerExists as exc:
        raise SystemExit(f"error: {exc}") from None
    _say(f"producer {name}: merchants {', '.join(merchants)}; commands {', '.join(kinds)}")
    _say(f"  Kafka user {name} with {count} ACLs; results on {topic}; shown once below")
    lines = [
        f"PRODUCER_ID={name}",
        f"KAFKA_SASL_USERNAME={name}",
        f"KAFKA_SASL_PASSWORD={password}",
        f"RESULTS_TOPIC={topic}",
        f"SIGNING_PUBLIC_KEY={public}",
    ]
    if key_out is not None:
        fd = os.open(key_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(private + "\n")
        lines.append(f"SIGNING_PRIVATE_KEY_FILE={key_out}")
    else:
        lines.append(f"SIGNING_PRIVATE_KEY={private}")
    print("\n".join(lines))
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    for p in asyncio.run(_registry(settings, lambda r: r.all())):
        state = f"revoked {p.revoked_at:%Y-%m-%d %H:%M}" if p.revoked_at else "active"
        merchants = ",".join(sorted(p.merchants or ()))
        commands = ",".join(sorted(p.commands))
        print(f"{p.name:<24} {state:<24} {commands:<16} {merchants}")
    return 0


def _revoke(settings: Settings, args: argparse.Namespace) -> int:
    revoked = asyncio.run(_registry(settings, lambda r: r.revoke(args.name, actor=operator())))
    if revoked is None:
        _say(f"producer {args.name}: not registered, or revoked already")
    else:
        _say(f"producer {args.name}: revoked; its commands are refused from now on")
    if args.keep_kafka_user:
        return 0 if revoked else 1
    count = remove_principal(admin_client(settings.kafka), args.name)
    _say(f"producer {args.name}: Kafka user and {count} ACLs deleted")
    return 0 if revoked else 1


def _signing_init(settings: Settings, args: argparse.Namespace) -> int:
    for line in init_key_dir(args.dir):
        print(line)
    return 0


def add_commands(sub: Any) -> None:
    producers = sub.add_parser("producers", help="the producer registry (docs/kafka.md)")
    psub = producers.add_subparsers(dest="producers_command", required=True)
    add = psub.add_parser("add", help="register a producer: Kafka user, ACLs, key pair, topic")
    add.add_argument("name")
    add.add_argument("--merchant", action="append", required=True, help="repeat for more")
    add.add_argument("--allow", default="payment", help="payment,refund (default: payment)")
    add.add_argument("--key-out", type=Path, help="write the private key here (0600)")
    add.set_defaults(run=_add)
    psub.add_parser("list", help="every registered producer").set_defaults(run=_list)
    revoke = psub.add_parser("revoke", help="revoke a producer (effective within seconds)")
    revoke.add_argument("name")
    revoke.add_argument("--keep-kafka-user", action="store_true", help=argparse.SUPPRESS)
    revoke.set_defaults(run=_revoke)
    signing = sub.add_parser("signing", help="the API's and the processor's signing keys")
    ssub = signing.add_subparsers(dest="signing_command", required=True)
    init = ssub.add_parser("init", help="write both key pairs into DIR unless they exist")
    init.add_argument("--dir", type=Path, required=True)
    init.set_defaults(run=_signing_init)
