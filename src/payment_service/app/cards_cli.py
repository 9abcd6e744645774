"""The card-custody commands of `payment-service` (docs/security.md has the rotation runbook).

    payment-service keys export-public            the current public key, as JSON
    payment-service cards keys init --dir DIR     a first key pair unless there is one
    payment-service cards keys generate           add a key pair (not current)
    payment-service cards keys rotate             add a key pair and make it current
    payment-service cards keys list [--usage]     the keys; with what each still seals
    payment-service cards keys retire KID         delete a key nothing uses any more
    payment-service cards rewrap [--batch N]      re-seal stored envelopes under the current key

Key material is never printed; only public keys and key ids are.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from payment_service.app import key_tasks
from payment_service.cards import keydir
from payment_service.config.settings import Settings
from payment_service.core.errors import KeyConfigError, StorageError


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _export_public(settings: Settings, args: argparse.Namespace) -> int:
    print(key_tasks.current_public_key(settings, args.dir).to_json(), end="")
    return 0


def _init(settings: Settings, args: argparse.Namespace) -> int:
    directory = key_tasks.key_dir(settings, args.dir)
    public, created = keydir.init(directory)
    target = key_tasks.publish(settings, public, args.public_key_file)
    state = "created" if created else "already there"
    _say(f"current card key {public.kid} ({state}); public key in {target or '(not written)'}")
    print(public.kid)
    return 0


def _generate(settings: Settings, args: argparse.Namespace) -> int:
    pair = keydir.generate(key_tasks.key_dir(settings, args.dir), make_current=False, kid=args.kid)
    _say(f"generated card key {pair.kid} (not current: `cards keys rotate --to {pair.kid}`)")
    print(pair.kid)
    return 0


def _rotate(settings: Settings, args: argparse.Namespace) -> int:
    directory = key_tasks.key_dir(settings, args.dir)
    _, old = keydir.read_keys(directory)
    if args.to:
        keydir.set_current(directory, args.to)
        pairs, _ = keydir.read_keys(directory)
        public = pairs[args.to].public
    else:
        public = keydir.generate(directory, make_current=True).public
    target = key_tasks.publish(settings, public, args.public_key_file)
    _say(f"current card key: {public.kid} (was {old}); public key in {target or '(not written)'}")
    print(public.kid)
    return _audited(settings, "card_keys.rotated", public.kid, {"previous": old})


def _audited(settings: Settings, action: str, kid: str, details: dict[str, object]) -> int:
    """Record a key task in `custody_audit`; the task itself is done either way."""
    try:
        asyncio.run(key_tasks.audit(settings, action, kid, details))
    except StorageError as exc:
        _say(f"warning: {action} {kid} done, but its audit row was not written: {exc}")
        return 1
    return 0


def _list(settings: Settings, args: argparse.Namespace) -> int:
    infos = keydir.list_keys(key_tasks.key_dir(settings, args.dir))
    usage = asyncio.run(key_tasks.usage(settings)) if args.usage else {}
    rows: list[dict[str, Any]] = []
    for info in infos:
        row: dict[str, Any] = {
            "kid": info.kid,
            "current": info.current,
            "created_at": info.created_at.isoformat() if info.created_at else None,
        }
        if args.usage:
            used = usage.get(info.kid, key_tasks.Usage(0, 0))
            row.update(cards_on_file=used.cards_on_file, security_codes=used.security_codes)
        rows.append(row)
    if args.usage:
        # Legacy (v1) or unknown ids still in use: they have no file here.
        for kid, used in usage.items():
            if kid not in {info.kid for info in infos}:
                row = {"kid": kid, "current": False, "created_at": None, "held": False}
                row.update(cards_on_file=used.cards_on_file, security_codes=used.security_codes)
                rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        extra = "  ".join(f"{k}={v}" for k, v in row.items() if k not in ("kid", "current"))
        print(f"{'*' if row['current'] else ' '} {row['kid']}  {extra}")
    return 0


def _retire(settings: Settings, args: argparse.Namespace) -> int:
    directory = key_tasks.key_dir(settings, args.dir)
    blockers = key_tasks.retire_blockers(
        settings, directory, args.kid, grace_seconds=args.grace, wait_seconds=args.wait
    )
    if blockers:
        _say(f"refusing to retire {args.kid}:")
        for blocker in blockers:
            _say(f"  - {blocker}")
        return 1
    keydir.remove(directory, args.kid)
    _say(f"retired card key {args.kid}: its private key file is deleted")
    return _audited(settings, "card_keys.retired", args.kid, {})


def _rewrap(settings: Settings, args: argparse.Namespace) -> int:
    from payment_service.app.rewrap import rewrap

    try:
        summary = asyncio.run(
            rewrap(settings, batch=args.batch, actor=key_tasks.operator(), progress=_say)
        )
    except KeyboardInterrupt:
        _say("interrupted: every envelope is either re-sealed or untouched; run again to resume")
        return 130
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        _say(f"done: {json.dumps(summary.to_dict())}")
    return 0 if summary.complete else 2


def _with_dir(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--dir", type=Path, help="key directory (default CARD_PRIVATE_KEYS_DIR)")
    return parser


def add_commands(sub: Any, keys_sub: Any) -> None:
    """Add `keys export-public` and the `cards ...` tree to the main parser."""
    export = _with_dir(keys_sub.add_parser("export-public", help="print the card public key"))
    export.set_defaults(run=_export_public)
    cards = sub.add_parser("cards", help="card custody: keys and rewrap")
    cards_sub = cards.add_subparsers(dest="cards_command", required=True)
    keys = cards_sub.add_parser("keys", help="the processor's card key pairs")
    ks = keys.add_subparsers(dest="card_keys_command", required=True)
    for name, run, text in (
        ("init", _init, "create a first key pair unless there is one"),
        ("rotate", _rotate, "add a key pair (or --to an existing one) and make it current"),
    ):
        task = _with_dir(ks.add_parser(name, help=text))
        task.add_argument("--public-key-file", type=Path, help="default CARD_PUBLIC_KEY_FILE")
        task.set_defaults(run=run)
    rotate = ks.choices["rotate"]
    rotate.add_argument("--to", help="make this generated key current instead of a new one")
    generate = _with_dir(ks.add_parser("generate", help="add a key pair that is not current"))
    generate.add_argument("--kid", help="its id (default ck_<date>_<random>)")
    generate.set_defaults(run=_generate)
    listing = _with_dir(ks.add_parser("list", help="list the key pairs (never their material)"))
    listing.add_argument("--usage", action="store_true", help="count what each key seals")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)
    retire = _with_dir(ks.add_parser("retire", help="delete a key that nothing uses any more"))
    retire.add_argument("kid")
    retire.add_argument("--grace", type=float, default=30.0, help="seconds after rotation")
    retire.add_argument("--wait", type=float, default=60.0, help="for the processor's lag")
    retire.set_defaults(run=_retire)
    rewrap = cards_sub.add_parser("rewrap", help="re-seal stored envelopes under the current key")
    rewrap.add_argument("--batch", type=int, default=500)
    rewrap.add_argument("--json", action="store_true", help="print the summary as JSON")
    rewrap.set_defaults(run=_rewrap)


def run_safely(run: Any, settings: Settings, args: argparse.Namespace) -> int:
    """Key errors are the operator's to fix: say what is wrong, no traceback."""
    try:
        result: int = run(settings, args)
    except KeyConfigError as exc:
        _say(f"error: {exc}")
        return 1
    return result
