"""The `payment-service` command line: one subcommand per process or operator task."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from payment_service.app import cards_cli, producers_cli
from payment_service.config.settings import Settings


def _observe(settings: Settings, process: str) -> None:
    """JSON logs and, when on, ddtrace: before the process's modules are imported, so that the
    libraries they bind (confluent_kafka's classes above all) are the ones ddtrace patched."""
    from payment_service.ops.logs import configure_logging
    from payment_service.ops.telemetry import configure_tracing

    configure_logging(settings, process)
    configure_tracing(settings.datadog)


def _api(settings: Settings, args: argparse.Namespace) -> int:
    _observe(settings, "api")
    from payment_service.app.api import run_api

    run_api(settings)
    return 0


def _processor(settings: Settings, args: argparse.Namespace) -> int:
    _observe(settings, "processor")
    from payment_service.app.processor import run_processor

    run_processor(settings)
    return 0


def _dispatcher(settings: Settings, args: argparse.Namespace) -> int:
    _observe(settings, "dispatcher")
    from payment_service.app.dispatcher import run_dispatcher

    run_dispatcher(settings)
    return 0


def _metrics(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.ops.metric_catalog import markdown_table, table

    if args.markdown:
        print(markdown_table(), end="")
        return 0
    for name, kind, tags, process, text in table():
        print(f"{name:<28} {kind:<12} {process:<9} {tags:<42} {text}")
    return 0


def _banksim(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.app.banksim import run_simulator

    run_simulator(settings, host=args.host, port=args.port)
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.storage.migrate import migrate

    applied = asyncio.run(migrate(settings.database))
    print(f"migrations applied: {len(applied)} ({', '.join(applied) or 'already current'})")
    return 0


def _topics(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.kafka.topics import ensure_topics

    for line in ensure_topics(settings.kafka):
        print(line)
    return 0


def _kafka_bootstrap(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.kafka.principals import bootstrap, read_credentials

    for line in bootstrap(settings.kafka, read_credentials(args.credentials)):
        print(line)
    return 0


def _kafka_user_add(settings: Settings, args: argparse.Namespace) -> int:
    import secrets

    from payment_service.kafka.principals import add_principal, admin_client

    password = sys.stdin.readline().strip() if args.password_stdin else secrets.token_urlsafe(24)
    count = add_principal(
        admin_client(settings.kafka), settings.kafka, args.name, args.role, password
    )
    print(f"principal {args.name} ({args.role}): {count} ACLs", file=sys.stderr)
    if not args.password_stdin:
        # Printed once, on stdout alone, so scripts can capture it; the broker keeps a hash.
        print(password)
    return 0


def _kafka_user_remove(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.kafka.principals import admin_client, remove_principal

    count = remove_principal(admin_client(settings.kafka), args.name)
    print(f"principal {args.name}: {count} ACLs and its SCRAM user deleted")
    return 0


def _kafka_acls(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.kafka.principals import admin_client, grants_of

    admin = admin_client(settings.kafka)
    for name in args.names:
        for g in grants_of(admin, name):
            print(f"{name:<12} {g.operation:<16} {g.resource:<6} {g.pattern:<8} {g.name}")
    return 0


def _schemas(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.schemas import jsonschema

    if args.check:
        stale = jsonschema.stale()
        if stale:
            print(f"stale message schemas: {', '.join(stale)}; run `payment-service schemas`")
            return 1
        print("message schemas are current")
        return 0
    for name in jsonschema.write():
        print(f"wrote {jsonschema.SCHEMA_DIR / name}")
    return 0


def _states(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.core.diagram import states_page
    from payment_service.core.states import PAYMENT_TRANSITIONS, REFUND_TRANSITIONS

    if args.mermaid:
        print(states_page(), end="")
        return 0
    for table in (PAYMENT_TRANSITIONS, REFUND_TRANSITIONS):
        for (status, event), target in table.items():
            print(f"{status.value:<20} --{event.value}--> {target.value}")
    return 0


def _keys_create(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.storage.api_keys import create_key_cli

    key = asyncio.run(create_key_cli(settings, args.merchant, args.name))
    # The key is printed once, on stdout alone, so scripts can capture it; only its hash is kept.
    print(key)
    return 0


def _db_seed(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.storage.api_keys import create_key_cli

    key = asyncio.run(create_key_cli(settings, args.merchant, "demo"))
    print(
        f"merchant {args.merchant}: its API key is below, shown once (only its hash is stored)",
        file=sys.stderr,
    )
    print(key)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payment-service", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("api", help="run the HTTP API").set_defaults(run=_api)
    sub.add_parser("processor", help="run the Kafka payment processor").set_defaults(run=_processor)
    sub.add_parser("dispatcher", help="run the webhook dispatcher").set_defaults(run=_dispatcher)
    sim = sub.add_parser("banksim", help="run the acquiring-bank simulator")
    sim.add_argument("--host", default=None)
    sim.add_argument("--port", type=int, default=None)
    sim.set_defaults(run=_banksim)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(run=_migrate)
    sub.add_parser("topics", help="create the Kafka topics").set_defaults(run=_topics)
    _kafka_parser(sub)
    schemas = sub.add_parser("schemas", help="write (or --check) the Kafka message JSON Schemas")
    schemas.add_argument("--check", action="store_true")
    schemas.set_defaults(run=_schemas)
    states = sub.add_parser("states", help="print the payment and refund state tables")
    states.add_argument(
        "--mermaid", action="store_true", help="as Mermaid diagrams (docs/states.md)"
    )
    states.set_defaults(run=_states)
    metrics = sub.add_parser("metrics", help="list every metric the service emits (its catalogue)")
    metrics.add_argument("--markdown", action="store_true", help="as a table (docs/operations.md)")
    metrics.set_defaults(run=_metrics)
    keys = sub.add_parser("keys", help="merchant API keys; the card public key")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create an API key (printed once)")
    create.add_argument("--merchant", required=True)
    create.add_argument("--name", default="default")
    create.set_defaults(run=_keys_create)
    cards_cli.add_commands(sub, keys_sub)
    producers_cli.add_commands(sub)
    seed = sub.add_parser("db-seed", help="create a demo merchant and print its API key")
    seed.add_argument("--merchant", default="merchant_demo")
    seed.set_defaults(run=_db_seed)
    return parser


def _kafka_parser(sub: Any) -> None:
    from payment_service.kafka.acls import ROLES

    kafka = sub.add_parser("kafka", help="the broker's principals and ACLs (run as admin)")
    kafka_sub = kafka.add_subparsers(dest="kafka_command", required=True)
    boot = kafka_sub.add_parser(
        "bootstrap", help="users api, processor, ops and their ACLs (idempotent)"
    )
    boot.add_argument(
        "--credentials", required=True, help="file of name=password lines ('-': stdin)"
    )
    boot.set_defaults(run=_kafka_bootstrap)
    user = kafka_sub.add_parser("user", help="add or remove one principal")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    add = user_sub.add_parser("add", help="create/update a user with a role's ACLs")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password (else one is generated)"
    )
    add.set_defaults(run=_kafka_user_add)
    remove = user_sub.add_parser("remove", help="delete a user and all of its ACLs")
    remove.add_argument("name")
    remove.set_defaults(run=_kafka_user_remove)
    acls = kafka_sub.add_parser("acls", help="list the ACLs of principals")
    acls.add_argument("names", nargs="*", default=["api", "processor", "ops"])
    acls.set_defaults(run=_kafka_acls)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = Settings.load()
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    return cards_cli.run_safely(run, settings, args)


if __name__ == "__main__":
    sys.exit(main())
