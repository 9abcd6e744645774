"""The human-readable output of `payment-service ops` (its `--json` is the reports' `to_json`)."""

from __future__ import annotations

from typing import Any

from payment_service.operators.render import dump_json, table


def print_verify(report: Any) -> None:
    counts = ", ".join(f"{v} {k}" for k, v in report.counts.items())
    print(f"read {counts}")
    rows = [
        {"check": name, "violations": n, "result": "ok" if n == 0 else "BROKEN"}
        for name, n in report.by_check().items()
    ]
    print(table(rows, ("check", "violations", "result")))
    for warning in report.warnings:
        print(f"warning: {warning}")
    if report.violations:
        print()
        rows = [
            {"check": v.check, "transaction": v.transaction_id, "refund": v.refund_id,
             "detail": v.detail}
            for v in report.violations
        ]  # fmt: skip
        print(table(rows, ("check", "transaction", "refund", "detail"), limit=200))
    print("verify: OK" if report.ok else f"verify: {len(report.violations)} violation(s)")


def print_inspect(t: Any) -> None:
    print(f"transaction {t.transaction_id}")
    if t.payment:
        p = t.payment
        print(
            f"  payment  {p['status']}  {p['amount_minor']} {p['currency']} minor units,"
            f" captured {p['captured_minor']}, refunded {p['refunded_minor']},"
            f" merchant {p['merchant_id']}, key {p['idempotency_key']}"
        )
    else:
        print("  payment  (no row)")
    if t.refunds:
        print("\nrefunds")
        print(
            table(t.refunds, ("refund_id", "status", "amount_minor", "failure_code", "created_at"))
        )
    if t.refusals:
        print("\nrecorded refusals")
        print(table(t.refusals, ("command_id", "kind", "code", "message", "created_at")))
    print("\naudit trail")
    print(
        table(
            t.audit,
            ("id", "action", "from_status", "to_status", "amount_minor", "refund_id", "created_at"),
        )
    )
    print("\nmessages")
    rows = [
        {**m, "where": f"{m['topic']}:{m['partition']}:{m['offset']}",
         "headers": ", ".join(f"{k}={v}" for k, v in m["headers"].items())}
        for m in t.messages
    ]  # fmt: skip
    print(table(rows, ("time", "where", "type", "producer", "headers")))
    bank = t.bank
    print(
        f"\nbank  authorized {bank.get('authorized_minor', 0)}, captured"
        f" {bank.get('captured_minor', 0)}, refunded {bank.get('refunded_minor', 0)}"
    )
    ops = bank.get("operations") or []
    if ops:
        print(table(ops, ("created_at", "operation", "idempotency_key", "outcome", "amount_minor")))
    print()
    if t.consistent:
        print("verdict: consistent")
    else:
        print("verdict: INCONSISTENT")
        for line in t.disagreements:
            print(f"  - {line}")


def print_replay(report: Any) -> None:
    counts = report.counts()
    mode = "executed" if report.executed else "dry run (nothing sent, nothing written)"
    print(f"replay: {len(report.evaluations)} command(s) selected, {mode}")
    print(
        table([{"verdict": k, "commands": v} for k, v in counts.items()], ("verdict", "commands"))
    )
    moving = [e.to_json() for e in report.evaluations if e.prediction.verdict != "noop"]
    if moving:
        print("\nnot no-ops:")
        print(table(moving, ("source", "kind", "id", "verdict", "reason"), limit=200))
    if report.executed:
        results: dict[str, int] = {}
        for e in report.evaluations:
            results[e.result or "(no result)"] = results.get(e.result or "(no result)", 0) + 1
        print("\nresults:")
        print(
            table(
                [{"result": k, "commands": v} for k, v in sorted(results.items())],
                ("result", "commands"),
            )
        )
        if report.unanswered:
            print(f"{report.unanswered} command(s) got no result within the wait")
    if report.left_out:
        print(
            f"\n{len(report.left_out)} letter(s) left out: their original is past the requests"
            " topic's retention, or they predate `dlq-origin`:"
        )
        for letter in report.left_out[:200]:
            print(f"  {letter}")


def print_group(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        dump_json(data)
        return
    members = ", ".join(data["members"]) or "none"
    print(f"group {data['group']} on {data['topic']}: {data['state']}, members: {members}")
    columns = ("partition", "committed", "low", "high", "lag", "target")
    print(table(data["partitions"], columns))
    print(f"total lag: {data['lag']}")
