"""`payment-service ops ...`: the operators' tools (docs/operations.md, "Debugging a payment").

    ops verify [--unsettled-after 15m]          every invariant; exit 1 when one breaks
    ops inspect TXN | --merchant M --key K | --correlation-id C
    ops replay [selectors] [--dry-run | --execute]
    ops dlq list [selectors] | show PARTITION OFFSET | redrive [selectors] [--execute]
    ops offsets show | reset (--to-offset N | --to-time T) [--partition P] [--force]

Tables and progress for people, `--json` for scripts. Kafka as the operators' principal (the
`KAFKA_SASL_*` settings of the environment: `ops` in the local stack); PostgreSQL as the runtime
role, in read-only transactions; the bank through status inquiries or the simulator's ledger.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
from typing import Any

from payment_service.app.ops_args import bound, duration, selectors, when
from payment_service.app.ops_render import print_group as _print_group
from payment_service.app.ops_render import print_inspect, print_replay, print_verify
from payment_service.config.settings import Settings
from payment_service.operators.render import Progress, dump_json, table


def _bank(settings: Settings) -> Any:
    from payment_service.bank.client import HttpBankClient

    return HttpBankClient(settings.bank)


async def _bank_record(settings: Settings, bank: Any) -> Any:
    from payment_service.operators.bank import Inquiries, SimulatorLedger, simulator_answers

    if await simulator_answers(settings.bank.url):
        return SimulatorLedger(settings.bank.url)
    return Inquiries(bank)


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.operators.db import Scope
    from payment_service.operators.verify import verify

    scope = Scope(args.merchant, args.since.time if args.since else None)

    async def run() -> Any:
        bank = _bank(settings)
        try:
            record = await _bank_record(settings, bank)
            return await verify(
                settings.database, record, unsettled_after=args.unsettled_after, scope=scope
            )
        finally:
            await bank.close()

    report = asyncio.run(run())
    if args.json:
        dump_json(report.to_json())
    else:
        print_verify(report)
    return 0 if report.ok else 1


def _inspect(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.operators.inspect import NotFoundError, find, inspect

    async def run() -> Any:
        txn = await find(
            settings.database,
            transaction_id=args.transaction_id,
            merchant_id=args.merchant,
            idempotency_key=args.key,
            correlation_id=args.correlation_id,
        )
        bank = _bank(settings)
        try:
            return await inspect(txn, settings.database, settings.kafka, bank, since=args.since)
        finally:
            await bank.close()

    try:
        timeline = asyncio.run(run())
    except NotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        dump_json(timeline.to_json())
    else:
        print_inspect(timeline)
    return 0 if timeline.consistent else 1


def _selector(args: argparse.Namespace) -> Any:
    from payment_service.operators.replay import Selector

    return Selector(
        start=args.start,
        end=args.end,
        partitions=args.partition,
        transaction_id=args.transaction,
        merchant_id=args.merchant,
        type=args.type,
        producer=args.producer,
    )


def _replay(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.operators import replay
    from payment_service.storage.db import create_pool
    from payment_service.storage.payments import PgPaymentRepository

    topic = settings.kafka.topic_dlq if args.topic == "dlq" else settings.kafka.topic_requests
    scanning = Progress(f"reading {topic}", None)
    messages = replay.select(settings.kafka, topic, _selector(args), scanning.advance)
    scanning.close()
    left_out: list[str] = []
    if args.topic == "dlq":
        from payment_service.operators.dlq import originals

        finding = Progress("reading the letters' originals", len(messages))
        behind = originals(settings.kafka, messages, finding.advance)
        finding.close()
        messages, left_out = behind.found, behind.left_out

    async def evaluate() -> Any:
        pool = await create_pool(settings.database, application_name="payment-service-ops")
        bank = _bank(settings)
        progress = Progress("evaluating", len(messages))
        try:
            record = await _bank_record(settings, bank)
            found = await replay.evaluate(
                messages, PgPaymentRepository(pool), settings.database, record, progress.advance
            )
        finally:
            progress.close()
            await bank.close()
            await pool.close()
        return found

    evaluations = asyncio.run(evaluate())
    if args.execute:
        progress = Progress("results", len(evaluations))
        report = replay.execute(
            settings.kafka,
            evaluations,
            wait_seconds=args.wait,
            on_result=progress.advance,
            left_out=left_out,
        )
        progress.close()
    else:
        report = replay.ReplayReport(evaluations, left_out=left_out)
    if args.json:
        dump_json(report.to_json())
    else:
        print_replay(report)
    return 1 if report.unanswered or report.left_out else 0


def _dlq_list(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.operators.dlq import listing

    found = listing(settings.kafka, _selector(args))
    if args.json:
        dump_json(found)
        return 0
    print(f"{found['total']} message(s) on {found['topic']}")
    for reason, count in found["by_reason"].items():
        print(f"  {reason:<24} {count}")
    if found["messages"]:
        columns = ("partition", "offset", "time", "key", "type", "reason", "error", "origin")
        print(table(found["messages"], columns, limit=args.limit))
    return 0


def _dlq_show(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.operators.dlq import show

    found = show(settings.kafka, args.partition_number, args.offset)
    if found is None:
        print(f"error: no DLQ message at {args.partition_number}:{args.offset}", file=sys.stderr)
        return 2
    dump_json(found)
    return 0


def _offsets_show(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.operators.offsets import show

    state = show(settings.kafka)
    _print_group(state.to_json(), args.json)
    return 0


def _offsets_reset(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.operators.offsets import GroupIsLive, reset

    try:
        state = reset(
            settings.kafka,
            to_offset=args.to_offset,
            to_time=args.to_time.time if args.to_time else None,
            partitions=args.partition,
            force=args.force,
            dry_run=args.dry_run,
        )
    except (GroupIsLive, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _print_group(state.to_json(), args.json)
    if not args.json:
        print("(dry run: nothing moved)" if args.dry_run else "offsets moved")
    return 0


def add_commands(sub: Any) -> None:
    ops = sub.add_parser("ops", help="operators' tools: verify, inspect, replay, dlq, offsets")
    ops_sub = ops.add_subparsers(dest="ops_command", required=True)
    verify = ops_sub.add_parser("verify", help="check every invariant; exit 1 on a break")
    verify.add_argument("--unsettled-after", type=duration, default=dt.timedelta(minutes=15))
    verify.add_argument("--merchant", action="append", help="only this merchant's (repeatable)")
    verify.add_argument("--since", type=when, help="only payments created since (ISO time)")
    verify.add_argument("--json", action="store_true")
    verify.set_defaults(run=_verify)
    inspect = ops_sub.add_parser("inspect", help="one payment's messages, rows, bank record")
    inspect.add_argument("transaction_id", nargs="?")
    inspect.add_argument("--merchant")
    inspect.add_argument("--key", help="the Idempotency-Key (with --merchant)")
    inspect.add_argument("--correlation-id")
    inspect.add_argument("--since", type=bound, help="read topics from this offset or time")
    inspect.add_argument("--json", action="store_true")
    inspect.set_defaults(run=_inspect)
    replay = ops_sub.add_parser("replay", help="dry-run (default) or --execute a replay")
    replay.add_argument("--topic", choices=("requests", "dlq"), default="requests")
    _replay_args(replay)
    dlq = ops_sub.add_parser("dlq", help="dead-lettered messages")
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = dlq_sub.add_parser("list", help="DLQ messages and counts by reason")
    selectors(listing)
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=_dlq_list)
    show = dlq_sub.add_parser("show", help="one DLQ message, redacted")
    show.add_argument("partition_number", type=int)
    show.add_argument("offset", type=int)
    show.set_defaults(run=_dlq_show)
    redrive = dlq_sub.add_parser("redrive", help="replay DLQ messages (dry run by default)")
    redrive.set_defaults(topic="dlq")
    _replay_args(redrive)
    _offsets_parser(ops_sub)


def _replay_args(parser: argparse.ArgumentParser) -> None:
    selectors(parser)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", default=True, help="the default")
    mode.add_argument("--execute", action="store_true", help="re-produce the commands")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for results")
    parser.set_defaults(run=_replay)


def _offsets_parser(ops_sub: Any) -> None:
    offsets = ops_sub.add_parser("offsets", help="the processor's consumer group offsets")
    offsets_sub = offsets.add_subparsers(dest="offsets_command", required=True)
    show = offsets_sub.add_parser("show", help="committed offsets, lag and members")
    show.add_argument("--json", action="store_true")
    show.set_defaults(run=_offsets_show)
    reset = offsets_sub.add_parser("reset", help="move the committed offsets")
    target = reset.add_mutually_exclusive_group(required=True)
    target.add_argument("--to-offset", type=int)
    target.add_argument("--to-time", type=when, help="ISO 8601 time")
    reset.add_argument("--partition", type=int, action="append")
    reset.add_argument("--force", action="store_true", help="skip the live-members check")
    reset.add_argument("--dry-run", action="store_true", help="print the plan only")
    reset.add_argument("--json", action="store_true")
    reset.set_defaults(run=_offsets_reset)
